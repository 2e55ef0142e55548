//! Per-delivery return paths (VERP): with a bounce domain each message's envelope sender
//! names its delivery with a signed token; without one it is the campaign's sender.

use crate::support;

use mailcast::bounce::{DeliveryKey, ReturnPath};
use mailcast::links::KeyRing;
use mailcast::store::Store;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::{for_each_engine, recipient};

async fn two_readers(store: &Store) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
        ])
        .await
        .unwrap();
}

#[tokio::test]
async fn each_message_has_a_return_path_naming_its_delivery() {
    for_each_engine(|store, engine| async move {
        two_readers(&store).await;
        let path = ReturnPath::new("bounces", "bounce.shop.example.com").unwrap();
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let campaign = create_campaign(&store, "verp", "news", HTML).await;
        let options = WorkerOptions {
            return_path: Some(path.clone()),
            ..WorkerOptions::default()
        };
        let counts = run_to_done(&store, campaign, &server.url(), &options).await;
        assert_eq!(counts.sent, 2, "{engine}: {counts:?}");

        let mut named = Vec::new();
        for message in server.received() {
            assert!(
                message.from.starts_with("bounces+")
                    && message.from.ends_with("@bounce.shop.example.com"),
                "{engine}: {}",
                message.from
            );
            let key = path
                .delivery(&KeyRing::development(), &message.from)
                .unwrap_or_else(|| panic!("{engine}: {} names no delivery", message.from));
            let recipient = store.recipient(key.recipient_id).await.unwrap().unwrap();
            assert_eq!(vec![recipient.email.clone()], message.to, "{engine}");
            named.push(key);
        }
        assert!(
            named
                .iter()
                .all(|k: &DeliveryKey| k.campaign_id == campaign)
        );
        assert_ne!(named[0], named[1], "{engine}: one return path per delivery");
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn without_a_bounce_domain_the_envelope_sender_is_the_campaign_sender() {
    for_each_engine(|store, engine| async move {
        two_readers(&store).await;
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let campaign = create_campaign(&store, "plain", "news", HTML).await;
        run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;
        let senders: Vec<String> = server.received().into_iter().map(|m| m.from).collect();
        assert_eq!(
            senders,
            ["news@shop.example.com", "news@shop.example.com"],
            "{engine}"
        );
        server.stop();
    })
    .await;
}
