//! A template that cannot render for some recipients: refused when scheduled, and a
//! running campaign pauses itself past the allowed failure rate.

mod support;

use std::time::Duration;

use mailcast::dispatch::{DispatchError, JobQueue, schedule_campaign};
use mailcast::domain::{CampaignStatus, DeliveryStatus};
use mailcast::store::Store;
use support::campaign::{WorkerOptions, create_campaign, dispatcher, wait_for_status};
use support::smtp::SmtpServer;
use support::{for_each_engine, recipient};

/// Needs `attributes.plan.name`: recipients without a plan cannot be rendered.
const NEEDS_PLAN: &str = r#"<p>Your plan: {{ recipient.attributes.plan.name }}</p>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;

async fn people(store: &Store, with_plan: usize, without_plan: usize) {
    let mut batch = Vec::new();
    for i in 0..with_plan {
        let mut person = recipient(&format!("plan{i:03}@example.com"), "P", &["news"]);
        person
            .attributes
            .insert("plan".into(), serde_json::json!({"name": "Pro"}));
        batch.push(person);
    }
    for i in 0..without_plan {
        batch.push(recipient(
            &format!("noplan{i:03}@example.com"),
            "N",
            &["news"],
        ));
    }
    store.upsert_recipients(&batch).await.unwrap();
}

#[tokio::test]
async fn scheduling_refuses_a_campaign_that_fails_for_sampled_recipients_naming_each() {
    for_each_engine(|store, engine| async move {
        people(&store, 3, 2).await;
        let campaign = create_campaign(&store, "plans", "news", NEEDS_PLAN).await;
        let error = schedule_campaign(&store, &JobQueue::new(&store), campaign)
            .await
            .unwrap_err();
        let DispatchError::Invalid { errors, .. } = &error else {
            panic!("{engine}: expected a validation error, got {error}");
        };
        assert_eq!(errors.len(), 2, "{engine}: {errors:?}");
        assert!(
            errors[0].contains("noplan000@example.com"),
            "{engine}: {errors:?}"
        );
        assert!(error.to_string().contains("plan"), "{engine}: {error}");
        let status = store.campaign(campaign).await.unwrap().status().unwrap();
        assert_eq!(status, CampaignStatus::Draft, "{engine}: still a draft");
    })
    .await;
}

#[tokio::test]
async fn a_running_campaign_pauses_itself_when_too_many_messages_fail_to_render() {
    for_each_engine(|store, engine| async move {
        // The validation sample (lowest ids) renders; the later recipients do not.
        people(&store, 25, 40).await;
        let campaign = create_campaign(&store, "plans", "news", NEEDS_PLAN).await;
        let smtp = SmtpServer::start();
        let dispatcher = dispatcher(&store, &smtp.url(), &WorkerOptions::default()).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = mailcast::dispatch::spawn_worker(dispatcher);
        wait_for_status(
            &store,
            campaign,
            CampaignStatus::Paused,
            Duration::from_secs(30),
        )
        .await;
        worker.shutdown().await.unwrap();

        let failed = store
            .deliveries_in(campaign, &[DeliveryStatus::Failed])
            .await
            .unwrap();
        assert!(!failed.is_empty(), "{engine}");
        assert!(
            failed.iter().all(|d| d.email.starts_with("noplan")
                && d.last_error.as_deref().unwrap().starts_with("render: ")),
            "{engine}: {failed:?}"
        );
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert!(
            counts.pending > 0,
            "{engine}: paused before the end: {counts:?}"
        );
        assert_eq!(smtp.received().len() as i64, counts.sent, "{engine}");
    })
    .await;
}
