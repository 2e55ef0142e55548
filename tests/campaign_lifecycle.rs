//! A campaign's life: expired when started too late; paused and resumed mid-send
//! without anyone getting two messages; sent through a relay slower than the lease.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, JobQueue, ThrottleSettings, Transport, pause_campaign,
    requeue_deliveries, resume_campaign, schedule_campaign, spawn_worker, unique_worker_name,
};
use mailcast::domain::{CampaignStatus, DeliveryStatus};
use mailcast::links::KeyRing;
use mailcast::store::Store;
use support::campaign::{HTML, create_campaign, wait_for_status};
use support::scripted_smtp::{ScriptedServer, accept_after, accept_all};
use support::smtp::SmtpServer;
use support::{for_each_engine, recipient};

async fn slow_dispatcher(store: &Store, smtp: &SmtpServer, per_second: f64) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let transport = Transport::new(&config, 4)
        .await
        .unwrap()
        .with_throttle(ThrottleSettings {
            global_per_second: Some(per_second),
            ..ThrottleSettings::default()
        });
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = 5;
    Dispatcher::new(store.clone(), transport, settings)
}

#[tokio::test]
async fn a_campaign_started_after_its_grace_period_expires_and_sends_nothing() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[recipient("a@example.com", "A", &["news"])])
            .await
            .unwrap();
        let campaign = create_campaign(&store, "late", "news", HTML).await;
        let two_days_ago = mailcast::time::now() - 2 * 24 * 3600;
        store
            .set_send_at(campaign, Some(two_days_ago))
            .await
            .unwrap();
        let smtp = SmtpServer::start();
        let dispatcher = slow_dispatcher(&store, &smtp, 100.0).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for_status(
            &store,
            campaign,
            CampaignStatus::Expired,
            Duration::from_secs(20),
        )
        .await;
        worker.shutdown().await.unwrap();
        assert!(smtp.received().is_empty(), "{engine}");
        assert_eq!(
            store.ledger_counts(campaign).await.unwrap().total(),
            0,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn pausing_stops_sending_within_a_batch_and_resuming_finishes_without_duplicates() {
    for_each_engine(|store, engine| async move {
        let people: Vec<_> = (0..120)
            .map(|i| recipient(&format!("p{i:03}@example.com"), "P", &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let campaign = create_campaign(&store, "pausable", "news", HTML).await;
        let smtp = SmtpServer::start();
        let dispatcher = slow_dispatcher(&store, &smtp, 60.0).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher.clone());
        while smtp.received().len() < 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pause_campaign(&store, campaign).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let at_pause = smtp.received().len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            smtp.received().len(),
            at_pause,
            "{engine}: still sending while paused"
        );
        assert!(at_pause < 120, "{engine}: paused too late to tell");

        resume_campaign(&store, &JobQueue::new(&store), campaign, 2)
            .await
            .unwrap();
        wait_for_status(
            &store,
            campaign,
            CampaignStatus::Done,
            Duration::from_secs(60),
        )
        .await;
        worker.shutdown().await.unwrap();
        let mut to: Vec<String> = smtp.received().iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 120, "{engine}");
        assert_eq!(smtp.received().len(), 120, "{engine}: nobody twice");
    })
    .await;
}

/// Two SMTP connections and a two-second lease, as a worker started with
/// `--concurrency 2 --lease-seconds 2`.
async fn short_lease_dispatcher(store: &Store, smtp_url: &str) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(smtp_url).unwrap());
    let transport = Transport::new(&config, 2).await.unwrap();
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = 8;
    settings.slots = 2;
    settings.lease = Duration::from_secs(2);
    Dispatcher::new(store.clone(), transport, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_its_leases_however_slow_the_relay() {
    for_each_engine(|store, engine| async move {
        let people: Vec<_> = (0..32)
            .map(|i| recipient(&format!("slow{i:03}@example.com"), "S", &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let campaign = create_campaign(&store, "slow-relay", "news", HTML).await;
        // A batch of 8 over two connections takes 2 s to send, and the batch claimed
        // ahead waits that long before its turn: both outlive a 2 s lease.
        let relay =
            ScriptedServer::start(accept_all(), accept_after(Duration::from_millis(500))).await;
        let dispatcher = short_lease_dispatcher(&store, &relay.url()).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher.clone());

        // An operator runs `campaign resend-unknown` the moment anything shows up as
        // unknown: under a live worker, nothing may.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let mut became_unknown = 0;
        while store.campaign(campaign).await.unwrap().status().unwrap() != CampaignStatus::Done {
            let counts = store.ledger_counts(campaign).await.unwrap();
            if counts.unknown > 0 {
                became_unknown += counts.unknown;
                requeue_deliveries(
                    &store,
                    &dispatcher.queue,
                    campaign,
                    DeliveryStatus::Unknown,
                    2,
                )
                .await
                .unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: campaign not done: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worker.shutdown().await.unwrap();

        assert_eq!(
            became_unknown, 0,
            "{engine}: deliveries became unknown while their worker was sending them"
        );
        let mut to = relay.recipients();
        let messages = to.len();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 32, "{engine}: everyone mailed");
        assert_eq!(messages, 32, "{engine}: nobody twice");
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(counts.sent, 32, "{engine}: {counts:?}");
    })
    .await;
}
