//! Unsubscribe and preferences over real HTTP on both engines: GET and HEAD change
//! nothing, the RFC 8058 one-click POST unsubscribes at once, the page's form stops
//! single topics, and an unsubscribe during a running campaign stops that recipient's
//! pending message.

use crate::support;
use crate::support::http;

use std::time::Duration;

use http::{
    FOREIGN_KEY, Seeded, TestServer, keys, outbox_dispatcher, seed, server_keys, wait_for_events,
};
use mailcast::dispatch::{schedule_campaign, spawn_worker, start_campaign};
use mailcast::domain::{CampaignKind, CampaignStatus, DeliveryStatus, EmailAddress};
use mailcast::links::Token;
use mailcast::store::{CampaignSettings, NewCampaign, Recipient, Store, TrackingKind};
use support::{for_each_engine, recipient};

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn person(store: &Store, email: &str) -> Recipient {
    let address = EmailAddress::parse(email).unwrap();
    store.recipient_by_email(&address).await.unwrap().unwrap()
}

fn unsubscribe_path(seeded: &Seeded, recipient_id: i64) -> String {
    path_for(seeded.campaign_id, recipient_id)
}

fn path_for(campaign_id: i64, recipient_id: i64) -> String {
    format!(
        "/u/{}",
        Token::unsubscribe(campaign_id, recipient_id).sign(&server_keys())
    )
}

async fn post_form(server: &TestServer, path: &str, body: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn get_and_head_show_the_page_and_change_nothing() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let path = unsubscribe_path(&seeded, seeded.ada);
        for _ in 0..2 {
            let page = server.get(&path).await;
            assert_eq!(page.status(), 200, "{engine}");
            assert!(
                page.headers()["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("default-src 'none'")
            );
            assert!(page.headers().get("set-cookie").is_none());
            let html = page.text().await.unwrap();
            for expected in [
                "Unsubscribe from all email",
                "a•••@example.com",
                "Shop",
                "news",
                "offers",
                "Stop the selected topics",
            ] {
                assert!(
                    html.contains(expected),
                    "{engine}: {expected} missing from {html}"
                );
            }
            assert!(
                !html.contains("ada@example.com"),
                "{engine}: the address is masked"
            );
            let head = server.client.head(server.url(&path)).send().await.unwrap();
            assert_eq!(head.status(), 200);
        }
        server.stop().await;
        let ada = person(&store, "ada@example.com").await;
        assert_eq!(ada.status, "active", "{engine}");
        assert_eq!(
            store.subscribed_topics(ada.id).await.unwrap(),
            ["news", "offers"]
        );
        assert_eq!(
            store
                .count_tracking_events(TrackingKind::Unsubscribe)
                .await
                .unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn one_click_post_unsubscribes_at_once_and_a_second_is_harmless() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let path = unsubscribe_path(&seeded, seeded.grace);
        for attempt in 1..=2 {
            let response = post_form(&server, &path, ONE_CLICK).await;
            assert_eq!(response.status(), 200, "{engine}: attempt {attempt}");
            assert!(response.headers().get("location").is_none(), "no redirect");
            assert!(
                response
                    .text()
                    .await
                    .unwrap()
                    .contains("You are unsubscribed")
            );
            // In force at once, not when the event writer gets round to it.
            assert_eq!(
                person(&store, "grace@example.org").await.status,
                "unsubscribed",
                "{engine}"
            );
        }
        let page = server.get(&path).await.text().await.unwrap();
        assert!(
            page.contains("You are unsubscribed from all our email"),
            "{engine}: {page}"
        );
        assert!(!page.contains("Unsubscribe from all email"), "{engine}");
        server.stop().await;
        let events = store.tracking_events(seeded.campaign_id).await.unwrap();
        assert_eq!(events.len(), 2, "{engine}: {events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.kind == "unsubscribe" && e.recipient_id == seeded.grace)
        );
        assert_eq!(
            person(&store, "ada@example.com").await.status,
            "active",
            "{engine}: only Grace"
        );
    })
    .await;
}

