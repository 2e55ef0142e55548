//! Setting up and running a campaign through the real worker in a test.

use std::sync::Arc;
use std::time::Duration;

use mailcast::bounce::ReturnPath;
use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, RetryPolicy, Transport, WorkerHandle, schedule_campaign,
    spawn_worker, unique_worker_name,
};
use mailcast::domain::{CampaignKind, CampaignStatus};
use mailcast::links::KeyRing;
use mailcast::store::{Campaign, CampaignSettings, LedgerCounts, NewCampaign, NewTemplate, Store};

pub const HTML: &str = r#"<html><body>
<p>Hello {{ recipient.first_name | default(value="there") }}, picks for {{ recipient.email }}.</p>
<a href="https://shop.example.com/sale">Shop the sale</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>
</body></html>"#;

/// A marketing campaign for `topic` with the given HTML body (its template stored as
/// `{name}-template`), not stored yet: change what a test needs, then create it.
pub async fn draft(store: &Store, name: &str, topic: &str, html: &str) -> NewCampaign {
    let template_id = store
        .upsert_template(&NewTemplate {
            name: format!("{name}-template"),
            subject: "Picks for {{ recipient.first_name | default(value=\"you\") }}".into(),
            preheader: None,
            html: html.into(),
            text: None,
        })
        .await
        .unwrap();
    NewCampaign {
        name: name.into(),
        kind: CampaignKind::Marketing,
        template_id,
        segment_id: None,
        topic: Some(topic.into()),
        from_name: "Shop".into(),
        from_email: "news@shop.example.com".into(),
        reply_to: None,
        send_at: None,
        settings: CampaignSettings::default(),
    }
}

/// Creates a draft marketing campaign for `topic` with the given HTML body.
pub async fn create_campaign(store: &Store, name: &str, topic: &str, html: &str) -> i64 {
    let campaign = draft(store, name, topic, html).await;
    store.create_campaign(&campaign).await.unwrap()
}

/// Stores `campaign` and reads it back.
pub async fn create(store: &Store, campaign: NewCampaign) -> Campaign {
    let id = store.create_campaign(&campaign).await.unwrap();
    store.campaign(id).await.unwrap()
}

/// Options a test may change from the defaults below.
pub struct WorkerOptions {
    pub send_timeout: Duration,
    pub retry_first: Duration,
    pub batch_size: i64,
    pub slots: usize,
    /// Per-delivery envelope senders (VERP); None sends from the campaign's sender.
    pub return_path: Option<ReturnPath>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            send_timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(1),
            batch_size: 7,
            slots: 2,
            return_path: None,
        }
    }
}

pub async fn dispatcher(store: &Store, smtp_url: &str, options: &WorkerOptions) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(smtp_url).unwrap());
    dispatcher_with(store, &config, options).await
}

pub async fn dispatcher_with(
    store: &Store,
    config: &TransportConfig,
    options: &WorkerOptions,
) -> Arc<Dispatcher> {
    dispatcher_configured(store, config, options, |_| {}).await
}

/// As [`dispatcher_with`], then `configure` changes the settings.
pub async fn dispatcher_configured(
    store: &Store,
    config: &TransportConfig,
    options: &WorkerOptions,
    configure: impl FnOnce(&mut DispatchSettings),
) -> Arc<Dispatcher> {
    let transport = Transport::new(config, 4)
        .await
        .unwrap()
        .with_send_timeout(options.send_timeout);
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost:8080".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = options.batch_size;
    settings.slots = options.slots;
    settings.return_path = options.return_path.clone();
    settings.retry = RetryPolicy {
        first: options.retry_first,
        max: options.retry_first * 4,
        lifetime: Duration::from_secs(3600),
    };
    configure(&mut settings);
    Dispatcher::new(store.clone(), transport, settings)
}

/// Schedules the campaign and starts a worker that sends it to `smtp_url`.
pub async fn start(
    store: &Store,
    campaign_id: i64,
    smtp_url: &str,
    options: &WorkerOptions,
) -> WorkerHandle {
    let dispatcher = dispatcher(store, smtp_url, options).await;
    schedule_campaign(store, &dispatcher.queue, campaign_id)
        .await
        .unwrap();
    spawn_worker(dispatcher)
}

pub async fn wait_for_status(
    store: &Store,
    campaign_id: i64,
    status: CampaignStatus,
    limit: Duration,
) {
    super::eventually(
        &format!("campaign {campaign_id} to be {status}"),
        limit,
        async || {
            let now = store.campaign(campaign_id).await.unwrap().status;
            if now == status {
                return Ok(());
            }
            let counts = store.ledger_counts(campaign_id).await.unwrap();
            Err(format!("{now} ({counts:?})"))
        },
    )
    .await
}

/// Runs the campaign to `done` and returns the ledger's counts.
pub async fn run_to_done(
    store: &Store,
    campaign_id: i64,
    smtp_url: &str,
    options: &WorkerOptions,
) -> LedgerCounts {
    let worker = start(store, campaign_id, smtp_url, options).await;
    wait_for_status(
        store,
        campaign_id,
        CampaignStatus::Done,
        Duration::from_secs(60),
    )
    .await;
    worker.shutdown().await.unwrap();
    store.ledger_counts(campaign_id).await.unwrap()
}
