//! Reads the committed demo fixtures (`fixtures/*.csv|jsonl`, FORMATS.md) into
//! [`Person`]s and products, independently of the importer, so the differential test
//! runs on the data marketers see in demos.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mailcast::segment::eval::{Person, PersonEvent};
use mailcast::store::NewProduct;
use mailcast::time::parse_timestamp;
use serde_json::Value;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// People (ids not yet assigned) and products, or None when the fixtures are absent.
pub fn read(dir: &Path) -> Option<(Vec<Person>, Vec<NewProduct>)> {
    let recipients = dir.join("recipients.csv");
    let products = dir.join("products.csv");
    let events = dir.join("events.jsonl");
    if !(recipients.exists() && products.exists() && events.exists()) {
        return None;
    }
    let products = read_products(&products);
    let categories: HashMap<String, String> = products
        .iter()
        .map(|p| (p.sku.clone(), p.category.clone()))
        .collect();
    let mut people = read_recipients(&recipients);
    add_events(&mut people, &events, &categories);
    Some((people, products))
}

fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("open fixture csv");
    reader
        .deserialize()
        .map(|row| row.expect("fixture csv row"))
        .collect()
}

fn optional(row: &HashMap<String, String>, column: &str) -> Option<String> {
    row.get(column).filter(|v| !v.is_empty()).cloned()
}

fn read_products(path: &Path) -> Vec<NewProduct> {
    csv_rows(path)
        .into_iter()
        .map(|row| NewProduct {
            sku: row["sku"].clone(),
            name: row["name"].clone(),
            url: row["url"].clone(),
            image_url: optional(&row, "image_url"),
            price_cents: cents(row["price"].parse().expect("price")),
            currency: row["currency"].clone(),
            category: row["category"].clone(),
            in_stock: row.get("in_stock").is_none_or(|v| v != "false"),
        })
        .collect()
}

fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

fn read_recipients(path: &Path) -> Vec<Person> {
    csv_rows(path)
        .into_iter()
        .map(|row| Person {
            id: 0,
            email: row["email"].clone(),
            first_name: optional(&row, "first_name"),
            last_name: optional(&row, "last_name"),
            country: optional(&row, "country"),
            city: optional(&row, "city"),
            locale: optional(&row, "locale"),
            timezone: optional(&row, "timezone"),
            created_at: parse_timestamp(&row["created_at"]).expect("created_at"),
            attributes: serde_json::from_str(&row["attributes"]).expect("attributes"),
            events: Vec::new(),
            touches: Vec::new(),
        })
        .collect()
}

fn add_events(people: &mut [Person], path: &Path, categories: &HashMap<String, String>) {
    let index: HashMap<String, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.email.to_lowercase(), i))
        .collect();
    let text = std::fs::read_to_string(path).expect("read events");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).expect("event json");
        let email = row["email"].as_str().expect("email").to_lowercase();
        let sku = row["sku"].as_str().map(str::to_string);
        let event = PersonEvent {
            kind: row["kind"].as_str().expect("kind").to_string(),
            category: sku.as_ref().and_then(|s| categories.get(s).cloned()),
            sku,
            amount_cents: amount(&row["amount"]).map(cents),
            occurred_at: parse_timestamp(row["occurred_at"].as_str().expect("time"))
                .expect("occurred_at"),
        };
        people[index[&email]].events.push(event);
    }
}

/// A decimal number or a decimal string (FORMATS.md allows both).
fn amount(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}
