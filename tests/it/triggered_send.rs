//! `mailcast send` from the command line: one message with its own data, over a real
//! SMTP server; the same idempotency key never sends twice; bad input is named.

use crate::support;

use std::process::Command;
use std::time::Duration;

use mailcast::domain::CampaignStatus;
use mailcast::store::{NewTemplate, Store};
use support::campaign::{WorkerOptions, dispatcher, wait_for_status};
use support::smtp::SmtpServer;
use support::{TestDb, recipient};

fn mailcast(database: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(database)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run mailcast");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn send(database: &str, key: &str, data: &str) -> (bool, String, String) {
    mailcast(
        database,
        &[
            "send",
            "--template",
            "receipt",
            "--to",
            "Ada@Example.com",
            "--from-email",
            "orders@shop.example.com",
            "--data",
            data,
            "--idempotency-key",
            key,
        ],
    )
}

async fn seed(store: &Store) {
    store
        .upsert_recipients(&[
            recipient("ada@example.com", "Ada", &[]),
            recipient("grace@example.org", "Grace", &[]),
        ])
        .await
        .unwrap();
    store
        .upsert_template(&NewTemplate {
            name: "receipt".into(),
            subject: "Order {{ data.order }}".into(),
            preheader: None,
            html: "<p>Thanks {{ recipient.first_name }}, order {{ data.order }} \
                   ({{ data.total | default(value=\"?\") }}) is on its way.</p>"
                .into(),
            text: None,
        })
        .await
        .unwrap();
}

async fn one_message_per_key(db: &TestDb, engine: &str) {
    seed(&db.store).await;
    let url = db.url.as_str();

    let (ok, first, stderr) = send(
        url,
        "order-A-1001",
        r#"{"order": "A-1001", "total": "€42.00"}"#,
    );
    assert!(ok, "{engine}: {stderr}");
    let queued: serde_json::Value = serde_json::from_str(first.trim()).expect("JSON answer");
    let send_id = queued["send_id"].as_i64().expect("send id");

    let (ok, again, stderr) = send(
        url,
        "order-A-1001",
        r#"{"total": "€42.00", "order": "A-1001"}"#,
    );
    assert!(ok, "{engine}: a retry with the same key succeeds: {stderr}");
    assert_eq!(again, first, "{engine}: the first answer, again");
    assert!(stderr.contains("nothing sent again"), "{engine}: {stderr}");

    let (ok, _, stderr) = send(url, "order-A-1001", r#"{"order": "A-1002"}"#);
    assert!(!ok, "{engine}: same key, different message");
    assert!(stderr.contains("different message"), "{engine}: {stderr}");

    let (ok, _, stderr) = send(url, "order-bad", r#"["A-1003"]"#);
    assert!(
        !ok && stderr.contains("--data must be a JSON object"),
        "{engine}: {stderr}"
    );
    let (ok, _, stderr) = send(url, "order-bad", r#"{"order": "#);
    assert!(
        !ok && stderr.contains("--data is not valid JSON"),
        "{engine}: {stderr}"
    );
    let (ok, _, stderr) = mailcast(
        url,
        &[
            "send",
            "--template",
            "receipt",
            "--to",
            "nobody@example.net",
        ]
        .into_iter()
        .chain([
            "--from-email",
            "orders@shop.example.com",
            "--idempotency-key",
            "k9",
        ])
        .collect::<Vec<_>>(),
    );
    assert!(
        !ok && stderr.contains("upsert the recipient first"),
        "{engine}: {stderr}"
    );

    let smtp = SmtpServer::start();
    let worker = mailcast::dispatch::spawn_worker(
        dispatcher(&db.store, &smtp.url(), &WorkerOptions::default()).await,
    );
    wait_for_status(
        &db.store,
        send_id,
        CampaignStatus::Done,
        Duration::from_secs(60),
    )
    .await;
    worker.shutdown().await.unwrap();

    let received = smtp.received();
    assert_eq!(received.len(), 1, "{engine}: one key, one message");
    assert_eq!(
        received[0].to,
        vec!["ada@example.com".to_string()],
        "{engine}"
    );
    let message = mail_parser::MessageParser::default()
        .parse(&received[0].data)
        .expect("a MIME message");
    assert_eq!(message.subject(), Some("Order A-1001"), "{engine}");
    let text = message.body_text(0).expect("a text part");
    assert!(
        text.contains("Thanks Ada, order A-1001 (€42.00)"),
        "{engine}: {text}"
    );
}

#[tokio::test]
async fn the_cli_sends_one_message_per_idempotency_key() {
    let sqlite = TestDb::sqlite().await;
    one_message_per_key(&sqlite, "sqlite").await;
    sqlite.drop_database().await;
    match TestDb::postgres().await {
        Some(postgres) => {
            one_message_per_key(&postgres, "postgres").await;
            postgres.drop_database().await;
        }
        None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL half of this test skipped"),
    }
}
