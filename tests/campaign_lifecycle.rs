//! A campaign's life: expired when started too late; paused and resumed mid-send
//! without anyone getting two messages.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, JobQueue, ThrottleSettings, Transport, pause_campaign,
    resume_campaign, schedule_campaign, spawn_worker, unique_worker_name,
};
use mailcast::domain::CampaignStatus;
use mailcast::links::KeyRing;
use mailcast::store::Store;
use support::campaign::{HTML, create_campaign, wait_for_status};
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
