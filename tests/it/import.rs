//! `mailcast import`: CSV and JSON Lines files into a real store (SQLite always,
//! PostgreSQL when `TEST_DATABASE_URL` is set).

use crate::support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mailcast::domain::EmailAddress;
use mailcast::import::{ImportError, ImportKind, ImportOptions, ImportReport, import_file};
use mailcast::store::{Recipient, Store};
use serde_json::json;
use support::for_each_engine;

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

async fn import(store: &Store, kind: ImportKind, path: &Path) -> ImportReport {
    import_file(store, kind, path, &ImportOptions::default())
        .await
        .expect("import runs")
}

async fn import_strict(store: &Store, kind: ImportKind, path: &Path) -> ImportReport {
    let options = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    import_file(store, kind, path, &options)
        .await
        .expect("import runs")
}

fn errors(report: &ImportReport) -> Vec<String> {
    report.errors.iter().map(ToString::to_string).collect()
}

async fn stored(store: &Store, email: &str) -> Recipient {
    let address = EmailAddress::parse(email).unwrap();
    store
        .recipient_by_email(&address)
        .await
        .unwrap()
        .expect("recipient stored")
}

const RECIPIENTS_WITH_BAD_ROWS: &str = r#"email,first_name,country,created_at,topics,attributes,age
ann@example.com,Ann,us,2026-01-02T03:04:05Z,newsletter;promotions,"{""tier"":""gold""}",34
bob@,Bob,US,,,,
cy@example.com,Cy,DE,yesterday,,,
dee@example.com,Dee,FR,,,,41,extra
eve@example.com,Eve,GB,,,"{""tier"": gold}",
fay@example.com,Fay,USA,,,,
gus@example.com,Gus,,1700000000,newsletter,,29.5
"#;

const PRODUCTS: &str = "sku,name,url,image_url,price,currency,category,in_stock
SH-1,Trail shoe,https://shop.example.com/p/SH-1,,89.90,USD,shoes,true
BAG-2,Day pack,https://shop.example.com/p/BAG-2,https://img.example.com/BAG-2.jpg,49.99,usd,Bags,no
";

#[tokio::test]
async fn csv_with_bad_rows_imports_the_valid_rows_and_reports_each_bad_line() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let path = files.write("recipients.csv", RECIPIENTS_WITH_BAD_ROWS);
        let report = import(&store, ImportKind::Recipients, &path).await;

        assert_eq!(
            errors(&report)[..3],
            [
                "line 3: email: invalid email address 'bob@': the domain is not a valid host name",
                "line 4: created_at: 'yesterday' is not an RFC 3339 time or unix seconds",
                "line 5: expected 7 fields as in the header, found 8",
            ],
            "{engine}"
        );
        assert!(errors(&report)[3].starts_with("line 6: attributes: malformed JSON"));
        assert_eq!(
            errors(&report)[4],
            "line 7: country: 'USA' is not a two-letter country code (like US)"
        );
        assert_eq!(
            (report.inserted, report.updated, report.rejected),
            (2, 0, 5)
        );
        assert_eq!(
            report.summary_line(),
            "recipients: 2 imported, 0 updated, 5 rejected"
        );
        assert_eq!(store.count_recipients().await.unwrap(), 2, "{engine}");

        let ann = stored(&store, "ann@example.com").await;
        assert_eq!(ann.country.as_deref(), Some("US"));
        assert_eq!(ann.created_at, 1_767_323_045);
        assert_eq!(
            ann.attributes.0,
            json!({"tier": "gold", "age": 34}),
            "{engine}"
        );
        let topics = store.subscribed_topics(ann.id).await.unwrap();
        assert_eq!(topics, ["newsletter", "promotions"]);
        let gus = stored(&store, "gus@example.com").await;
        assert_eq!(gus.attributes.0, json!({"age": 29.5}), "{engine}");
        assert_eq!(gus.created_at, 1_700_000_000);
    })
    .await;
}

#[tokio::test]
async fn strict_imports_nothing_unless_every_row_is_valid() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let bad = files.write("bad.csv", RECIPIENTS_WITH_BAD_ROWS);
        let report = import_strict(&store, ImportKind::Recipients, &bad).await;
        assert!(report.aborted, "{engine}");
        assert_eq!((report.inserted, report.rejected), (0, 5));
        assert_eq!(report.errors.len(), 5);
        assert!(
            report
                .summary_line()
                .ends_with("5 rejected (--strict: nothing imported)")
        );
        assert_eq!(store.count_recipients().await.unwrap(), 0, "{engine}");

        let good = files.write(
            "good.csv",
            "email,first_name\na@example.com,A\nb@example.com,B\n",
        );
        let report = import_strict(&store, ImportKind::Recipients, &good).await;
        assert!(!report.aborted);
        assert_eq!((report.inserted, report.rejected), (2, 0));
        assert_eq!(store.count_recipients().await.unwrap(), 2, "{engine}");
    })
    .await;
}

