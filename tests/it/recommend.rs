//! Recommendations against real stores: SQLite always, PostgreSQL whenever
//! `TEST_DATABASE_URL` is set.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use mailcast::domain::EmailAddress;
use mailcast::recommend::{
    RecipientHistory, RecommendOptions, Recommender, evaluate, import_fixtures,
};
use mailcast::store::{NewEvent, NewProduct, Store};
use support::{for_each_engine, recipient};

const DAY: i64 = 86_400;
/// The hand-made data sets end here.
const NOW: i64 = 1_780_000_000;

fn product(sku: &str, name: &str, category: &str, in_stock: bool) -> NewProduct {
    NewProduct {
        sku: sku.into(),
        name: name.into(),
        url: format!("https://shop.example.com/p/{sku}"),
        image_url: None,
        price_cents: 1_000,
        currency: "USD".into(),
        category: category.into(),
        in_stock,
    }
}

/// A small catalogue. In [`shop`], SOCK is bought with TRAIL by a few people, CAP is
/// viewed with LAMP, TEE is the best seller, GONE is popular but out of stock.
async fn catalogue(store: &Store) {
    let products = [
        product("TRAIL", "Trail Runner 2", "shoes", true),
        product("BOOT", "Summit Boot", "shoes", true),
        product("SOCK", "Merino Running Socks", "apparel", true),
        product("TEE", "Best Seller Tee", "apparel", true),
        product("CAP", "Sun Cap", "apparel", true),
        product("GONE", "Sold-out Jacket", "apparel", false),
        product("LAMP", "Desk Lamp", "home", true),
        product("MUG", "Stoneware Mug", "home", true),
    ];
    store.upsert_products(&products).await.unwrap();
}

/// `(email, kind, sku, days before NOW)`; recipients are created as needed.
async fn events(store: &Store, rows: &[(String, &str, &str, i64)]) {
    let emails: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let unique: HashSet<&str> = emails.iter().copied().collect();
    let people: Vec<_> = unique.iter().map(|e| recipient(e, "Test", &[])).collect();
    store.upsert_recipients(&people).await.unwrap();
    let keys: Vec<String> = unique.iter().map(|e| e.to_lowercase()).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ids = store.recipient_ids(&keys).await.unwrap();
    let skus: Vec<&str> = rows.iter().map(|r| r.2).collect();
    let products = store.product_ids(&skus).await.unwrap();
    let batch: Vec<NewEvent> = rows
        .iter()
        .enumerate()
        .map(|(n, (email, kind, sku, days))| NewEvent {
            external_id: Some(format!("t-{n}")),
            recipient_id: ids[&email.to_lowercase()],
            kind: kind.to_string(),
            product_id: Some(products[*sku]),
            amount_cents: None,
            occurred_at: NOW - days * DAY + n as i64,
            properties: serde_json::Map::new(),
        })
        .collect();
    store.insert_events(&batch).await.unwrap();
}

fn many(
    prefix: &str,
    count: usize,
    kind: &'static str,
    sku: &'static str,
    days: i64,
) -> Vec<(String, &'static str, &'static str, i64)> {
    (0..count)
        .map(|n| (format!("{prefix}{n}@example.com"), kind, sku, days))
        .collect()
}

async fn history_of(store: &Store, email: &str) -> RecipientHistory {
    let ids = store.recipient_ids(&[email]).await.unwrap();
    let id = ids[email];
    let mut histories = store.histories(&[id]).await.unwrap();
    histories.remove(&id).unwrap()
}

async fn shop(store: &Store) {
    catalogue(store).await;
    let mut rows = Vec::new();
    rows.extend(many("pair", 8, "purchase", "TRAIL", 20));
    rows.extend(many("pair", 8, "purchase", "SOCK", 19));
    rows.extend(many("tee", 15, "purchase", "TEE", 5));
    rows.extend(many("gone", 20, "purchase", "GONE", 3));
    rows.extend(many("browse", 6, "view", "LAMP", 4));
    rows.extend(many("browse", 6, "view", "CAP", 4));
    rows.push(("runner@example.com".into(), "purchase", "TRAIL", 2));
    rows.push(("stranger@example.com".into(), "purchase", "LAMP", 2));
    events(store, &rows).await;
}

