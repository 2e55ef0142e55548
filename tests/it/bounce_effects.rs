//! What a received bounce does, on both engines: hard bounces mark the delivery
//! `bounced` and suppress the address, soft ones count until the policy suppresses,
//! complaints suppress and unsubscribe; the same bounce twice changes nothing, and a
//! forged return path or an unconfirmed Message-ID matches no delivery.

use crate::support;

use mailcast::bounce::{self, BounceSettings, PauseThresholds, ReturnPath};
use mailcast::domain::{CampaignStatus, DeliveryStatus, EmailAddress};
use mailcast::links::KeyRing;
use mailcast::store::{
    COMPLAINT_REASON, HARD_BOUNCE_REASON, IncomingBounce, SoftBouncePolicy, Store,
};
use support::bounce_mail::{complaint, dsn};
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::{for_each_engine, recipient};

const DOMAIN: &str = "bounce.shop.example.com";

fn settings(soft: SoftBouncePolicy) -> BounceSettings {
    BounceSettings {
        return_path: Some(ReturnPath::new("bounces", DOMAIN).unwrap()),
        keys: KeyRing::development(),
        soft,
        pause: PauseThresholds::default(),
    }
}

/// A sent message as the relay saw it: its return path and Message-ID.
struct Sent {
    return_path: String,
    message_id: String,
}

/// Sends campaign `name` to everyone subscribed to news; returns (campaign id, what was
/// sent to each address).
async fn send_campaign(store: &Store, name: &str) -> (i64, Vec<(String, Sent)>) {
    let campaign = create_campaign(store, name, "news", HTML).await;
    (campaign, send(store, campaign).await)
}

/// Sends the drafted `campaign`; returns what was sent to each address.
async fn send(store: &Store, campaign: i64) -> Vec<(String, Sent)> {
    let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let options = WorkerOptions {
        return_path: settings(SoftBouncePolicy::default()).return_path,
        ..WorkerOptions::default()
    };
    run_to_done(store, campaign, &server.url(), &options).await;
    let sent = server
        .received()
        .into_iter()
        .map(|m| {
            let sent = Sent {
                return_path: m.from.clone(),
                message_id: m.message_id(),
            };
            (m.to[0].clone(), sent)
        })
        .collect();
    server.stop();
    sent
}

fn sent_to<'a>(sent: &'a [(String, Sent)], email: &str) -> &'a Sent {
    &sent.iter().find(|(to, _)| to == email).expect("sent").1
}

async fn readers(store: &Store) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news", "deals"]),
            recipient("ben@example.com", "Ben", &["news", "deals"]),
            recipient("cat@example.com", "Cat", &["news"]),
        ])
        .await
        .unwrap();
}

/// Stores and processes one message as the receiver would; returns what it did.
async fn receive(
    store: &Store,
    settings: &BounceSettings,
    raw: &[u8],
    rcpt: &str,
) -> Option<String> {
    let envelope_to = [rcpt.to_string()];
    let stored = bounce::store(
        store,
        &IncomingBounce {
            raw,
            envelope_from: Some(""),
            envelope_to: &envelope_to,
            received_at: mailcast::time::now(),
        },
    )
    .await
    .unwrap();
    bounce::process(store, settings, stored.id).await.unwrap()
}

async fn status_of(store: &Store, campaign: i64, email: &str) -> DeliveryStatus {
    let recipient = recipient_of(store, email).await;
    let all = DeliveryStatus::ALL.to_vec();
    let found = store.deliveries_in(campaign, &all).await.unwrap();
    let report = found.iter().find(|d| d.email == recipient.email).unwrap();
    report.status.parse().unwrap()
}

async fn recipient_of(store: &Store, email: &str) -> mailcast::store::Recipient {
    let address = EmailAddress::parse(email).unwrap();
    store
        .recipient_by_email(&address)
        .await
        .unwrap()
        .expect("a recipient")
}

async fn suppressed(store: &Store, email: &str) -> Option<String> {
    let address = EmailAddress::parse(email).unwrap();
    store.suppression(&address).await.unwrap().map(|s| s.reason)
}