#[tokio::test]
async fn strict_checks_event_references_before_writing_any() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let people = files.write("r.csv", "email\nann@example.com\n");
        import(&store, ImportKind::Recipients, &people).await;
        let events = files.write(
            "e.jsonl",
            concat!(
                r#"{"email":"ann@example.com","kind":"view","occurred_at":1}"#,
                "\n",
                r#"{"email":"nobody@example.com","kind":"view","occurred_at":2}"#,
                "\n"
            ),
        );
        let report = import_strict(&store, ImportKind::Events, &events).await;
        assert_eq!(
            errors(&report),
            ["line 2: email: unknown recipient 'nobody@example.com'"],
            "{engine}"
        );
        assert_eq!(store.count_events().await.unwrap(), 0, "{engine}");
    })
    .await;
}

#[tokio::test]
async fn reimport_updates_case_insensitively_and_merges_attributes() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let first = files.write(
            "first.csv",
            "email,first_name,city,attributes,plan\n\
             ann@example.com,Ann,Oslo,\"{\"\"tier\"\":\"\"silver\"\",\"\"prefs\"\":{\"\"a\"\":1}}\",basic\n",
        );
        let report = import(&store, ImportKind::Recipients, &first).await;
        assert_eq!((report.inserted, report.updated), (1, 0));

        let again = files.write(
            "again.jsonl",
            concat!(
                r#"{"email":"ANN@Example.com","city":null,"attributes":{"prefs":{"b":2}},"age":40}"#,
                "\n",
                r#"{"email":"new@example.com"}"#,
                "\n",
                r#"{"email":"ann@EXAMPLE.com","first_name":"Anna","plan":null}"#,
                "\n"
            ),
        );
        let report = import(&store, ImportKind::Recipients, &again).await;
        assert_eq!((report.inserted, report.updated), (1, 2), "{engine}");
        assert_eq!(store.count_recipients().await.unwrap(), 2, "{engine}");

        let ann = stored(&store, "ann@example.com").await;
        // The last spelling of the local part; domains are stored as lower-case A-labels.
        assert_eq!(ann.email, "ann@example.com");
        assert_eq!(ann.first_name.as_deref(), Some("Anna"), "later row wins");
        assert_eq!(ann.city.as_deref(), Some("Oslo"), "blank keeps the stored value");
        let expected = json!({"tier": "silver", "plan": "basic", "prefs": {"b": 2}, "age": 40});
        assert_eq!(ann.attributes.0, expected, "{engine}");
    })
    .await;
}

/// A batch is stored with one set-based statement, which touches each row once: a key
/// new to the store and repeated in the batch ends as if its rows were applied in order.
#[tokio::test]
async fn a_new_address_repeated_in_one_batch_ends_as_its_rows_applied_in_order() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let file = files.write(
            "twice.jsonl",
            concat!(
                r#"{"email":"cy@example.com","first_name":"Cy","created_at":1700000000,"topics":["news"],"consent_source":"shop","attributes":{"tier":"gold","prefs":{"a":1}}}"#,
                "\n",
                r#"{"email":"CY@example.com","last_name":"Young","created_at":1800000000,"topics":["news","sales"],"consent_source":"crm","attributes":{"prefs":{"b":2}}}"#,
                "\n"
            ),
        );
        let report = import(&store, ImportKind::Recipients, &file).await;
        assert_eq!((report.inserted, report.updated), (1, 1), "{engine}");
        assert_eq!(store.count_recipients().await.unwrap(), 1, "{engine}");
        let cy = stored(&store, "cy@example.com").await;
        assert_eq!(cy.email, "CY@example.com", "{engine}: the later spelling");
        assert_eq!(cy.first_name.as_deref(), Some("Cy"), "{engine}");
        assert_eq!(cy.last_name.as_deref(), Some("Young"), "{engine}");
        assert_eq!(cy.created_at, 1_700_000_000, "{engine}: the inserting row's");
        let expected = json!({"tier": "gold", "prefs": {"b": 2}});
        assert_eq!(cy.attributes.0, expected, "{engine}");
        let topics = store.subscribed_topics(cy.id).await.unwrap();
        assert_eq!(topics, ["news", "sales"], "{engine}");
    })
    .await;
}