fn skus(list: &[mailcast::recommend::Recommendation]) -> Vec<&str> {
    list.iter().map(|r| r.product.sku.as_str()).collect()
}

#[tokio::test]
async fn co_occurrence_drives_recommendations_and_names_the_product() {
    for_each_engine(|store, engine| async move {
        shop(&store).await;
        let model = Recommender::build(&store, NOW).await.unwrap();

        let runner = model.for_recipient(&history_of(&store, "runner@example.com").await, 4);
        assert_eq!(runner.len(), 4, "{engine}: {:?}", skus(&runner));
        assert_eq!(
            runner[0].product.sku,
            "SOCK",
            "{engine}: {:?}",
            skus(&runner)
        );
        assert_eq!(
            runner[0].reason, "bought together with Trail Runner 2",
            "{engine}"
        );
        assert!(
            !skus(&runner).contains(&"TRAIL"),
            "{engine}: bought already"
        );
        assert!(!skus(&runner).contains(&"GONE"), "{engine}: out of stock");

        let nobody = model.for_recipient(&RecipientHistory::default(), 4);
        assert_eq!(nobody[0].product.sku, "TEE", "{engine}: popularity alone");
        assert_eq!(nobody[0].reason, "popular right now", "{engine}");

        let stranger = model.for_recipient(&history_of(&store, "stranger@example.com").await, 4);
        assert_eq!(stranger.len(), 4, "{engine}");
        assert!(
            stranger
                .iter()
                .all(|r| !r.reason.contains("Trail Runner 2")),
            "{engine}: {stranger:?}"
        );
        assert_eq!(
            stranger[0].product.sku,
            "CAP",
            "{engine}: {:?}",
            skus(&stranger)
        );
        assert_eq!(
            stranger[0].reason, "often viewed with Desk Lamp",
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn recipients_without_history_get_n_items() {
    for_each_engine(|store, engine| async move {
        shop(&store).await;
        let model = Recommender::build(&store, NOW).await.unwrap();
        store
            .upsert_recipients(&[recipient("new@example.com", "New", &[])])
            .await
            .unwrap();
        let history = history_of(&store, "new@example.com").await;
        assert!(history.interactions.is_empty(), "{engine}");
        for n in 1..=6 {
            let picks = model.for_recipient(&history, n);
            assert_eq!(picks.len(), n, "{engine}: {:?}", skus(&picks));
            assert!(
                picks.iter().all(|p| p.reason == "popular right now"),
                "{engine}"
            );
        }
        // 7 products are in stock: never more, never the sold-out one.
        let all = model.for_recipient(&history, 10);
        assert_eq!(all.len(), 7, "{engine}: {:?}", skus(&all));
        assert!(!skus(&all).contains(&"GONE"), "{engine}");
    })
    .await;
}

#[tokio::test]
async fn cart_lists_recent_cart_adds_not_bought_since() {
    for_each_engine(|store, engine| async move {
        catalogue(&store).await;
        let me = "cart@example.com".to_string();
        let rows = vec![
            (me.clone(), "cart_add", "SOCK", 3),
            (me.clone(), "cart_add", "TEE", 4),
            (me.clone(), "purchase", "TEE", 3),
            (me.clone(), "cart_add", "BOOT", 30),
            (me.clone(), "cart_add", "GONE", 2),
            (me.clone(), "cart_add", "CAP", 1),
            (me.clone(), "view", "MUG", 1),
        ];
        events(&store, &rows).await;
        let model = Recommender::build(&store, NOW).await.unwrap();
        let history = history_of(&store, "cart@example.com").await;
        let cart: Vec<String> = model.cart(&history).into_iter().map(|p| p.sku).collect();
        assert_eq!(cart, vec!["CAP", "SOCK"], "{engine}");
        let picks = model.for_recipient(&history, 4);
        assert!(!skus(&picks).contains(&"TEE"), "{engine}: bought");
    })
    .await;
}

#[tokio::test]
async fn histories_load_a_batch_and_answer_for_every_id() {
    for_each_engine(|store, engine| async move {
        shop(&store).await;
        let keys = ["pair0@example.com", "runner@example.com"];
        let ids = store.recipient_ids(&keys).await.unwrap();
        let mut wanted: Vec<i64> = ids.values().copied().collect();
        wanted.push(999_999);
        let histories = store.histories(&wanted).await.unwrap();
        assert_eq!(histories.len(), 3, "{engine}");
        assert_eq!(
            histories[&ids["pair0@example.com"]].interactions.len(),
            2,
            "{engine}"
        );
        assert_eq!(
            histories[&ids["runner@example.com"]].interactions.len(),
            1,
            "{engine}"
        );
        assert!(histories[&999_999].interactions.is_empty(), "{engine}");
        let times: Vec<i64> = histories[&ids["pair0@example.com"]]
            .interactions
            .iter()
            .map(|i| i.at)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{engine}: oldest first"
        );
    })
    .await;
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture recipient's id, from recipients.csv.
async fn fixture_recipient_ids(store: &Store) -> Vec<i64> {
    let mut reader = csv::Reader::from_path(fixtures_dir().join("recipients.csv")).unwrap();
    let keys: Vec<String> = reader
        .records()
        .map(|r| EmailAddress::parse(&r.unwrap()[0]).unwrap().key())
        .collect();
    let mut ids = Vec::new();
    for chunk in keys.chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        ids.extend(store.recipient_ids(&chunk).await.unwrap().into_values());
    }
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn fixtures_every_recipient_gets_n_eligible_items_and_evaluation_beats_popularity() {
    for_each_engine(|store, engine| async move {
        import_fixtures(&store, &fixtures_dir()).await.unwrap();
        let evaluation = evaluate(&store, &RecommendOptions::default())
            .await
            .unwrap();
        eprintln!(
            "{engine}: hit-rate@4 recommender {:.4} ({}/{}), popularity {:.4} ({}/{})",
            evaluation.model_hit_rate(),
            evaluation.model_hits,
            evaluation.buyers,
            evaluation.baseline_hit_rate(),
            evaluation.baseline_hits,
            evaluation.buyers
        );
        assert!(evaluation.buyers > 500, "{engine}: {evaluation:?}");
        assert!(
            evaluation.model_hits > evaluation.baseline_hits,
            "{engine}: {evaluation:?}"
        );

        let now = store.latest_interaction_at().await.unwrap().unwrap();
        let model = Recommender::build(&store, now).await.unwrap();
        let ids = fixture_recipient_ids(&store).await;
        assert_eq!(ids.len(), 2000, "{engine}");
        let mut reasons: HashMap<String, usize> = HashMap::new();
        for batch in ids.chunks(250) {
            let histories = store.histories(batch).await.unwrap();
            assert_eq!(histories.len(), batch.len(), "{engine}");
            for (id, history) in &histories {
                let picks = model.for_recipient(history, 4);
                assert_eq!(picks.len(), 4, "{engine}: recipient {id}");
                let distinct: HashSet<i64> = picks.iter().map(|p| p.product.id).collect();
                assert_eq!(distinct.len(), 4, "{engine}: recipient {id}");
                for pick in &picks {
                    assert!(
                        pick.product.in_stock,
                        "{engine}: {id} got {}",
                        pick.product.sku
                    );
                    assert!(
                        !history.has_bought(pick.product.id),
                        "{engine}: {id} already bought {}",
                        pick.product.sku
                    );
                    assert!(!pick.reason.is_empty(), "{engine}");
                    let kind = pick.reason.split(" with ").next().unwrap_or_default();
                    *reasons.entry(kind.to_string()).or_default() += 1;
                }
            }
        }
        eprintln!("{engine}: reasons {reasons:?}");
    })
    .await;
}
