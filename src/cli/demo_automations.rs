//! `mailcast demo --automations`: the four example automations over the last 30 days
//! of the fixtures, replayed on a simulated clock. Sign-ups and events arrive at their
//! own times; the engine ticks at least hourly; the worker sends what the runs put in
//! the ledger into `outbox/`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::worker::dispatcher;
use super::{DemoArgs, automation::stats_table};
use crate::automation::definition::Definition;
use crate::automation::{AutomationEngine, EngineSettings, load_automation};
use crate::dispatch::spawn_worker;
use crate::import::{ImportKind, ImportOptions, import_file};
use crate::store::Store;
use crate::time::{Clock, format_timestamp, parse_timestamp};

const REPLAY_DAYS: i64 = 30;
/// After the last event, long enough for the welcome series to end.
const RUN_ON_DAYS: i64 = 8;
const HOUR: i64 = 3600;

pub const TEMPLATES: [&str; 6] = [
    "abandoned-cart",
    "birthday-offer",
    "welcome",
    "welcome-tips",
    "welcome-picks",
    "win-back",
];

pub const AUTOMATIONS: [(&str, &str); 4] = [
    (
        "abandoned-cart.toml",
        include_str!("../../automations/abandoned-cart.toml"),
    ),
    (
        "birthday.toml",
        include_str!("../../automations/birthday.toml"),
    ),
    (
        "welcome.toml",
        include_str!("../../automations/welcome.toml"),
    ),
    (
        "win-back.toml",
        include_str!("../../automations/win-back.toml"),
    ),
];

/// Rows of a fixture file with their times, oldest first.
struct Timed {
    header: Option<String>,
    rows: Vec<(i64, String)>,
}

pub async fn run(
    store: &Store,
    args: &DemoArgs,
    fixtures: &Path,
    templates: &Path,
) -> anyhow::Result<()> {
    if store.automation_by_name("abandoned-cart").await?.is_some() {
        anyhow::bail!(
            "this database already holds the demo's automations: run the automation demo on a fresh one (--database automations-demo.db)"
        );
    }
    let recipients = timed_csv(&fixtures.join("recipients.csv"))?;
    let events = timed_jsonl(&fixtures.join("events.jsonl"))?;
    let end = events.rows.last().map(|(t, _)| *t).context("no events")?;
    let start = end - REPLAY_DAYS * 86_400;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    import_before(store, &work, fixtures, &recipients, &events, start).await?;
    for name in TEMPLATES {
        let template = crate::render::load_template_dir(templates.join(name))?;
        store.upsert_template(&template).await?;
    }
    for (file, source) in AUTOMATIONS {
        let loaded = load_automation(store, source)
            .await
            .with_context(|| format!("automations/{file}"))?;
        println!("automation {} loaded ({} steps)", loaded.name, loaded.steps);
    }
    let clock = Clock::manual(start);
    let worker = dispatcher(store, &args.transport, |settings| {
        settings.clock = clock.clone();
        settings.automations = false;
        settings.poll_interval = Duration::from_millis(50);
    })
    .await?;
    let mut engine_settings = EngineSettings::new(
        worker.settings.worker_name.clone(),
        clock.clone(),
        worker.settings.default_zone,
    );
    engine_settings.segment_every = 86_400;
    let engine = AutomationEngine::new(store.clone(), worker.queue.clone(), engine_settings);
    let handle = spawn_worker(worker);
    println!(
        "replaying {} to {} on a simulated clock",
        format_timestamp(start),
        format_timestamp(end)
    );
    let replay = Replay {
        store,
        work: work.path(),
        clock: &clock,
        engine: &engine,
    };
    replay
        .run(&recipients, &events, start, end + RUN_ON_DAYS * 86_400)
        .await?;
    wait_for_ledger(store).await?;
    handle.shutdown().await?;
    print_summary(store).await
}

struct Replay<'a> {
    store: &'a Store,
    work: &'a Path,
    clock: &'a Clock,
    engine: &'a AutomationEngine,
}