#[tokio::test]
async fn one_click_works_as_multipart_form_data_too() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let body = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        let response = server
            .client
            .post(server.url(&unsubscribe_path(&seeded, seeded.ada)))
            .header("content-type", "multipart/form-data; boundary=b")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{engine}");
        assert_eq!(person(&store, "ada@example.com").await.status, "unsubscribed", "{engine}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_page_form_stops_single_topics_only() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let path = unsubscribe_path(&seeded, seeded.ada);

        let response = post_form(&server, &path, "action=topics&topic=offers").await;
        assert_eq!(response.status(), 200, "{engine}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("Your preferences are saved") && html.contains("offers"),
            "{engine}: {html}"
        );
        let ada = person(&store, "ada@example.com").await;
        assert_eq!(
            store.subscribed_topics(ada.id).await.unwrap(),
            ["news"],
            "{engine}"
        );
        assert_eq!(ada.status, "active", "{engine}: still gets news");

        for (body, status) in [
            ("action=topics", 200),
            ("action=topics&topic=vip", 200),
            ("", 400),
            ("List-Unsubscribe=Later", 400),
        ] {
            let response = post_form(&server, &path, body).await;
            assert_eq!(response.status(), status, "{engine}: {body:?}");
            assert!(
                response.text().await.unwrap().contains("nothing changed"),
                "{engine}: {body:?}"
            );
        }
        assert_eq!(
            store.subscribed_topics(ada.id).await.unwrap(),
            ["news"],
            "{engine}"
        );
        assert_eq!(person(&store, "ada@example.com").await.status, "active");

        let page = server.get(&path).await.text().await.unwrap();
        assert!(
            page.contains("“offers”: already stopped."),
            "{engine}: {page}"
        );
        server.stop().await;
        assert_eq!(
            store
                .count_tracking_events(TrackingKind::Unsubscribe)
                .await
                .unwrap(),
            1,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn invalid_unsubscribe_links_show_a_page_and_change_nothing() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let foreign = format!(
            "/u/{}",
            Token::unsubscribe(seeded.campaign_id, seeded.ada).sign(&keys(FOREIGN_KEY))
        );
        let nobody = unsubscribe_path(&seeded, 424_242);
        for path in [foreign.as_str(), nobody.as_str(), "/u/garbage"] {
            let page = server.get(path).await;
            assert_eq!(page.status(), 404, "{engine}: {path}");
            assert!(
                page.text()
                    .await
                    .unwrap()
                    .contains("This link is not valid"),
                "{engine}"
            );
            assert_eq!(
                post_form(&server, path, ONE_CLICK).await.status(),
                404,
                "{engine}: {path}"
            );
        }
        server.stop().await;
        assert_eq!(
            person(&store, "ada@example.com").await.status,
            "active",
            "{engine}"
        );
        assert_eq!(
            store
                .count_tracking_events(TrackingKind::Unsubscribe)
                .await
                .unwrap(),
            0
        );
    })
    .await;
}

async fn wait_for(store: &Store, campaign_id: i64, status: CampaignStatus) {
    support::campaign::wait_for_status(store, campaign_id, status, Duration::from_secs(60)).await
}

