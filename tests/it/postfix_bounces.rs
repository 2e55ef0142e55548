//! Acceptance against a real Postfix: mailcast sends a campaign through a private
//! Postfix instance with VERP return paths; Postfix generates real DSNs for its unknown
//! local users and delivers them over SMTP to mailcast's bounce receiver. Exactly those
//! deliveries end `bounced`, exactly those addresses are suppressed, and the next
//! campaign skips them. On both engines.

use crate::support;

use std::time::Duration;

use mailcast::bounce::{BounceSettings, ReceiverLimits, ReturnPath};
use mailcast::domain::{DeliveryStatus, EmailAddress};
use mailcast::links::KeyRing;
use mailcast::store::{HARD_BOUNCE_REASON, SoftBouncePolicy, Store};
use support::bounce_receiver::Receiver;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::postfix::Postfix;
use support::{eventually, for_each_engine, recipient};

const LOCAL: &str = "users.mailcast.test";
const BOUNCE_DOMAIN: &str = "bounce.shop.example.com";
const KNOWN: [&str; 2] = ["ann", "ben"];
const UNKNOWN: [&str; 2] = ["nobody1", "nobody2"];

fn address(user: &str) -> String {
    format!("{user}@{LOCAL}")
}

async fn bounced_and_suppressed(store: &Store, campaign: i64) -> (Vec<String>, Vec<String>) {
    let bounced = store
        .deliveries_in(campaign, &[DeliveryStatus::Bounced])
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.email)
        .collect();
    let mut suppressed = Vec::new();
    for user in KNOWN.iter().chain(&UNKNOWN) {
        let email = EmailAddress::parse(&address(user)).unwrap();
        if let Some(s) = store.suppression(&email).await.unwrap() {
            assert_eq!(s.reason, HARD_BOUNCE_REASON, "{user}: {s:?}");
            suppressed.push(address(user));
        }
    }
    (bounced, suppressed)
}

#[tokio::test]
async fn postfix_dsns_for_unknown_users_bounce_exactly_those_deliveries() {
    for_each_engine(|store, engine| async move {
        let path = ReturnPath::new("bounces", BOUNCE_DOMAIN).unwrap();
        let settings = BounceSettings {
            return_path: Some(path.clone()),
            keys: KeyRing::development(),
            soft: SoftBouncePolicy::default(),
            pause: mailcast::bounce::PauseThresholds::default(),
        };
        let receiver = Receiver::start(&store, settings, ReceiverLimits::default()).await;
        let Some(postfix) = Postfix::start(LOCAL, &KNOWN, BOUNCE_DOMAIN, receiver.addr.port())
        else {
            return;
        };
        let people: Vec<_> = KNOWN
            .iter()
            .chain(&UNKNOWN)
            .map(|user| recipient(&address(user), user, &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let options = WorkerOptions {
            return_path: Some(path),
            ..WorkerOptions::default()
        };

        let first = create_campaign(&store, "first", "news", HTML).await;
        let counts = run_to_done(&store, first, &postfix.url(), &options).await;
        assert_eq!(
            counts.sent, 4,
            "{engine}: Postfix takes every message: {counts:?}"
        );
        eventually(
            &format!("{engine}: Postfix's DSNs to bounce both unknown users"),
            Duration::from_secs(30),
            async || {
                let counts = store.ledger_counts(first).await.unwrap();
                if counts.bounced == 2 {
                    return Ok(());
                }
                let log = postfix.log();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                Err(format!("{counts:?}; Postfix log ends {tail:#?}"))
            },
        )
        .await;
        let unknown: Vec<String> = UNKNOWN.iter().map(|u| address(u)).collect();
        let (bounced, suppressed) = bounced_and_suppressed(&store, first).await;
        assert_eq!(bounced, unknown, "{engine}");
        assert_eq!(suppressed, unknown, "{engine}");
        let listed = store.received_bounces(10, 0).await.unwrap();
        assert_eq!(listed.len(), 2, "{engine}: one DSN each: {listed:#?}");
        for bounce in &listed {
            assert_eq!(
                bounce.class.as_deref(),
                Some("hard"),
                "{engine}: {bounce:?}"
            );
            assert_eq!(
                bounce.status.as_deref(),
                Some("5.1.1"),
                "{engine}: {bounce:?}"
            );
            assert_eq!(
                bounce.matched_by.as_deref(),
                Some("return_path"),
                "{engine}"
            );
        }

        let second = create_campaign(&store, "second", "news", HTML).await;
        let counts = run_to_done(&store, second, &postfix.url(), &options).await;
        assert_eq!(
            (counts.sent, counts.total()),
            (2, 2),
            "{engine}: {counts:?}"
        );
        let all = DeliveryStatus::ALL.to_vec();
        let mailed: Vec<String> = store
            .deliveries_in(second, &all)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.email)
            .collect();
        let known: Vec<String> = KNOWN.iter().map(|u| address(u)).collect();
        assert_eq!(
            mailed, known,
            "{engine}: the next campaign skips the bounced"
        );
        drop(postfix);
        receiver.stop().await;
    })
    .await;
}