impl Replay<'_> {
    /// Moves the clock to each next arrival (at most an hour on), imports what
    /// arrived, and ticks the engine.
    async fn run(
        &self,
        recipients: &Timed,
        events: &Timed,
        start: i64,
        until: i64,
    ) -> anyhow::Result<()> {
        let mut next_recipient = recipients.rows.partition_point(|(t, _)| *t < start);
        let mut next_event = events.rows.partition_point(|(t, _)| *t < start);
        let mut now = start;
        while now < until {
            let arrival = [
                recipients.rows.get(next_recipient),
                events.rows.get(next_event),
            ]
            .into_iter()
            .flatten()
            .map(|(t, _)| *t)
            .min()
            .unwrap_or(i64::MAX);
            now = arrival.clamp(now, now + HOUR);
            self.clock.advance(now - self.clock.now());
            next_recipient = self
                .arrive(recipients, next_recipient, now, ImportKind::Recipients)
                .await?;
            next_event = self
                .arrive(events, next_event, now, ImportKind::Events)
                .await?;
            self.engine
                .drain()
                .await
                .with_context(|| format!("automations at {}", format_timestamp(now)))?;
        }
        Ok(())
    }

    /// Imports the rows from `from` that arrived by `now`; returns the next index.
    async fn arrive(
        &self,
        timed: &Timed,
        from: usize,
        now: i64,
        kind: ImportKind,
    ) -> anyhow::Result<usize> {
        let upto = from + timed.rows[from..].partition_point(|(t, _)| *t <= now);
        if upto == from {
            return Ok(upto);
        }
        let path = self.work.join(match kind {
            ImportKind::Recipients => "arrived.csv",
            _ => "arrived.jsonl",
        });
        write_rows(&path, timed.header.as_deref(), &timed.rows[from..upto])?;
        let report = import_file(self.store, kind, &path, &quiet())
            .await
            .with_context(|| format!("importing what arrived by {}", format_timestamp(now)))?;
        anyhow::ensure!(report.rejected == 0, "{}", report.summary_line());
        Ok(upto)
    }
}

async fn import_before(
    store: &Store,
    work: &tempfile::TempDir,
    fixtures: &Path,
    recipients: &Timed,
    events: &Timed,
    start: i64,
) -> anyhow::Result<()> {
    let options = quiet();
    let products = import_file(
        store,
        ImportKind::Products,
        &fixtures.join("products.csv"),
        &options,
    )
    .await?;
    println!("{}", products.summary_line());
    for (timed, kind, name) in [
        (recipients, ImportKind::Recipients, "before.csv"),
        (events, ImportKind::Events, "before.jsonl"),
    ] {
        let before = timed.rows.partition_point(|(t, _)| *t < start);
        let path = work.path().join(name);
        write_rows(&path, timed.header.as_deref(), &timed.rows[..before])?;
        let report = import_file(store, kind, &path, &options).await?;
        println!("before the replay: {}", report.summary_line());
    }
    Ok(())
}

fn quiet() -> ImportOptions {
    ImportOptions {
        progress: false,
        ..ImportOptions::default()
    }
}

fn write_rows(path: &Path, header: Option<&str>, rows: &[(i64, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    if let Some(header) = header {
        text.push_str(header);
        text.push('\n');
    }
    for (_, row) in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// CSV rows by their `created_at` column; rows are single lines in the fixtures.
fn timed_csv(path: &Path) -> anyhow::Result<Timed> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().context("recipients.csv is empty")?.to_string();
    let column = header
        .split(',')
        .position(|name| name == "created_at")
        .context("recipients.csv has no created_at column")?;
    let mut rows = Vec::new();
    for line in lines {
        let record = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes())
            .records()
            .next()
            .transpose()?
            .context("an empty line in recipients.csv")?;
        let at =
            parse_timestamp(record.get(column).unwrap_or_default()).map_err(anyhow::Error::msg)?;
        rows.push((at, line.to_string()));
    }
    rows.sort_by_key(|(t, _)| *t);
    Ok(Timed {
        header: Some(header),
        rows,
    })
}

fn timed_jsonl(path: &Path) -> anyhow::Result<Timed> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let at = value["occurred_at"]
            .as_str()
            .context("an event without occurred_at")?;
        rows.push((
            parse_timestamp(at).map_err(anyhow::Error::msg)?,
            line.to_string(),
        ));
    }
    rows.sort_by_key(|(t, _)| *t);
    Ok(Timed { header: None, rows })
}

/// Waits until every message the runs put in the ledger is sent or settled.
async fn wait_for_ledger(store: &Store) -> anyhow::Result<()> {
    for _ in 0..1200 {
        if store.automation_deliveries_open().await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("automation messages still unsent after 2 minutes")
}

async fn print_summary(store: &Store) -> anyhow::Result<()> {
    for automation in store.automations().await? {
        let definition: Definition = serde_json::from_str(&automation.definition)?;
        let stats = store.automation_stats(automation.id).await?;
        print!("{}", stats_table(&automation, &definition, &stats));
    }
    Ok(())
}
