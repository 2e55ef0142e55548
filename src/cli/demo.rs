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
    /// Run the example automations (automations/) over the last 30 days of the
    /// fixtures on a simulated clock instead of the example campaign.
    #[arg(long)]
    pub automations: bool,
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
    if args.automations {
        super::demo_automations::run(&store, args, fixtures, built_in.templates()).await?;
        println!("demo: automation messages -> {}", target_text(args)?);
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    import_fixtures(&store, fixtures).await?;
    let template = args.template.as_deref().unwrap_or(built_in.template());
    let campaign_id = create_campaign(&store, args, template).await?;
    let counts = send(&store, args, campaign_id).await?;
    print_summary(&store, args, campaign_id, &counts, started).await?;
    print_dashboard_hint(&store, database).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The account the demo signs in with; its password is made anew by every demo run.
pub const DEMO_LOGIN: &str = "demo@mailcast.example";

/// How to look at what the demo did in a browser: the command, the address, a login.
async fn print_dashboard_hint(store: &Store, database: &str) -> anyhow::Result<()> {
    let (_, password) =
        crate::accounts::create_user(store, DEMO_LOGIN, crate::accounts::Role::Admin, None).await?;
    let password = password.unwrap_or_default();
    let database = match database {
        "mailcast.db" => String::new(),
        other => format!(" --database {other}"),
    };
    println!(
        "dashboard: run `cargo run --release --{database} serve` (or `mailcast{database} serve`),"
    );
    println!(
        "  open http://127.0.0.1:8080/app and sign in as {DEMO_LOGIN} with password {password}"
    );
    Ok(())
}

/// The demo's fixtures and template, built into the binary so that `mailcast demo`
/// works from any directory. The importers and the template loader read files, so the
/// copies are written to a temporary directory that lives as long as this value.
struct BuiltIn {
    fixtures: PathBuf,
    template: PathBuf,
    /// Every built-in template, one directory each.
    templates: PathBuf,
    // Removed when dropped, with the copies in it.
    _dir: tempfile::TempDir,
}

const BUILT_IN_FILES: [(&str, &str); 26] = [
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
        "templates/weekly-picks/subject.txt",
        include_str!("../../templates/weekly-picks/subject.txt"),
    ),
    (
        "templates/weekly-picks/preheader.txt",
        include_str!("../../templates/weekly-picks/preheader.txt"),
    ),
    (
        "templates/weekly-picks/body.html",
        include_str!("../../templates/weekly-picks/body.html"),
    ),
    (
        "templates/weekly-picks/text.txt",
        include_str!("../../templates/weekly-picks/text.txt"),
    ),
    (
        "templates/abandoned-cart/body.mjml",
        include_str!("../../templates/abandoned-cart/body.mjml"),
    ),
    (
        "templates/abandoned-cart/preheader.txt",
        include_str!("../../templates/abandoned-cart/preheader.txt"),
    ),
    (
        "templates/abandoned-cart/subject.txt",
        include_str!("../../templates/abandoned-cart/subject.txt"),
    ),
    (
        "templates/birthday-offer/body.html",
        include_str!("../../templates/birthday-offer/body.html"),
    ),
    (
        "templates/birthday-offer/preheader.txt",
        include_str!("../../templates/birthday-offer/preheader.txt"),
    ),
    (
        "templates/birthday-offer/subject.txt",
        include_str!("../../templates/birthday-offer/subject.txt"),
    ),
    (
        "templates/birthday-offer/text.txt",
        include_str!("../../templates/birthday-offer/text.txt"),
    ),
    (
        "templates/welcome/body.mjml",
        include_str!("../../templates/welcome/body.mjml"),
    ),
    (
        "templates/welcome/preheader.txt",
        include_str!("../../templates/welcome/preheader.txt"),
    ),
    (
        "templates/welcome/subject.txt",
        include_str!("../../templates/welcome/subject.txt"),
    ),
    (
        "templates/welcome-tips/body.html",
        include_str!("../../templates/welcome-tips/body.html"),
    ),
    (
        "templates/welcome-tips/preheader.txt",
        include_str!("../../templates/welcome-tips/preheader.txt"),
    ),
    (
        "templates/welcome-tips/subject.txt",
        include_str!("../../templates/welcome-tips/subject.txt"),
    ),
    (
        "templates/welcome-picks/body.html",
        include_str!("../../templates/welcome-picks/body.html"),
    ),
    (
        "templates/welcome-picks/preheader.txt",
        include_str!("../../templates/welcome-picks/preheader.txt"),
    ),
    (
        "templates/welcome-picks/subject.txt",
        include_str!("../../templates/welcome-picks/subject.txt"),
    ),
    (
        "templates/win-back/body.html",
        include_str!("../../templates/win-back/body.html"),
    ),
    (
        "templates/win-back/preheader.txt",
        include_str!("../../templates/win-back/preheader.txt"),
    ),
    (
        "templates/win-back/subject.txt",
        include_str!("../../templates/win-back/subject.txt"),
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
            template: dir.path().join("templates/weekly-picks"),
            templates: dir.path().join("templates"),
            _dir: dir,
        })
    }

    fn fixtures(&self) -> &Path {
        &self.fixtures
    }

    fn template(&self) -> &Path {
        &self.template
    }

    fn templates(&self) -> &Path {
        &self.templates
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
    let target = target_text(args)?;
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

/// Where the demo's messages went.
fn target_text(args: &DemoArgs) -> anyhow::Result<String> {
    Ok(match args.transport.transport_config()? {
        TransportConfig::Outbox(dir) => format!("{} (one .eml per message)", dir.display()),
        TransportConfig::Smtp(url) => url.url,
        TransportConfig::Relays(relays) => relays
            .iter()
            .map(|(name, url)| format!("{name}={}", url.url))
            .collect::<Vec<_>>()
            .join(", "),
    })
}
