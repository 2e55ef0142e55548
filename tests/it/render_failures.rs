//! A template that cannot render for some recipients: refused when scheduled, and a
//! running campaign pauses itself past the allowed failure rate.

use crate::support;

use std::time::Duration;

use mailcast::dispatch::{DispatchError, JobQueue, schedule_campaign};
use mailcast::domain::{CampaignStatus, DeliveryStatus};
use mailcast::store::{DeliveryReport, Store};
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
        let status = store.campaign(campaign).await.unwrap().status;
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
        let (failed, smtp) = failed_once_paused(&store, campaign, Duration::from_secs(30)).await;
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

/// Three nested loops of 100,000: 10^15 iterations, each writing a byte.
const RUNAWAY: &str = r#"<p>{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% for k in range(end=100000) %}x{% endfor %}{% endfor %}{% endfor %}</p>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;

/// Loops as often as the recipient's `n` says, three levels deep.
const RUNS_AWAY_FOR_LARGE_N: &str = r#"<p>{% for i in range(end=recipient.attributes.n) %}{% for j in range(end=recipient.attributes.n) %}{% for k in range(end=recipient.attributes.n) %}x{% endfor %}{% endfor %}{% endfor %}</p>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;

/// The schedule check runs on a task of its own, so a check that never ends fails
/// the test instead of hanging it.
/// Schedules the campaign, runs a worker against a real SMTP server until the campaign
/// pauses itself, and returns its failed deliveries and the server.
async fn failed_once_paused(
    store: &Store,
    campaign: i64,
    within: Duration,
) -> (Vec<DeliveryReport>, SmtpServer) {
    let smtp = SmtpServer::start();
    let dispatcher = dispatcher(store, &smtp.url(), &WorkerOptions::default()).await;
    schedule_campaign(store, &dispatcher.queue, campaign)
        .await
        .unwrap();
    let worker = mailcast::dispatch::spawn_worker(dispatcher);
    wait_for_status(store, campaign, CampaignStatus::Paused, within).await;
    worker.shutdown().await.unwrap();
    let failed = store
        .deliveries_in(campaign, &[DeliveryStatus::Failed])
        .await
        .unwrap();
    (failed, smtp)
}

async fn schedule_within(
    store: &Store,
    campaign: i64,
    limit: Duration,
) -> Result<(), DispatchError> {
    let store = store.clone();
    let check =
        tokio::spawn(
            async move { schedule_campaign(&store, &JobQueue::new(&store), campaign).await },
        );
    tokio::time::timeout(limit, check)
        .await
        .expect("the schedule check finished in time")
        .expect("the schedule check did not panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_template_is_refused_at_schedule_naming_the_limit() {
    for_each_engine(|store, engine| async move {
        people(&store, 3, 0).await;
        let campaign = create_campaign(&store, "runaway", "news", RUNAWAY).await;
        let started = std::time::Instant::now();
        let error = schedule_within(&store, campaign, Duration::from_secs(20))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{engine}: {:?}",
            started.elapsed()
        );
        let DispatchError::Invalid { errors, .. } = &error else {
            panic!("{engine}: expected a validation error, got {error}");
        };
        assert_eq!(
            errors.len(),
            1,
            "{engine}: one sample proves it: {errors:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("loop limit") && message.contains(mailcast::render::MAX_RANGE_VAR),
            "{engine}: {message}"
        );
        let status = store.campaign(campaign).await.unwrap().status;
        assert_eq!(status, CampaignStatus::Draft, "{engine}: still a draft");
    })
    .await;
}

/// Peak resident memory of this test process, from /proc.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_template_that_runs_away_behind_the_check_fails_each_message_and_pauses() {
    for_each_engine(|store, engine| async move {
        // The validation sample (lowest ids) loops twice per level; the rest would
        // loop 10^15 times.
        let mut batch = Vec::new();
        for i in 0..65 {
            let mut person = recipient(&format!("n{i:03}@example.com"), "N", &["news"]);
            let n = if i < 25 { 2 } else { 100_000 };
            person.attributes.insert("n".into(), serde_json::json!(n));
            batch.push(person);
        }
        store.upsert_recipients(&batch).await.unwrap();
        let campaign = create_campaign(&store, "behind", "news", RUNS_AWAY_FOR_LARGE_N).await;
        let (failed, smtp) = failed_once_paused(&store, campaign, Duration::from_secs(60)).await;
        assert!(!failed.is_empty(), "{engine}");
        assert!(
            failed.iter().all(|d| {
                let reason = d.last_error.as_deref().unwrap();
                reason.starts_with("render: ") && reason.contains("loop limit")
            }),
            "{engine}: {failed:?}"
        );
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(
            counts.sending, 0,
            "{engine}: nothing left sending: {counts:?}"
        );
        assert_eq!(smtp.received().len() as i64, counts.sent, "{engine}");
        let peak = peak_rss_bytes();
        assert!(peak < 1 << 30, "{engine}: peak memory {peak} bytes");
    })
    .await;
}