#[tokio::test]
async fn a_hard_bounce_marks_the_delivery_bounced_and_suppresses_the_address() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let ann = sent_to(&sent, "ann@example.com");
        let raw = dsn(
            &ann.return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown",
            &ann.message_id,
        );
        let action = receive(
            &store,
            &settings(SoftBouncePolicy::default()),
            &raw,
            &ann.return_path,
        )
        .await;
        assert!(action.is_some_and(|a| a.contains("bounced")), "{engine}");

        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(
            (counts.sent, counts.bounced),
            (2, 1),
            "{engine}: {counts:?}"
        );
        assert_eq!(
            status_of(&store, campaign, "ann@example.com").await,
            DeliveryStatus::Bounced
        );
        let stats = store.campaign_stats(campaign, &[]).await.unwrap();
        assert_eq!(stats.bounces, 1, "{engine}: campaign statistics count it");
        let address = EmailAddress::parse("ann@example.com").unwrap();
        let suppression = store
            .suppression(&address)
            .await
            .unwrap()
            .expect("suppressed");
        assert_eq!(suppression.reason, HARD_BOUNCE_REASON, "{engine}");
        assert_eq!(suppression.campaign_id, Some(campaign), "{engine}");
        assert!(
            suppression
                .smtp_reply
                .as_deref()
                .unwrap()
                .starts_with("5.1.1"),
            "{engine}: {suppression:?}"
        );
        assert_eq!(
            suppressed(&store, "ben@example.com").await,
            None,
            "{engine}"
        );

        let listed = store.received_bounces(10, 0).await.unwrap();
        assert_eq!(listed.len(), 1, "{engine}");
        let record = &listed[0];
        assert_eq!(record.class.as_deref(), Some("hard"), "{engine}");
        assert_eq!(
            record.recipient.as_deref(),
            Some("ann@example.com"),
            "{engine}"
        );
        assert_eq!(
            record.matched_by.as_deref(),
            Some("return_path"),
            "{engine}"
        );
        assert_eq!(record.delivery_id, suppression.delivery_id, "{engine}");
        let (_, kept) = store.bounce(record.id).await.unwrap().unwrap();
        assert_eq!(kept, raw, "{engine}: the raw message is kept as received");
    })
    .await;
}

#[tokio::test]
async fn the_same_bounce_twice_changes_nothing() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let cat = sent_to(&sent, "cat@example.com");
        let raw = dsn(
            &cat.return_path,
            "cat@example.com",
            "4.2.2",
            "452 4.2.2 Mailbox full",
            &cat.message_id,
        );
        let soft = SoftBouncePolicy {
            limit: 2,
            window: 5,
        };
        let first = receive(&store, &settings(soft), &raw, &cat.return_path).await;
        assert!(
            first.is_some_and(|a| a.contains("soft bounce 1")),
            "{engine}"
        );
        let second = receive(&store, &settings(soft), &raw, &cat.return_path).await;
        assert_eq!(second, None, "{engine}: already processed");
        assert_eq!(
            store.received_bounces(10, 0).await.unwrap().len(),
            1,
            "{engine}"
        );
        assert_eq!(
            suppressed(&store, "cat@example.com").await,
            None,
            "{engine}: counted once"
        );
        assert_eq!(
            status_of(&store, campaign, "cat@example.com").await,
            DeliveryStatus::Sent
        );
    })
    .await;
}

#[tokio::test]
async fn soft_bounces_suppress_once_the_policy_count_is_reached() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let soft = SoftBouncePolicy {
            limit: 2,
            window: 3,
        };
        for (round, name) in ["first", "second"].into_iter().enumerate() {
            let (campaign, sent) = send_campaign(&store, name).await;
            let cat = sent_to(&sent, "cat@example.com");
            let raw = dsn(
                &cat.return_path,
                "cat@example.com",
                "4.2.2",
                "452 4.2.2 Mailbox full",
                &cat.message_id,
            );
            let action = receive(&store, &settings(soft), &raw, &cat.return_path)
                .await
                .unwrap();
            let expected =
                (round == 1).then(|| "bounce: 2 soft bounces in the last 3 messages".to_string());
            assert_eq!(
                suppressed(&store, "cat@example.com").await,
                expected,
                "{engine}: {action}"
            );
            assert_eq!(
                status_of(&store, campaign, "cat@example.com").await,
                DeliveryStatus::Sent
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_complaint_suppresses_and_unsubscribes_from_every_topic() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let ben = sent_to(&sent, "ben@example.com");
        let raw = complaint(&ben.return_path, "ben@example.com", &ben.message_id);
        receive(
            &store,
            &settings(SoftBouncePolicy::default()),
            &raw,
            &ben.return_path,
        )
        .await;
        assert_eq!(
            suppressed(&store, "ben@example.com").await.as_deref(),
            Some(COMPLAINT_REASON),
            "{engine}"
        );
        let id = recipient_of(&store, "ben@example.com").await.id;
        assert!(
            store.subscribed_topics(id).await.unwrap().is_empty(),
            "{engine}"
        );
        let ann = recipient_of(&store, "ann@example.com").await.id;
        assert_eq!(
            store.subscribed_topics(ann).await.unwrap(),
            ["deals", "news"],
            "{engine}"
        );
        assert_eq!(
            status_of(&store, campaign, "ben@example.com").await,
            DeliveryStatus::Sent
        );
    })
    .await;
}