#[tokio::test]
async fn json_lines_import_with_typed_values_and_line_numbers() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let text = [
            r#"{"email":"ann@example.com","topics":["newsletter"],"created_at":"2026-11-20T14:03:00+01:00","locale":"en_GB","vip":true}"#,
            "",
            r#"{"email":"bob@example.com","attributes":"{\"age\": 30}"}"#,
            r#"{"email":"cy@example.com","attributes":[1]}"#,
            r#"{"email":"dee@example.com""#,
            r#"{"first_name":"Nameless"}"#,
            r#"{"email":"eve@example.com","timezone":"Europe/Berlin ","country":"de"}"#,
        ]
        .join("\n");
        let path = files.write("people.ndjson", &text);
        let report = import(&store, ImportKind::Recipients, &path).await;
        assert_eq!(report.inserted, 3, "{engine}: {:?}", errors(&report));
        assert_eq!(
            errors(&report),
            [
                "line 4: attributes: expected a JSON object, found an array",
                "line 5: malformed JSON: EOF while parsing an object (column 26)",
                "line 6: email: missing (required)",
            ]
        );
        let ann = stored(&store, "ann@example.com").await;
        assert_eq!(ann.attributes.0, json!({"vip": true}), "{engine}");
        assert_eq!(ann.locale.as_deref(), Some("en-GB"));
        assert_eq!(ann.created_at, 1_795_179_780);
        assert_eq!(store.subscribed_topics(ann.id).await.unwrap(), ["newsletter"]);
        let bob = stored(&store, "bob@example.com").await;
        assert_eq!(bob.attributes.0, json!({"age": 30}));
        let eve = stored(&store, "eve@example.com").await;
        assert_eq!(eve.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(eve.country.as_deref(), Some("DE"));
    })
    .await;
}

#[tokio::test]
async fn products_upsert_by_sku_with_exact_prices() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let path = files.write("products.csv", PRODUCTS);
        let report = import(&store, ImportKind::Products, &path).await;
        assert_eq!(
            (report.inserted, report.updated, report.rejected),
            (2, 0, 0)
        );

        let changed = files.write(
            "changed.csv",
            "sku,name,url,price,currency,category,in_stock\n\
             SH-1,Trail shoe,https://shop.example.com/p/SH-1,79.9,USD,shoes,1\n\
             BAG-2,Day pack,ftp://shop.example.com/p/BAG-2,49.99,USD,bags,yes\n\
             CAM-3,Camera,https://shop.example.com/p/CAM-3,\"1,299.00\",USD,cameras,\n\
             PEN-4,Pen,https://shop.example.com/p/PEN-4,0.015,USD,office,\n\
             MUG-5,Mug,https://shop.example.com/p/MUG-5,-4.00,USD,kitchen,\n\
             TEA-6,Tea,https://shop.example.com/p/TEA-6,1200,jpy,food,maybe\n\
             YEN-7,Fan,https://shop.example.com/p/YEN-7,1200,JPY,home,no\n",
        );
        let report = import(&store, ImportKind::Products, &changed).await;
        assert_eq!(
            errors(&report),
            [
                "line 3: url: 'ftp://shop.example.com/p/BAG-2' is not an http(s) URL",
                "line 4: price: '1,299.00' is not a decimal number",
                "line 5: price: '0.015' has more than 2 decimals",
                "line 6: price: '-4.00' is negative",
                "line 7: in_stock: 'maybe' is not true/false/1/0/yes/no",
            ],
            "{engine}"
        );
        assert_eq!((report.inserted, report.updated), (1, 1), "{engine}");
        let products = store.products().await.unwrap();
        let prices: Vec<(&str, i64, &str, &str, bool)> = products
            .iter()
            .map(|p| {
                (
                    p.sku.as_str(),
                    p.price_cents,
                    p.currency.as_str(),
                    p.category.as_str(),
                    p.in_stock,
                )
            })
            .collect();
        assert_eq!(
            prices,
            [
                ("SH-1", 7990, "USD", "shoes", true),
                ("BAG-2", 4999, "USD", "bags", false),
                ("YEN-7", 120_000, "JPY", "home", false),
            ],
            "{engine}"
        );
    })
    .await;
}

async fn people_and_products(store: &Store, files: &Files) {
    let people = files.write("r.csv", "email\nann@example.com\nbob@example.com\n");
    import(store, ImportKind::Recipients, &people).await;
    import(store, ImportKind::Products, &files.write("p.csv", PRODUCTS)).await;
}

