//! Recipients, products, events and opens/clicks for the segment tests, generated from
//! a seed with the awkward cases on purpose: attributes of the wrong type, `null`,
//! empty strings, events exactly on the `within:` boundaries, purchases without an
//! amount, events without a product, machine opens.

use std::collections::HashMap;

use mailcast::domain::EmailAddress;
use mailcast::segment::eval::{Person, PersonEvent, Touch};
use mailcast::store::{NewEvent, NewProduct, NewRecipient, Store};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::segment_db::{TouchRow, insert_touches};

pub const DAY: i64 = 86_400;

/// `(sku, category)` of the generated catalogue.
pub const PRODUCTS: &[(&str, &str)] = &[
    ("SH-1", "shoes"),
    ("SH-2", "shoes"),
    ("SH-3", "shoes"),
    ("AP-1", "apparel"),
    ("AP-2", "apparel"),
    ("HM-1", "home"),
    ("HM-2", "home"),
    ("BT-1", "beauty"),
];

pub const KINDS: &[&str] = &[
    "view", "view", "view", "cart_add", "purchase", "purchase", "wishlist",
];
const FIRST: &[Option<&str>] = &[
    Some("Ana"),
    Some("anna"),
    Some("Jörg"),
    Some("Zoë"),
    Some("O'Brien"),
    Some(""),
    None,
];
const COUNTRIES: &[Option<&str>] = &[
    Some("US"),
    Some("US"),
    Some("CA"),
    Some("DE"),
    Some("IT"),
    Some("ES"),
    Some(""),
    None,
];
const CITIES: &[Option<&str>] = &[
    Some("Napoli"),
    Some("München"),
    Some("São Paulo"),
    Some("New York"),
    Some(""),
    None,
];
const LOCALES: &[Option<&str>] = &[Some("en-US"), Some("de-DE"), Some("it-IT"), None];
const ZONES: &[Option<&str>] = &[Some("America/New_York"), Some("Europe/Rome"), None];
const DOMAINS: &[&str] = &["gmail.com", "Example.COM", "mail.de", "outlook.com"];
const INTERESTS: &[&str] = &["running", "fitness", "travel", "cooking", "gaming", "yoga"];
const LIFESTYLE: &[&str] = &["homeowner", "outdoorsy", "eco_conscious", "early_adopter"];
const TIERS: &[&str] = &["bronze", "silver", "gold"];
const BOUNDARIES: &[i64] = &[1, 2, 7, 30, 60, 90, 180, 365];

/// `count` people whose ids are filled in by [`load`].
pub fn generate(seed: u64, count: usize, now: i64) -> Vec<Person> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|i| person(&mut rng, i, now)).collect()
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    *items.choose(rng).expect("non-empty")
}

fn text(value: Option<&str>) -> Option<String> {
    value.map(str::to_string)
}

fn person(rng: &mut ChaCha8Rng, i: usize, now: i64) -> Person {
    let domain = pick(rng, DOMAINS);
    let events = (0..rng.random_range(0..12))
        .map(|_| event(rng, now))
        .collect();
    let touches = (0..rng.random_range(0..5))
        .map(|_| touch(rng, now))
        .collect();
    Person {
        id: 0,
        // As the store keeps it (domain lower-cased, IDNA), so both sides see one spelling.
        email: EmailAddress::parse(&format!("user{i}@{domain}"))
            .expect("valid generated address")
            .to_string(),
        first_name: text(pick(rng, FIRST)),
        last_name: text(pick(rng, FIRST)),
        country: text(pick(rng, COUNTRIES)),
        city: text(pick(rng, CITIES)),
        locale: text(pick(rng, LOCALES)),
        timezone: text(pick(rng, ZONES)),
        created_at: moment(rng, now, 3 * 365),
        attributes: attributes(rng),
        events,
        touches,
    }
}

/// Some time in the `days` before `now`; often exactly on a day boundary, now and then
/// in the future.
fn moment(rng: &mut ChaCha8Rng, now: i64, days: i64) -> i64 {
    match rng.random_range(0..10) {
        0..=2 => now - pick(rng, BOUNDARIES) * DAY,
        3 => now + rng.random_range(1..3 * DAY),
        _ => now - rng.random_range(0..days * DAY),
    }
}

fn maybe(
    rng: &mut ChaCha8Rng,
    p: f64,
    value: impl FnOnce(&mut ChaCha8Rng) -> Value,
) -> Option<Value> {
    if rng.random_bool(p) {
        Some(value(rng))
    } else {
        None
    }
}

fn attributes(rng: &mut ChaCha8Rng) -> Value {
    let mut object = serde_json::Map::new();
    let entries = [
        ("age", age(rng)),
        (
            "income",
            maybe(rng, 0.85, |r| json!(r.random_range(20..200) * 500)),
        ),
        (
            "gender",
            maybe(rng, 0.9, |r| {
                json!(pick(r, &["female", "male", "nonbinary"]))
            }),
        ),
        ("interests", Some(list(rng, INTERESTS))),
        ("lifestyle", maybe(rng, 0.8, |r| list(r, LIFESTYLE))),
        ("birthday", maybe(rng, 0.8, birthday)),
        ("loyalty_tier", maybe(rng, 0.7, |r| json!(pick(r, TIERS)))),
        ("vip", vip(rng)),
        ("address", address(rng)),
        ("score", score(rng)),
    ];
    for (key, value) in entries {
        if let Some(value) = value {
            object.insert(key.to_string(), value);
        }
    }
    Value::Object(object)
}

fn birthday(rng: &mut ChaCha8Rng) -> Value {
    let month = rng.random_range(1..13);
    let day = rng.random_range(1..29);
    json!(format!("{month:02}-{day:02}"))
}

