//! `mailcast demo`: the whole pipeline once, on the embedded store, into `outbox/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::worker::{TransportArgs, dispatcher};
use crate::config::TransportConfig;
use crate::dispatch::{schedule_campaign, spawn_worker};
use crate::domain::{CampaignKind, CampaignStatus};
use crate::import::{ImportKind, ImportOptions, import_file};
use crate::store::{CampaignSettings, LedgerCounts, NewCampaign, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory with recipients.csv, products.csv and events.jsonl (the copies built
    /// into the binary when omitted).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Template directory to send (weekly-picks, built into the binary, when omitted).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Topic the audience must be subscribed to.
    #[arg(long, default_value = "newsletter")]
    pub topic: String,
    #[command(flatten)]
    pub transport: TransportArgs,
}

pub async fn run(database: &str, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let store = Store::open(database).await?;
    if let TransportConfig::Outbox(dir) = args.transport.transport_config()? {
        clear_outbox(&dir)?;
    }
    if let Err(unreachable) = super::worker::reach_relays(&args.transport.transport_config()?).await
    {
        anyhow::bail!("{unreachable}");
    }
    let built_in = BuiltIn::unpack()?;
    let fixtures = args.fixtures.as_deref().unwrap_or(built_in.fixtures());
    import_fixtures(&store, fixtures).await?;
    let template = args.template.as_deref().unwrap_or(built_in.template());
    let campaign_id = create_campaign(&store, args, template).await?;
    let counts = send(&store, args, campaign_id).await?;
    print_summary(&store, args, campaign_id, &counts, started).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The demo's fixtures and template, built into the binary so that `mailcast demo`
/// works from any directory. The importers and the template loader read files, so the
/// copies are written to a temporary directory that lives as long as this value.
struct BuiltIn {
    fixtures: PathBuf,
    template: PathBuf,
    // Removed when dropped, with the copies in it.
    _dir: tempfile::TempDir,
}

const BUILT_IN_FILES: [(&str, &str); 7] = [
    (
        "fixtures/recipients.csv",
        include_str!("../../fixtures/recipients.csv"),
    ),
    (
        "fixtures/products.csv",
        include_str!("../../fixtures/products.csv"),
    ),
    (
        "fixtures/events.jsonl",
        include_str!("../../fixtures/events.jsonl"),
    ),
    (
        "weekly-picks/subject.txt",
        include_str!("../../templates/weekly-picks/subject.txt"),
    ),
    (
        "weekly-picks/preheader.txt",
        include_str!("../../templates/weekly-picks/preheader.txt"),
    ),
    (
        "weekly-picks/body.html",
        include_str!("../../templates/weekly-picks/body.html"),
    ),
    (
        "weekly-picks/text.txt",
        include_str!("../../templates/weekly-picks/text.txt"),
    ),
];

impl BuiltIn {
    fn unpack() -> anyhow::Result<BuiltIn> {
        let dir = tempfile::Builder::new()
            .prefix("mailcast-demo-")
            .tempdir()
            .context("cannot create a temporary directory for the built-in demo data")?;
        for (name, contents) in BUILT_IN_FILES {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("a file under a directory"))
                .and_then(|()| std::fs::write(&path, contents))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(BuiltIn {
            fixtures: dir.path().join("fixtures"),
            template: dir.path().join("weekly-picks"),
            _dir: dir,
        })
    }

    fn fixtures(&self) -> &Path {
        &self.fixtures
    }

    fn template(&self) -> &Path {
        &self.template
    }
}

/// The outbox should hold exactly this run's messages.
fn clear_outbox(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "eml") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

async fn import_fixtures(store: &Store, dir: &Path) -> anyhow::Result<()> {
    let options = ImportOptions::default();
    for (kind, file) in [
        (ImportKind::Recipients, "recipients.csv"),
        (ImportKind::Products, "products.csv"),
        (ImportKind::Events, "events.jsonl"),
    ] {
        let report = import_file(store, kind, &dir.join(file), &options).await?;
        println!("{}", report.summary_line());
    }
    Ok(())
}

async fn create_campaign(store: &Store, args: &DemoArgs, dir: &Path) -> anyhow::Result<i64> {
    let template = crate::render::load_template_dir(dir)?;
    let template_id = store.upsert_template(&template).await?;
    let campaign = NewCampaign {
        name: format!(
            "demo-{}-{}",
            template.name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f")
        ),
        kind: CampaignKind::Marketing,
        template_id,
        segment_id: None,
        topic: Some(args.topic.clone()),
        from_name: "Northwind Outfitters".into(),
        from_email: "news@shop.example.com".into(),
        reply_to: None,
        send_at: None,
        settings: CampaignSettings::default(),
    };
    Ok(store.create_campaign(&campaign).await?)
}

/// Schedules the campaign and runs a worker in this process until it is done.
async fn send(store: &Store, args: &DemoArgs, campaign_id: i64) -> anyhow::Result<LedgerCounts> {
    let dispatcher = dispatcher(store, &args.transport, |settings| {
        settings.slots = 2;
        settings.poll_interval = Duration::from_millis(100);
    })
    .await?;
    schedule_campaign(store, &dispatcher.queue, campaign_id).await?;
    let worker = spawn_worker(dispatcher);
    let finished = tokio::select! {
        finished = wait_until_finished(store, campaign_id, Duration::from_secs(600)) => finished,
        _ = crate::shutdown::shutdown_signal() => Ok(()),
    };
    worker.shutdown().await?;
    finished?;
    Ok(store.ledger_counts(campaign_id).await?)
}

async fn wait_until_finished(
    store: &Store,
    campaign_id: i64,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let status = store.campaign(campaign_id).await?.status;
        if matches!(
            status,
            CampaignStatus::Done | CampaignStatus::Expired | CampaignStatus::Cancelled
        ) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("campaign still {status} after {}s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn print_summary(
    store: &Store,
    args: &DemoArgs,
    campaign_id: i64,
    counts: &LedgerCounts,
    started: Instant,
) -> anyhow::Result<()> {
    let campaign = store.campaign(campaign_id).await?;
    let target = match args.transport.transport_config()? {
        TransportConfig::Outbox(dir) => format!("{} (one .eml per message)", dir.display()),
        TransportConfig::Smtp(url) => url.url,
        TransportConfig::Relays(relays) => relays
            .iter()
            .map(|(name, url)| format!("{name}={}", url.url))
            .collect::<Vec<_>>()
            .join(", "),
    };
    println!(
        "demo: campaign '{}' {}: audience {}, sent {}, failed {}, suppressed {}, unknown {} in {:.1}s -> {target}",
        campaign.name,
        campaign.status,
        counts.total(),
        counts.sent,
        counts.failed,
        counts.suppressed,
        counts.unknown,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