#[tokio::test]
async fn a_forged_return_path_matches_nothing() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let ann = sent_to(&sent, "ann@example.com");
        let stranger = KeyRing::parse("9:00112233445566778899aabbccddeeff").unwrap();
        let recipient_id = recipient_of(&store, "ann@example.com").await.id;
        let forged =
            ReturnPath::new("bounces", DOMAIN)
                .unwrap()
                .address(&stranger, campaign, recipient_id);
        // No Message-ID of ours either: only the return path could name the delivery.
        let raw = dsn(
            &forged,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            "<x@elsewhere>",
        );
        let action = receive(
            &store,
            &settings(SoftBouncePolicy::default()),
            &raw,
            &forged,
        )
        .await;
        assert_eq!(
            action.as_deref(),
            Some("nothing: no delivery of ours"),
            "{engine}"
        );
        assert_eq!(
            suppressed(&store, "ann@example.com").await,
            None,
            "{engine}"
        );
        assert_eq!(
            store.ledger_counts(campaign).await.unwrap().bounced,
            0,
            "{engine}"
        );
        assert_ne!(forged, ann.return_path);
    })
    .await;
}

#[tokio::test]
async fn without_a_return_path_the_quoted_message_id_matches_when_the_address_agrees() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let ann = sent_to(&sent, "ann@example.com");
        let settings = settings(SoftBouncePolicy::default());
        // Sent to the campaign sender (no VERP): only the Message-ID names the delivery,
        // and a report about someone else with ann's Message-ID changes nothing.
        let mismatched = dsn(
            "news@shop.example.com",
            "ben@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &ann.message_id,
        );
        let action = receive(&store, &settings, &mismatched, "news@shop.example.com").await;
        assert_eq!(
            action.as_deref(),
            Some("nothing: no delivery of ours"),
            "{engine}"
        );
        assert_eq!(
            suppressed(&store, "ben@example.com").await,
            None,
            "{engine}"
        );

        let raw = dsn(
            "news@shop.example.com",
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &ann.message_id,
        );
        receive(&store, &settings, &raw, "news@shop.example.com").await;
        assert_eq!(
            status_of(&store, campaign, "ann@example.com").await,
            DeliveryStatus::Bounced,
            "{engine}"
        );
        let listed = store.received_bounces(1, 0).await.unwrap();
        assert_eq!(
            listed[0].matched_by.as_deref(),
            Some("message_id"),
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn bounces_stored_but_not_processed_are_processed_later() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        let ann = sent_to(&sent, "ann@example.com");
        let raw = dsn(
            &ann.return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &ann.message_id,
        );
        let envelope_to = [ann.return_path.clone()];
        bounce::store(
            &store,
            &IncomingBounce {
                raw: &raw,
                envelope_from: None,
                envelope_to: &envelope_to,
                received_at: mailcast::time::now(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            store.unprocessed_bounces(10).await.unwrap().len(),
            1,
            "{engine}"
        );
        let settings = settings(SoftBouncePolicy::default());
        assert_eq!(
            bounce::process_unprocessed(&store, &settings)
                .await
                .unwrap(),
            1,
            "{engine}"
        );
        assert!(
            store.unprocessed_bounces(10).await.unwrap().is_empty(),
            "{engine}"
        );
        assert_eq!(
            status_of(&store, campaign, "ann@example.com").await,
            DeliveryStatus::Bounced,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn erasing_a_recipient_erases_the_bounces_about_them() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (_, sent) = send_campaign(&store, "spring").await;
        let settings = settings(SoftBouncePolicy::default());
        for email in ["ann@example.com", "ben@example.com"] {
            let to = sent_to(&sent, email);
            let raw = dsn(
                &to.return_path,
                email,
                "5.1.1",
                "550 5.1.1 User unknown",
                &to.message_id,
            );
            receive(&store, &settings, &raw, &to.return_path).await;
        }
        let ann = EmailAddress::parse("ann@example.com").unwrap();
        assert!(store.erase_recipient(&ann).await.unwrap(), "{engine}");
        let left: Vec<Option<String>> = store
            .received_bounces(10, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.recipient)
            .collect();
        assert_eq!(left, [Some("ben@example.com".to_string())], "{engine}");
        assert!(
            store.is_suppressed(&ann).await.unwrap(),
            "{engine}: the hash stays"
        );
    })
    .await;
}

/// A campaign still sending whose complaint rate passes the threshold pauses itself and
/// says why; the statistics show the rate. Below the minimum sample it goes on.
#[tokio::test]
async fn a_running_campaign_over_the_complaint_threshold_pauses_itself() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        let (campaign, sent) = send_campaign(&store, "spring").await;
        // Still sending, as when other deliveries wait for their retry.
        store
            .transition_campaign(campaign, &[CampaignStatus::Done], CampaignStatus::Running)
            .await
            .unwrap();
        let ben = sent_to(&sent, "ben@example.com");
        let raw = complaint(&ben.return_path, "ben@example.com", &ben.message_id);
        let mut strict = settings(SoftBouncePolicy::default());
        strict.pause = PauseThresholds {
            min_delivered: 4,
            ..PauseThresholds::default()
        };
        receive(&store, &strict, &raw, &ben.return_path).await;
        assert_eq!(
            store.campaign(campaign).await.unwrap().status,
            CampaignStatus::Running,
            "{engine}: 3 delivered is under the sample of 4"
        );

        strict.pause.min_delivered = 3;
        let cat = sent_to(&sent, "cat@example.com");
        let raw = complaint(&cat.return_path, "cat@example.com", &cat.message_id);
        receive(&store, &strict, &raw, &cat.return_path).await;
        let paused = store.campaign(campaign).await.unwrap();
        assert_eq!(paused.status, CampaignStatus::Paused, "{engine}");
        assert_eq!(
            paused.pause_reason.as_deref(),
            Some("complaint rate 66.67% (2 of 3 delivered) is over 0.30%"),
            "{engine}"
        );
        let stats = store.campaign_statistics(campaign).await.unwrap();
        assert_eq!(
            (stats.feedback.complaints, stats.feedback.delivered),
            (2, 3),
            "{engine}"
        );
        assert!((stats.complaint_rate - 2.0 / 3.0).abs() < 1e-9, "{engine}");
    })
    .await;
}