#[tokio::test]
async fn events_are_idempotent_by_event_id_and_bad_references_are_rejected() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        people_and_products(&store, &files).await;
        let path = files.write(
            "events.csv",
            "event_id,email,kind,sku,amount,occurred_at,properties\n\
             ev-1,ann@example.com,view,SH-1,,2026-11-01T10:00:00Z,\n\
             ev-2,ANN@example.com,purchase,SH-1,89.90,2026-11-01T10:05:00Z,\"{\"\"source\"\":\"\"email\"\"}\"\n\
             ev-3,ann@example.com,view,NOPE-9,,2026-11-01T10:00:00Z,\n\
             ev-4,zed@example.com,view,SH-1,,2026-11-01T10:00:00Z,\n\
             ev-5,bob@example.com,Add To Cart,SH-1,,2026-11-01T10:00:00Z,\n\
             ev-6,bob@example.com,purchase,SH-1,12.3.4,2026-11-01T10:00:00Z,\n\
             ev-7,bob@example.com,view,SH-1,,,\n\
             ev-8,bob@example.com,cart_add,BAG-2,,1762000000,{oops}\n\
             ev-9,bob@example.com,Cart_Add,BAG-2,,1762000000,\n\
             ev-9,bob@example.com,cart_add,BAG-2,,1762000001,\n",
        );
        let report = import(&store, ImportKind::Events, &path).await;
        let found = errors(&report);
        assert_eq!(
            found[..6],
            [
                "line 4: sku: unknown product 'NOPE-9'",
                "line 5: email: unknown recipient 'zed@example.com'",
                "line 6: kind: 'Add To Cart' is not a lower-case word (letters, digits, '_')",
                "line 7: amount: '12.3.4' is not a decimal number",
                "line 8: occurred_at: missing (required)",
                "line 9: properties: malformed JSON: key must be a string (column 2)",
            ],
            "{engine}"
        );
        assert_eq!(found.len(), 6);
        assert_eq!((report.inserted, report.skipped), (3, 1), "{engine}");
        assert_eq!(store.count_events().await.unwrap(), 3);

        let again = import(&store, ImportKind::Events, &path).await;
        assert_eq!((again.inserted, again.skipped, again.rejected), (0, 4, 6));
        assert_eq!(
            again.summary_line(),
            "events: 0 imported, 4 skipped (already imported), 6 rejected"
        );
        assert_eq!(store.count_events().await.unwrap(), 3, "{engine}");
    })
    .await;
}

#[tokio::test]
async fn unreadable_files_are_errors_naming_the_path() {
    for_each_engine(|store, _engine| async move {
        let files = Files::new();
        let missing = files.0.path().join("nope.csv");
        let error = import_file(
            &store,
            ImportKind::Recipients,
            &missing,
            &ImportOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, ImportError::NotFound { .. }));
        assert_eq!(
            error.to_string(),
            format!("file not found: {}", missing.display())
        );

        let xlsx = files.write("people.xlsx", "");
        let error = import_file(
            &store,
            ImportKind::Recipients,
            &xlsx,
            &ImportOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("people.xlsx") && error.contains(".csv, .jsonl, .ndjson"),
            "{error}"
        );

        let no_email = files.write("p.csv", "name,city\nAnn,Oslo\n");
        let error = import_file(
            &store,
            ImportKind::Recipients,
            &no_email,
            &ImportOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("p.csv: line 1: the header lacks required column(s): email"),
            "{error}"
        );
    })
    .await;
}

#[tokio::test]
async fn only_the_first_errors_are_kept_but_all_are_counted() {
    for_each_engine(|store, _engine| async move {
        let files = Files::new();
        let mut text = String::from("email\n");
        for i in 0..120 {
            let _ = writeln!(text, "user{i}@");
        }
        text.push_str("ok@example.com\n");
        let report = import(&store, ImportKind::Recipients, &files.write("r.csv", &text)).await;
        assert_eq!((report.inserted, report.rejected), (1, 120));
        assert_eq!(report.errors.len(), 50);
        assert_eq!(report.errors[0].line, 2);
        assert_eq!(report.errors[49].line, 51);
        let mut out = Vec::new();
        report.write_errors(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("... and 70 more rejected rows\n"), "{out}");
    })
    .await;
}

#[tokio::test]
async fn a_large_file_streams_through_in_batches() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let rows = 200_000;
        let mut text = String::from("email,first_name,loyalty_tier\n");
        for i in 0..rows {
            let _ = writeln!(text, "person{i}@example.com,P{i},gold");
        }
        let path = files.write("many.csv", &text);
        drop(text);
        let report = import(&store, ImportKind::Recipients, &path).await;
        assert_eq!(report.inserted, rows, "{engine}");
        assert_eq!(report.batches, rows / 1000, "one store call per 1,000 rows");
        assert_eq!(store.count_recipients().await.unwrap(), rows as i64);
    })
    .await;
}