fn outbox_messages(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[tokio::test]
async fn unsubscribe_during_campaign_stops_pending_message() {
    for_each_engine(|store, engine| async move {
        let mut people = vec![
            recipient("ada@example.com", "Ada", &["news", "offers"]),
            recipient("grace@example.org", "Grace", &["news"]),
        ];
        for i in 0..3 {
            people.push(recipient(
                &format!("reader{i}@example.net"),
                "Reader",
                &["news"],
            ));
        }
        store.upsert_recipients(&people).await.unwrap();
        let template_id = http::template(&store).await;
        let mut settings = CampaignSettings::default();
        settings.utm.insert("utm_source".into(), "mailcast".into());
        let campaign_id = store
            .create_campaign(&NewCampaign {
                name: "running".into(),
                kind: CampaignKind::Marketing,
                template_id,
                segment_id: None,
                topic: Some("news".into()),
                from_name: "Shop".into(),
                from_email: "news@shop.example.com".into(),
                reply_to: None,
                send_at: None,
                settings,
            })
            .await
            .unwrap();
        let server = TestServer::start(&store).await;
        let outbox = tempfile::tempdir().unwrap();
        let dispatcher = outbox_dispatcher(&store, outbox.path(), &server.base).await;
        schedule_campaign(&store, &dispatcher.queue, campaign_id)
            .await
            .unwrap();
        // The audience is frozen and the campaign running; nothing is sent yet.
        start_campaign(&dispatcher, campaign_id).await.unwrap();
        assert_eq!(
            store.ledger_counts(campaign_id).await.unwrap().pending,
            5,
            "{engine}"
        );

        let grace = path_for(campaign_id, person(&store, "grace@example.org").await.id);
        assert_eq!(post_form(&server, &grace, ONE_CLICK).await.status(), 200);
        let ada = path_for(campaign_id, person(&store, "ada@example.com").await.id);
        assert_eq!(
            post_form(&server, &ada, "action=topics&topic=news")
                .await
                .status(),
            200
        );

        let worker = spawn_worker(dispatcher);
        wait_for(&store, campaign_id, CampaignStatus::Done).await;
        worker.shutdown().await.unwrap();

        let counts = store.ledger_counts(campaign_id).await.unwrap();
        assert_eq!(
            (counts.sent, counts.suppressed),
            (3, 2),
            "{engine}: {counts:?}"
        );
        let stopped = store
            .deliveries_in(campaign_id, &[DeliveryStatus::Suppressed])
            .await
            .unwrap();
        let reasons: Vec<(String, String)> = stopped
            .into_iter()
            .map(|d| (d.email, d.last_error.unwrap_or_default()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "ada@example.com".to_string(),
                    "not subscribed to the campaign topic".to_string()
                ),
                (
                    "grace@example.org".to_string(),
                    "recipient is unsubscribed".to_string()
                ),
            ],
            "{engine}"
        );
        let messages = outbox_messages(outbox.path());
        assert_eq!(messages.len(), 3, "{engine}");

        // The first reader's real message: its tracked link and its List-Unsubscribe
        // header both work against the server.
        let parsed = mail_parser::MessageParser::default()
            .parse(&messages[0])
            .unwrap();
        let html = parsed.body_html(0).unwrap().to_string();
        let click = html
            .split('"')
            .find(|part| part.starts_with(&format!("{}/c/", server.base)))
            .expect("a tracked link");
        let response = server.client.get(click).send().await.unwrap();
        assert_eq!(response.status(), 302, "{engine}");
        let target = response.headers()["location"].to_str().unwrap().to_string();
        assert!(
            target.starts_with("https://shop.example.com/")
                && target.contains("utm_source=mailcast"),
            "{target}"
        );
        let header = parsed
            .header_raw("List-Unsubscribe")
            .unwrap()
            .replace(['\r', '\n'], "");
        let one_click = header
            .split(['<', '>'])
            .find(|part| part.starts_with(&server.base))
            .expect("an https unsubscribe URL");
        let response = server
            .client
            .post(one_click)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(ONE_CLICK)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{engine}");
        wait_for_events(&store, TrackingKind::Click, 1).await;
        server.stop().await;
        let to = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_string();
        assert_eq!(
            person(&store, &to).await.status,
            "unsubscribed",
            "{engine}: {to}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_erased_recipients_id_is_never_reused_and_their_old_links_act_on_nobody() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        assert!(seeded.grace > seeded.ada, "{engine}: Grace is the newest");
        let old_unsubscribe = unsubscribe_path(&seeded, seeded.grace);
        let old_view = format!(
            "/v/{}",
            Token::view(seeded.campaign_id, seeded.grace).sign(&server_keys())
        );
        let grace = EmailAddress::parse("grace@example.org").unwrap();
        assert!(store.erase_recipient(&grace).await.unwrap(), "{engine}");
        store
            .upsert_recipients(&[recipient("newcomer@example.net", "Nia", &["news"])])
            .await
            .unwrap();
        let newcomer = person(&store, "newcomer@example.net").await;
        assert!(
            newcomer.id > seeded.grace,
            "{engine}: the newcomer got id {} after erased id {}",
            newcomer.id,
            seeded.grace
        );

        assert_eq!(server.get(&old_unsubscribe).await.status(), 404, "{engine}");
        assert_eq!(server.get(&old_view).await.status(), 404, "{engine}");
        let response = post_form(&server, &old_unsubscribe, ONE_CLICK).await;
        assert_eq!(response.status(), 404, "{engine}");
        let newcomer = person(&store, "newcomer@example.net").await;
        assert_eq!(newcomer.status, "active", "{engine}");
        assert_eq!(
            store.subscribed_topics(newcomer.id).await.unwrap(),
            ["news"],
            "{engine}"
        );
        server.stop().await;
        let events = store.tracking_events(seeded.campaign_id).await.unwrap();
        assert!(events.is_empty(), "{engine}: {events:?}");
    })
    .await;
}
