//! The suppression list from the CLI and the CRM API, on both engines: a mailbox refused
//! at RCPT TO is listed and shown with the campaign and SMTP reply that caused it, and
//! once removed it is mailed again.

use crate::support;
use crate::support::http;

use std::future::Future;
use std::process::Command;

use mailcast::domain::EmailAddress;
use mailcast::store::Store;
use reqwest::StatusCode;
use serde_json::Value;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot, refuse};
use support::{TestDb, recipient};

/// Runs `test` with a store and its URL: SQLite, then PostgreSQL when configured.
async fn for_each_database<F, Fut>(test: F)
where
    F: Fn(Store, String, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = TestDb::sqlite().await;
    test(sqlite.store.clone(), sqlite.url.clone(), "sqlite").await;
    sqlite.drop_database().await;
    if let Some(postgres) = TestDb::postgres().await {
        test(postgres.store.clone(), postgres.url.clone(), "postgres").await;
        postgres.drop_database().await;
    } else {
        eprintln!("TEST_DATABASE_URL unset: PostgreSQL half of this test skipped");
    }
}

/// Three readers; a campaign "spring" whose relay refused cat's mailbox at RCPT TO.
/// Returns the campaign's id.
async fn cat_bounced(store: &Store) -> i64 {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
            recipient("cat@example.com", "Cat", &["news"]),
        ])
        .await
        .unwrap();
    let rcpt = refuse(
        "cat@example.com",
        550,
        "5.1.1 <cat@example.com>: no such user here",
    );
    let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
    let campaign = create_campaign(store, "spring", "news", HTML).await;
    let counts = run_to_done(store, campaign, &server.url(), &WorkerOptions::default()).await;
    assert_eq!((counts.sent, counts.failed), (2, 1), "{counts:?}");
    server.stop();
    campaign
}

/// A later campaign reaches cat again.
async fn cat_is_mailed_again(store: &Store, engine: &str) {
    let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let campaign = create_campaign(store, "summer", "news", HTML).await;
    let counts = run_to_done(store, campaign, &server.url(), &WorkerOptions::default()).await;
    assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
    assert!(
        server.recipients().iter().any(|to| to == "cat@example.com"),
        "{engine}"
    );
    server.stop();
}