fn age(rng: &mut ChaCha8Rng) -> Option<Value> {
    match rng.random_range(0..20) {
        0 => Some(json!(30.5)),
        1 => Some(json!("30")),
        2 => Some(Value::Null),
        3 => None,
        _ => Some(json!(rng.random_range(18..80))),
    }
}

fn list(rng: &mut ChaCha8Rng, words: &[&str]) -> Value {
    match rng.random_range(0..20) {
        0 => json!("running"),
        1 => json!([7, true, "yoga", ["running"]]),
        2 => json!([]),
        _ => {
            let n = rng.random_range(1..4);
            let chosen: Vec<&str> = words.choose_multiple(rng, n).copied().collect();
            json!(chosen)
        }
    }
}

fn vip(rng: &mut ChaCha8Rng) -> Option<Value> {
    match rng.random_range(0..10) {
        0..=4 => Some(json!(rng.random_bool(0.5))),
        5 => Some(json!("true")),
        _ => None,
    }
}

fn address(rng: &mut ChaCha8Rng) -> Option<Value> {
    match rng.random_range(0..10) {
        0..=2 => Some(json!({"city": pick(rng, &["Napoli", "Berlin", "Toronto"]), "zip": "12345"})),
        3 => Some(json!("Main Street 1")),
        _ => None,
    }
}

fn score(rng: &mut ChaCha8Rng) -> Option<Value> {
    match rng.random_range(0..7) {
        0 => Some(json!(rng.random_range(0..100))),
        1 => Some(json!(2.5)),
        2 => Some(json!("high")),
        3 => Some(json!(true)),
        4 => Some(Value::Null),
        5 => Some(json!([1, 2, 3])),
        _ => None,
    }
}

fn event(rng: &mut ChaCha8Rng, now: i64) -> PersonEvent {
    let kind = pick(rng, KINDS);
    let product = rng.random_bool(0.85).then(|| pick(rng, PRODUCTS));
    let amount =
        (kind == "purchase" && rng.random_bool(0.85)).then(|| rng.random_range(100..20_000));
    PersonEvent {
        kind: kind.to_string(),
        sku: product.map(|(sku, _)| sku.to_string()),
        category: product.map(|(_, category)| category.to_string()),
        amount_cents: amount,
        occurred_at: moment(rng, now, 400),
    }
}

fn touch(rng: &mut ChaCha8Rng, now: i64) -> Touch {
    Touch {
        kind: pick(
            rng,
            &["open", "open", "open", "click", "click", "unsubscribe"],
        )
        .to_string(),
        human: rng.random_bool(0.75),
        occurred_at: moment(rng, now, 120),
    }
}

pub fn catalogue(products: &[(&str, &str)]) -> Vec<NewProduct> {
    products
        .iter()
        .map(|(sku, category)| NewProduct {
            sku: sku.to_string(),
            name: format!("Product {sku}"),
            url: format!("https://shop.example.com/p/{sku}"),
            image_url: None,
            price_cents: 4_999,
            currency: "USD".into(),
            category: category.to_string(),
            in_stock: true,
        })
        .collect()
}

/// Stores `people` (with their events and opens/clicks) and the products they refer
/// to, and fills in the ids the store gave them.
pub async fn load(store: &Store, people: &mut [Person], products: &[NewProduct]) {
    store
        .upsert_products(products)
        .await
        .expect("store products");
    let batch: Vec<NewRecipient> = people.iter().map(new_recipient).collect();
    store
        .upsert_recipients(&batch)
        .await
        .expect("store recipients");
    let keys: Vec<String> = people.iter().map(|p| p.email.to_lowercase()).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ids = store.recipient_ids(&key_refs).await.expect("recipient ids");
    for (person, key) in people.iter_mut().zip(&keys) {
        person.id = ids[key];
    }
    let skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
    let product_ids = store.product_ids(&skus).await.expect("product ids");
    store
        .insert_events(&new_events(people, &product_ids))
        .await
        .expect("store events");
    insert_touches(store, &touch_rows(people)).await;
    people.sort_by_key(|p| p.id);
}

fn new_recipient(person: &Person) -> NewRecipient {
    NewRecipient {
        email: EmailAddress::parse(&person.email).expect("valid generated address"),
        first_name: person.first_name.clone(),
        last_name: person.last_name.clone(),
        country: person.country.clone(),
        city: person.city.clone(),
        locale: person.locale.clone(),
        timezone: person.timezone.clone(),
        attributes: person.attributes.as_object().cloned().unwrap_or_default(),
        created_at: Some(person.created_at),
        topics: vec!["newsletter".into()],
        consent_source: "test".into(),
    }
}

fn new_events(people: &[Person], product_ids: &HashMap<String, i64>) -> Vec<NewEvent> {
    people
        .iter()
        .flat_map(|person| {
            person.events.iter().map(|e| NewEvent {
                external_id: None,
                recipient_id: person.id,
                kind: e.kind.clone(),
                product_id: e.sku.as_ref().map(|sku| product_ids[sku]),
                amount_cents: e.amount_cents,
                occurred_at: e.occurred_at,
                properties: serde_json::Map::new(),
            })
        })
        .collect()
}

fn touch_rows(people: &[Person]) -> Vec<TouchRow> {
    let kind = |k: &str| match k {
        "open" => "open",
        "click" => "click",
        _ => "unsubscribe",
    };
    people
        .iter()
        .flat_map(|p| {
            p.touches
                .iter()
                .map(|t| (p.id, kind(&t.kind), t.human, t.occurred_at))
        })
        .collect()
}