/// The statistics and `/metrics` give hard, soft and complaint rates for the campaign
/// and for each segment it declared, counted over that segment's delivered messages.
#[tokio::test]
async fn bounce_and_complaint_rates_are_given_per_declared_segment() {
    for_each_engine(|store, engine| async move {
        readers(&store).await;
        store
            .upsert_segment("ann-and-cat", r#"first_name in ["Ann", "Cat"]"#, "")
            .await
            .unwrap();
        store
            .upsert_segment("ben", r#"first_name == "Ben""#, "")
            .await
            .unwrap();
        let mut draft = support::campaign::draft(&store, "spring", "news", HTML).await;
        draft.settings.declared_segments = vec!["ann-and-cat".into(), "ben".into()];
        let campaign = store.create_campaign(&draft).await.unwrap();
        let sent = send(&store, campaign).await;
        let settings = settings(SoftBouncePolicy::default());
        let ann = sent_to(&sent, "ann@example.com");
        let hard = dsn(
            &ann.return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &ann.message_id,
        );
        receive(&store, &settings, &hard, &ann.return_path).await;
        let ben = sent_to(&sent, "ben@example.com");
        let soft = dsn(
            &ben.return_path,
            "ben@example.com",
            "4.2.2",
            "452 4.2.2 Mailbox full",
            &ben.message_id,
        );
        receive(&store, &settings, &soft, &ben.return_path).await;
        let cat = sent_to(&sent, "cat@example.com");
        let raw = complaint(&cat.return_path, "cat@example.com", &cat.message_id);
        receive(&store, &settings, &raw, &cat.return_path).await;

        let stats = store.campaign_statistics(campaign).await.unwrap();
        let counts = |f: mailcast::store::Feedback| (f.delivered, f.hard, f.soft, f.complaints);
        assert_eq!(counts(stats.feedback), (3, 1, 1, 1), "{engine}");
        assert!(
            (stats.soft_bounce_rate - 1.0 / 3.0).abs() < 1e-9,
            "{engine}"
        );
        let [both, ben] = &stats.segments[..] else {
            panic!("{engine}: two segments, got {:?}", stats.segments);
        };
        assert_eq!(counts(both.feedback), (2, 1, 0, 1), "{engine}");
        assert_eq!(
            (
                both.hard_bounce_rate,
                both.soft_bounce_rate,
                both.complaint_rate
            ),
            (0.5, 0.0, 0.5),
            "{engine}"
        );
        assert_eq!(counts(ben.feedback), (1, 0, 1, 0), "{engine}");
        assert_eq!(ben.soft_bounce_rate, 1.0, "{engine}");

        let server = support::http::TestServer::start(&store).await;
        let metrics = server.get("/metrics").await.text().await.unwrap();
        let labels = |segment: &str| {
            format!(r#"campaign_id="{campaign}",campaign="spring",segment="{segment}""#)
        };
        for line in [
            format!("mailcast_campaign_delivered{{{}}} 3", labels("")),
            format!(
                "mailcast_campaign_feedback_rate{{{},class=\"complaint\"}} 0.5",
                labels("ann-and-cat")
            ),
            format!(
                "mailcast_campaign_feedback_rate{{{},class=\"soft\"}} 1",
                labels("ben")
            ),
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "{engine}: {line} missing from\n{metrics}"
            );
        }
    })
    .await;
}