fn mailcast(database: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_lists_shows_and_removes_a_suppression_with_its_campaign_and_reply() {
    for_each_database(|store, url, engine| async move {
        let campaign = cat_bounced(&store).await;

        let (code, list, stderr) = mailcast(&url, &["suppression", "list"]);
        assert_eq!(code, 0, "{engine}: {stderr}");
        assert_eq!(list.lines().count(), 1, "{engine}: only cat: {list}");
        assert!(list.contains("cat@example.com"), "{engine}: {list}");
        assert!(
            list.contains(&format!("[spring (id {campaign})]")),
            "{engine}: {list}"
        );

        let (code, shown, stderr) = mailcast(&url, &["suppression", "show", "CAT@example.com"]);
        assert_eq!(code, 0, "{engine}: {stderr}");
        assert!(
            shown.contains(&format!("campaign  spring (id {campaign})")),
            "{engine}: {shown}"
        );
        assert!(shown.contains("delivery  "), "{engine}: {shown}");
        assert!(
            shown.contains("5.1.1 <cat@example.com>: no such user here"),
            "{engine}: {shown}"
        );
        assert!(shown.contains("RCPT TO"), "{engine}: {shown}");

        let (code, _, stderr) = mailcast(&url, &["suppression", "show", "ann@example.com"]);
        assert_ne!(code, 0, "{engine}");
        assert!(
            stderr.contains("ann@example.com is not on the suppression list"),
            "{engine}: {stderr}"
        );
        let (code, _, stderr) = mailcast(&url, &["suppression", "remove", "not an address"]);
        assert_ne!(code, 0, "{engine}");
        assert!(
            stderr.contains("invalid email address"),
            "{engine}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{engine}: {stderr}");

        let (code, removed, stderr) = mailcast(&url, &["suppression", "remove", "cat@example.com"]);
        assert_eq!(code, 0, "{engine}: {stderr}");
        assert!(removed.contains("removed"), "{engine}: {removed}");
        let cat = EmailAddress::parse("cat@example.com").unwrap();
        assert!(!store.is_suppressed(&cat).await.unwrap(), "{engine}");
        let (_, list, _) = mailcast(&url, &["suppression", "list"]);
        assert!(list.contains("no suppressed addresses"), "{engine}: {list}");
        cat_is_mailed_again(&store, engine).await;
    })
    .await;
}

#[tokio::test]
async fn api_lists_shows_and_deletes_a_suppression_with_its_campaign_and_reply() {
    for_each_database(|store, _url, engine| async move {
        let campaign = cat_bounced(&store).await;
        let server = http::TestServer::start(&store).await;
        let key = http::api_key(&store, "crm").await;
        let call = |method: reqwest::Method, path: &str| {
            let request = server
                .client
                .request(method, server.url(path))
                .bearer_auth(&key);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        use reqwest::Method as M;

        let (status, page) = call(M::GET, "/api/suppressions").await;
        assert_eq!(status, StatusCode::OK, "{engine}: {page}");
        let listed = page["suppressions"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{engine}: {page}");
        assert_eq!(listed[0]["email"], "cat@example.com", "{engine}");
        assert_eq!(listed[0]["campaign"], "spring", "{engine}");

        let (status, one) = call(M::GET, "/api/suppressions/cat%40example.com").await;
        assert_eq!(status, StatusCode::OK, "{engine}: {one}");
        assert_eq!(one["campaign_id"], campaign, "{engine}");
        assert!(one["delivery_id"].is_i64(), "{engine}: {one}");
        let reply = one["smtp_reply"].as_str().unwrap_or_default();
        assert!(
            reply.contains("5.1.1") && reply.contains("RCPT TO"),
            "{engine}: {reply}"
        );
        assert!(
            one["reason"].as_str().unwrap().starts_with("bounce"),
            "{engine}"
        );

        let (status, body) = call(M::GET, "/api/suppressions/ann%40example.com").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{engine}: {body}");
        let (status, body) = call(M::GET, "/api/suppressions/nobody").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine}: {body}");
        assert!(body["errors"]["email"].is_array(), "{engine}: {body}");
        let (status, body) = call(M::GET, "/api/suppressions?limit=0").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine}: {body}");
        assert!(body["errors"]["limit"].is_array(), "{engine}: {body}");

        let (status, body) = call(M::DELETE, "/api/suppressions/cat%40example.com").await;
        assert_eq!(status, StatusCode::OK, "{engine}: {body}");
        assert_eq!(body["suppression"]["campaign"], "spring", "{engine}");
        let (status, _) = call(M::DELETE, "/api/suppressions/cat%40example.com").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{engine}");
        let (_, page) = call(M::GET, "/api/suppressions").await;
        assert_eq!(page["suppressions"], Value::Array(vec![]), "{engine}");
        server.stop().await;
        cat_is_mailed_again(&store, engine).await;
    })
    .await;
}

#[tokio::test]
async fn a_campaign_paused_by_a_sender_rejection_shows_why_in_the_cli_and_the_api() {
    use mailcast::domain::CampaignStatus;
    use support::scripted_smtp::{MailReply, answer_mail};

    for_each_database(|store, url, engine| async move {
        store
            .upsert_recipients(&[recipient("ann@example.com", "Ann", &["news"])])
            .await
            .unwrap();
        let refusing = ScriptedServer::start_with_mail(
            answer_mail(MailReply::Refuse(
                553,
                "5.1.8 Sender address rejected: Domain not found",
            )),
            accept_all(),
            always_accept_dot(),
        )
        .await;
        let campaign = create_campaign(&store, "refused", "news", HTML).await;
        let options = WorkerOptions::default();
        let worker = support::campaign::start(&store, campaign, &refusing.url(), &options).await;
        support::campaign::wait_for_status(
            &store,
            campaign,
            CampaignStatus::Paused,
            std::time::Duration::from_secs(30),
        )
        .await;
        worker.shutdown().await.unwrap();
        refusing.stop();

        let (code, status, stderr) = mailcast(&url, &["campaign", "status", "refused"]);
        assert_eq!(code, 0, "{engine}: {stderr}");
        assert!(status.contains("is paused"), "{engine}: {status}");
        assert!(status.contains("paused because"), "{engine}: {status}");
        assert!(
            status.contains("5.1.8") && status.contains("MAIL FROM"),
            "{engine}: {status}"
        );

        let server = http::TestServer::start(&store).await;
        let key = http::api_key(&store, "crm").await;
        let body: Value = server
            .client
            .get(server.url(&format!("/api/campaigns/{campaign}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "paused", "{engine}: {body}");
        let reason = body["pause_reason"].as_str().unwrap_or_default();
        assert!(reason.contains("5.1.8"), "{engine}: {body}");
        server.stop().await;
    })
    .await;
}
