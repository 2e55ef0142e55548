//! What the SMTP server answers decides the ledger: deferred and retried, failed and
//! suppressed, or unknown and never re-sent on the worker's own.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::domain::{DeliveryStatus, EmailAddress};
use mailcast::store::Store;
use mailin::Response;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{AfterDot, ScriptedServer, accept_all, always_accept_dot, refuse};
use support::{for_each_engine, recipient};

async fn three_readers(store: &Store) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
            recipient("cat@example.com", "Cat", &["news"]),
        ])
        .await
        .unwrap();
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[tokio::test]
async fn a_4xx_reply_defers_and_the_retry_delivers_the_message_once() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt = Arc::new(|to: &str, seen: usize| {
            (to == "ben@example.com" && seen == 0)
                .then(|| Response::custom(451, "4.3.0 mailbox busy, try later".into()))
        });
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let campaign = create_campaign(&store, "defer", "news", HTML).await;
        let counts = run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;

        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        assert_eq!(
            sorted(server.recipients()),
            ["ann@example.com", "ben@example.com", "cat@example.com"],
            "{engine}: each message arrived exactly once"
        );
        let ben = store
            .deliveries_in(campaign, &[DeliveryStatus::Sent])
            .await
            .unwrap();
        let ben = ben.iter().find(|d| d.email == "ben@example.com").unwrap();
        assert_eq!(ben.attempts, 2, "{engine}: one deferral, one retry");
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn a_bad_mailbox_fails_the_delivery_suppresses_the_address_and_a_later_campaign_skips_it() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt = refuse("cat@example.com", 550, "5.1.1 no such user here");
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let first = create_campaign(&store, "first", "news", HTML).await;
        let counts = run_to_done(&store, first, &server.url(), &WorkerOptions::default()).await;
        assert_eq!((counts.sent, counts.failed), (2, 1), "{engine}: {counts:?}");
        let failed = store
            .deliveries_in(first, &[DeliveryStatus::Failed])
            .await
            .unwrap();
        assert!(
            failed[0].last_error.as_deref().unwrap().contains("5.1.1"),
            "{engine}: {failed:?}"
        );
        let cat = EmailAddress::parse("cat@example.com").unwrap();
        assert!(
            store.is_suppressed(&cat).await.unwrap(),
            "{engine}: suppressed"
        );

        let second = create_campaign(&store, "second", "news", HTML).await;
        let counts = run_to_done(&store, second, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(
            counts.total(),
            2,
            "{engine}: the suppressed address is not in the audience"
        );
        server.stop();
    })
    .await;
}

async fn ambiguous_after_dot(store: Store, engine: &str, behaviour: AfterDot) {
    three_readers(&store).await;
    let dot = Arc::new(move |message: &support::smtp::Received, _n: usize| {
        if message.to.iter().any(|t| t == "ann@example.com") {
            behaviour
        } else {
            AfterDot::Accept
        }
    });
    let server = ScriptedServer::start(accept_all(), dot).await;
    let campaign = create_campaign(&store, "ambiguous", "news", HTML).await;
    let options = WorkerOptions {
        send_timeout: Duration::from_secs(2),
        ..WorkerOptions::default()
    };
    let counts = run_to_done(&store, campaign, &server.url(), &options).await;
    assert_eq!(
        (counts.sent, counts.unknown),
        (2, 1),
        "{engine} {behaviour:?}: {counts:?}"
    );
    let unknown = store
        .deliveries_in(campaign, &[DeliveryStatus::Unknown])
        .await
        .unwrap();
    assert_eq!(unknown[0].email, "ann@example.com", "{engine}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to_ann = server
        .recipients()
        .iter()
        .filter(|t| *t == "ann@example.com")
        .count();
    assert_eq!(
        to_ann, 1,
        "{engine} {behaviour:?}: never re-sent by the worker on its own"
    );
    server.stop();
}

#[tokio::test]
async fn no_reply_after_the_final_dot_is_unknown_and_never_resent() {
    for_each_engine(|store, engine| ambiguous_after_dot(store, engine, AfterDot::Hang)).await;
}

#[tokio::test]
async fn a_connection_dropped_after_the_final_dot_is_unknown_and_never_resent() {
    for_each_engine(|store, engine| ambiguous_after_dot(store, engine, AfterDot::Drop)).await;
}

#[tokio::test]
async fn while_the_smtp_server_is_down_deliveries_defer_then_complete_once_it_is_back() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let campaign = create_campaign(&store, "outage", "news", HTML).await;
        let options = WorkerOptions::default();
        let worker =
            support::campaign::start(&store, campaign, &format!("smtp://{addr}"), &options).await;

        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.ledger_counts(campaign).await.unwrap().deferred < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: nothing deferred"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let server = ScriptedServer::start_on(addr, accept_all(), always_accept_dot()).await;
        support::campaign::wait_for_status(
            &store,
            campaign,
            mailcast::domain::CampaignStatus::Done,
            Duration::from_secs(60),
        )
        .await;
        worker.shutdown().await.unwrap();
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        assert_eq!(server.recipients().len(), 3, "{engine}: each once");
        server.stop();
    })
    .await;
}

const DOTS_HTML: &str = "<html><body><p>Hi {{ recipient.first_name }}</p><pre>\nline one\n.\nline two\r\n.\r\nline three\r\n\r\n.\nend of body</pre>\
<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></body></html>";

#[tokio::test]
async fn a_body_with_lone_dots_arrives_as_one_intact_message() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let campaign = create_campaign(&store, "dots", "news", DOTS_HTML).await;
        let counts = run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        for message in server.received() {
            let parsed = mail_parser::MessageParser::default()
                .parse(&message.data)
                .expect("parsable message");
            let html = parsed.body_html(0).expect("html part").to_string();
            assert!(
                html.contains("end of body"),
                "{engine}: body cut short: {html}"
            );
            assert!(html.contains("line three"), "{engine}");
            let text = parsed.body_text(0).expect("text part").to_string();
            assert!(
                text.contains("end of body"),
                "{engine}: text cut short: {text}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn when_the_first_relay_is_down_the_next_one_delivers_without_deferring() {
    use mailcast::config::{SmtpUrl, TransportConfig};
    use mailcast::dispatch::{schedule_campaign, spawn_worker};
    use support::campaign::{dispatcher_with, wait_for_status};

    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down = format!("smtp://{}", closed.local_addr().unwrap());
        drop(closed);
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let relays = TransportConfig::Relays(vec![
            ("primary".into(), SmtpUrl::parse(&down).unwrap()),
            ("backup".into(), SmtpUrl::parse(&server.url()).unwrap()),
        ]);
        let campaign = create_campaign(&store, "failover", "news", HTML).await;
        let dispatcher = dispatcher_with(&store, &relays, &WorkerOptions::default()).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for_status(
            &store,
            campaign,
            mailcast::domain::CampaignStatus::Done,
            Duration::from_secs(30),
        )
        .await;
        worker.shutdown().await.unwrap();
        let sent = store
            .deliveries_in(campaign, &[DeliveryStatus::Sent])
            .await
            .unwrap();
        assert_eq!(sent.len(), 3, "{engine}");
        assert!(
            sent.iter().all(|d| d.attempts == 1),
            "{engine}: nothing deferred: {sent:?}"
        );
        assert_eq!(server.recipients().len(), 3, "{engine}");
        server.stop();
    })
    .await;
}