#[tokio::test]
async fn every_spelling_of_an_address_is_one_recipient_and_an_erased_one_stays_suppressed() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        // NFC and NFD José, a Unicode domain and its A-label spelling, in any case.
        let csv = "email,first_name\n\
                   jos\u{e9}@example.com,NFC\n\
                   jose\u{301}@example.com,NFD\n\
                   user@ex\u{e4}mple.com,Unicode\n\
                   USER@xn--exmple-cua.com,A-label\n";
        let report = import(&store, ImportKind::Recipients, &files.write("r.csv", csv)).await;
        assert_eq!(
            (report.inserted, report.updated),
            (2, 2),
            "{engine}: {report:?}"
        );
        assert_eq!(store.count_recipients().await.unwrap(), 2, "{engine}");
        let jose = stored(&store, "JOSE\u{301}@EXAMPLE.COM").await;
        assert_eq!(jose.first_name.as_deref(), Some("NFD"), "{engine}");
        let user = stored(&store, "user@xn--exmple-cua.com").await;
        assert_eq!(
            user.email, "USER@xn--exmple-cua.com",
            "{engine}: the last spelling"
        );

        let erased = EmailAddress::parse("user@exämple.com").unwrap();
        assert!(store.erase_recipient(&erased).await.unwrap(), "{engine}");
        let again = "email\nuser@XN--EXMPLE-CUA.com\n";
        import(
            &store,
            ImportKind::Recipients,
            &files.write("again.csv", again),
        )
        .await;
        let reimported = EmailAddress::parse("user@XN--EXMPLE-CUA.com").unwrap();
        assert!(
            store.is_suppressed(&reimported).await.unwrap(),
            "{engine}: the erased address in another spelling is still suppressed"
        );
    })
    .await;
}

#[tokio::test]
async fn invisible_characters_in_addresses_are_refused_by_line() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let csv = "email\nuser\u{202E}moc@example.com\nus\u{200B}er@example.com\nok@example.com\n";
        let report = import(&store, ImportKind::Recipients, &files.write("r.csv", csv)).await;
        let errors = errors(&report);
        assert_eq!(report.inserted, 1, "{engine}: {errors:?}");
        assert!(
            errors[0].starts_with("line 2: email:") && errors[0].contains("U+202E"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("line 3: email:") && errors[1].contains("U+200B"),
            "{errors:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn nul_characters_are_refused_naming_the_file_line_and_field() {
    for_each_engine(|store, engine| async move {
        let files = Files::new();
        let csv = "email,first_name,city,attributes\n\
                   a@example.com,A\0nn,Paris,\n\
                   b@example.com,Bob,Be\0rlin,\n\
                   c@example.com,Cy,Rome,\"{\"\"note\"\":\"\"x\\u0000y\"\"}\"\n\
                   d@example.com,Di,Oslo,\n";
        let report = import(&store, ImportKind::Recipients, &files.write("r.csv", csv)).await;
        let found = errors(&report);
        assert_eq!(report.inserted, 1, "{engine}: {found:?}");
        assert!(found[0].starts_with("line 2: first_name:") && found[0].contains("NUL"), "{found:?}");
        assert!(found[1].starts_with("line 3: city:") && found[1].contains("NUL"), "{found:?}");
        assert!(found[2].starts_with("line 4: attributes: .note:"), "{found:?}");

        let jsonl = format!(
            "{}\n{}\n{}\n",
            json!({"email": "e@example.com", "first_name": "Eve"}),
            json!({"email": "f@example.com", "attributes": {"tags": ["ok", "n\u{0}o"]}}),
            json!({"email": "g@example.com", "team\u{0}": "x"}),
        );
        let report = import(&store, ImportKind::Recipients, &files.write("r.jsonl", &jsonl)).await;
        let found = errors(&report);
        assert_eq!(report.inserted, 1, "{engine}: {found:?}");
        assert!(found[0].starts_with("line 2: attributes: .tags[1]:"), "{found:?}");
        assert!(found[1].starts_with("line 3: team\\u0000:"), "{found:?}");

        let events = format!(
            "{}\n",
            json!({"email": "d@example.com", "kind": "view", "occurred_at": 1, "properties": {"q": "\u{0}"}})
        );
        let report = import(&store, ImportKind::Events, &files.write("e.jsonl", &events)).await;
        assert!(errors_mention(&report, "line 1: properties"), "{engine}: {:?}", report.errors);
    })
    .await;
}

fn errors_mention(report: &ImportReport, text: &str) -> bool {
    errors(report).iter().any(|e| e.contains(text))
}
