//! Segment resolution benchmark (issue 3, "Performance"): generates the fixture data
//! (one million recipients, about ten million events by default), bulk-loads it into
//! PostgreSQL or SQLite, runs ANALYZE, then times for a mix of attribute-only and
//! behavioural segments the count (`Store::count_segment`, as `mailcast segment count
//! --topic newsletter` runs it) and the ledger insert (`Store::freeze_audience` into a
//! fresh campaign, as a campaign start runs it). Medians of `--runs` runs.
//!
//! ```text
//! cargo run --release --example segment_bench -- --database URL --recipients 1000000
//! ```
//!
//! `benches/segment_bench.sh` drives it on both engines; figures go to
//! benches/SEGMENTS.md.
//!
//! Loading (not timed as part of resolution): recipients, consents, events, plus a
//! deterministic synthetic history of opens and clicks of six earlier campaigns (the
//! fixtures have none, and `opened(...)` would otherwise read an empty table) and a
//! suppression list of 1 % of the addresses. PostgreSQL: `COPY … FROM STDIN`; SQLite:
//! one transaction of prepared multi-row inserts. Secondary indexes of the loaded tables
//! (whatever the migrations define) are dropped first and rebuilt afterwards from their
//! own definitions, then the tables are analysed (PostgreSQL: `VACUUM ANALYZE`, which
//! also sets the visibility map as autovacuum would on a live database). The data set
//! is loaded once per database: a later run with the same `--recipients` and `--seed`
//! reuses it unless `--reload` is given.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use mailcast::domain::{CampaignKind, EmailAddress};
use mailcast::fixtures::{self, EVENTS_FILE, GenerateOptions, PRODUCTS_FILE, RECIPIENTS_FILE};
use mailcast::import::{ImportKind, ImportOptions, import_file};
use mailcast::segment::compile_text;
use mailcast::store::{
    CampaignSettings, Db, Engine, NewCampaign, NewTemplate, SqlFilter, SqlParam, Store,
};
use serde::Deserialize;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{AssertSqlSafe, Connection, Executor, PgPool, SqlitePool};

/// The segments measured: (name, expression).
const SEGMENTS: &[(&str, &str)] = &[
    ("geo_age", r#"country in ["US", "CA"] and attr.age >= 30"#),
    ("interest", r#""running" in attr.interests"#),
    (
        "geo_age_interest",
        r#"country in ["US", "CA"] and attr.age >= 30 and "running" in attr.interests"#,
    ),
    (
        "frequent_high_value",
        "purchases(within: 90d) >= 3 and spent(within: 365d) > 500",
    ),
    (
        "abandoned_cart",
        "did(cart_add, within: 2d) and not did(purchase, within: 2d)",
    ),
    (
        "abandoned_cart_7d",
        "did(cart_add, within: 7d) and not did(purchase, within: 7d)",
    ),
    ("lapsed", "last(purchase) > 180d ago"),
    ("shoe_viewers", r#"viewed(category: "shoes", within: 30d)"#),
    (
        "shoe_viewers_not_vip",
        r#"viewed(category: "shoes", within: 30d) and not segment("vip")"#,
    ),
    (
        "disengaged",
        "opened(within: 30d) == 0 and created_at < 60d ago",
    ),
];

/// Stored segments the measured ones refer to.
const STORED: &[(&str, &str)] = &[(
    "vip",
    r#"spent(within: 365d) > 200 or attr.loyalty_tier == "gold""#,
)];

/// The topic campaigns are sent to (most fixture recipients consent to it).
const TOPIC: &str = "newsletter";

#[derive(Parser, Debug)]
#[command(about = "Times segment count and ledger insert on a generated data set")]
struct Args {
    /// postgres://… or a SQLite file path / sqlite:// URL.
    #[arg(long)]
    database: String,
    #[arg(long, default_value_t = 1_000_000)]
    recipients: u64,
    #[arg(long, default_value_t = fixtures::DEMO_SEED)]
    seed: u64,
    /// Where the generated files live (generated when missing).
    /// Default: target/segment-bench/data-{recipients}-{seed}.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Timed runs per segment and operation; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Load again even when the database already holds this data set.
    #[arg(long)]
    reload: bool,
    /// Generate and load, do not measure.
    #[arg(long)]
    load_only: bool,
    /// Only these segments (by name); default: all.
    #[arg(long)]
    only: Vec<String>,
    /// Print the query plan of each segment's ledger insert (PostgreSQL: EXPLAIN
    /// ANALYZE of the equivalent SELECT; SQLite: EXPLAIN QUERY PLAN).
    #[arg(long)]
    explain: bool,
    /// Print the compiled SQL of each segment.
    #[arg(long)]
    sql: bool,
    /// Append the result table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = fixtures::demo_now().timestamp();
    let data = args.data.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
            "target/segment-bench/data-{}-{}",
            args.recipients, args.seed
        ))
    });
    ensure_data(&data, args.recipients, args.seed)?;

    let store = Store::open(&args.database)
        .await
        .with_context(|| format!("opening {}", args.database))?;
    let engine = store.engine();
    let marker = format!("{}-{}", args.recipients, args.seed);
    if args.reload || loaded_marker(&store).await? != Some(marker.clone()) {
        let started = Instant::now();
        load(&store, &data, now).await?;
        set_loaded_marker(&store, &marker).await?;
        eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        eprintln!("data set {marker} already loaded");
    }
    print_sizes(&store).await?;
    if args.load_only {
        return Ok(());
    }

    for (name, expr) in STORED {
        store.upsert_segment(name, expr, "segment bench").await?;
    }
    let template_id = store
        .upsert_template(&NewTemplate {
            name: "segment-bench".into(),
            subject: "Segment bench".into(),
            preheader: None,
            html: "<p>Hello</p>".into(),
            text: None,
        })
        .await?;

    let mut rows = Vec::new();
    for (name, expr) in SEGMENTS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let filter = compile_text(&store, expr, now).await?;
        if args.sql {
            eprintln!("-- {name}: {expr}\n{}\n{:?}\n", filter.sql, filter.params);
        }
        if args.explain {
            explain(&store, name, &filter).await?;
        }
        let row = measure(&store, name, expr, now, template_id, args.runs).await?;
        eprintln!(
            "{:<22} {:?}: matching {:>7} eligible {:>7} | count {} | insert {} (inserted {})",
            row.name,
            engine,
            row.matching,
            row.eligible,
            summary(&row.count),
            summary(&row.insert),
            row.inserted
        );
        rows.push(row);
    }
    let table = markdown(engine, &rows);
    println!("{table}");
    if let Some(path) = &args.markdown {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{table}")?;
    }
    store.close().await;
    Ok(())
}

// ------------------------------------------------------------------ measuring

struct Row {
    name: &'static str,
    expr: &'static str,
    matching: i64,
    eligible: i64,
    inserted: u64,
    count: Vec<Duration>,
    insert: Vec<Duration>,
}

async fn measure(
    store: &Store,
    name: &'static str,
    expr: &'static str,
    now: i64,
    template_id: i64,
    runs: usize,
) -> anyhow::Result<Row> {
    let mut row = Row {
        name,
        expr,
        matching: 0,
        eligible: 0,
        inserted: 0,
        count: Vec::new(),
        insert: Vec::new(),
    };
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let filter = compile_text(store, expr, now).await?;
        let count = store.count_segment(&filter, Some(TOPIC)).await?;
        row.count.push(started.elapsed());
        row.matching = count.matching;
        row.eligible = count.eligible;
    }
    for run in 0..runs.max(1) {
        let campaign_id = store
            .create_campaign(&NewCampaign {
                name: format!("bench-{name}-{run}-{}", mailcast::time::now()),
                kind: CampaignKind::Marketing,
                template_id,
                segment_id: None,
                topic: Some(TOPIC.into()),
                from_name: "Bench".into(),
                from_email: "bench@example.com".into(),
                reply_to: None,
                send_at: None,
                settings: CampaignSettings::default(),
            })
            .await?;
        let campaign = store.campaign(campaign_id).await?;
        let started = Instant::now();
        let filter = compile_text(store, expr, now).await?;
        let inserted = store.freeze_audience(&campaign, &filter).await?;
        row.insert.push(started.elapsed());
        row.inserted = inserted;
        if inserted != row.eligible as u64 {
            bail!(
                "{name}: inserted {inserted} deliveries, count said {} eligible",
                row.eligible
            );
        }
        clear_ledger(store, campaign_id).await?;
    }
    Ok(row)
}

/// Empties the ledger between runs (not timed), so every run inserts into the same
/// empty table.
async fn clear_ledger(store: &Store, campaign_id: i64) -> anyhow::Result<()> {
    match store.db() {
        Db::Postgres(pool) => {
            pool.execute("TRUNCATE deliveries").await?;
            sqlx::query("DELETE FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .execute(pool)
                .await?;
        }
        Db::Sqlite(pool) => {
            pool.execute("DELETE FROM deliveries").await?;
            sqlx::query("DELETE FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn summary(times: &[Duration]) -> String {
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    let each: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    format!(
        "median {} (min {:.2}, max {:.2}; runs {})",
        secs(median(times)),
        min.as_secs_f64(),
        max.as_secs_f64(),
        each.join(" ")
    )
}

fn markdown(engine: Engine, rows: &[Row]) -> String {
    let engine = match engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Sqlite => "SQLite",
    };
    let mut out = String::from(
        "| segment | engine | matching | eligible | count (median) | count min–max | ledger insert (median) | insert min–max |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let range = |t: &[Duration]| {
            format!(
                "{:.2}–{:.2} s",
                t.iter().min().unwrap().as_secs_f64(),
                t.iter().max().unwrap().as_secs_f64()
            )
        };
        out.push_str(&format!(
            "| `{}` | {engine} | {} | {} | {} | {} | {} | {} |\n",
            row.expr.replace('|', "\\|"),
            row.matching,
            row.eligible,
            secs(median(&row.count)),
            range(&row.count),
            secs(median(&row.insert)),
            range(&row.insert),
        ));
    }
    out
}

/// Mirrors `ineligible_reason_for` in src/store/ledger.rs for a marketing campaign,
/// for EXPLAIN only.
const INELIGIBLE: &str = "CASE
    WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = r.email_hash) THEN 'a'
    WHEN r.status IN ('bounced', 'erased') THEN 'b'
    WHEN r.status <> 'active' THEN 'c'
    WHEN CAST($1 AS BIGINT) IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM consents k
        WHERE k.recipient_id = r.id AND k.topic_id = CAST($1 AS BIGINT) AND k.status = 'subscribed')
        THEN 'd'
 END";

async fn explain(store: &Store, name: &str, filter: &SqlFilter) -> anyhow::Result<()> {
    let select = format!(
        "SELECT r.id FROM recipients r WHERE ({INELIGIBLE}) IS NULL AND ({})",
        filter.shifted(1)
    );
    let topic_id = topic_id(store).await?;
    let lines: Vec<String> = match store.db() {
        Db::Postgres(pool) => {
            let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {select}");
            let mut query = sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql)).bind(topic_id);
            for p in &filter.params {
                query = match p {
                    SqlParam::Int(v) => query.bind(*v),
                    SqlParam::Float(v) => query.bind(*v),
                    SqlParam::Text(v) => query.bind(v.clone()),
                    SqlParam::Bool(v) => query.bind(*v),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|(l,)| l)
                .collect()
        }
        Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {select}");
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64, String)>(AssertSqlSafe(sql)).bind(topic_id);
            for p in &filter.params {
                query = match p {
                    SqlParam::Int(v) => query.bind(*v),
                    SqlParam::Float(v) => query.bind(*v),
                    SqlParam::Text(v) => query.bind(v.clone()),
                    SqlParam::Bool(v) => query.bind(*v),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|(id, parent, _, detail)| format!("{id:>4} {parent:>4} {detail}"))
                .collect()
        }
    };
    eprintln!("== plan of {name}");
    for line in lines {
        eprintln!("{line}");
    }
    Ok(())
}

async fn topic_id(store: &Store) -> anyhow::Result<i64> {
    let (id,): (i64,) = match store.db() {
        Db::Postgres(pool) => {
            sqlx::query_as("SELECT id FROM topics WHERE name = $1")
                .bind(TOPIC)
                .fetch_one(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_as("SELECT id FROM topics WHERE name = $1")
                .bind(TOPIC)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(id)
}

async fn print_sizes(store: &Store) -> anyhow::Result<()> {
    for table in [
        "recipients",
        "consents",
        "events",
        "tracking_events",
        "suppressions",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = match store.db() {
            Db::Postgres(pool) => sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?,
            Db::Sqlite(pool) => sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?,
        };
        eprintln!("{table:<16} {n:>10} rows");
    }
    Ok(())
}

// ------------------------------------------------------------------ data set

fn ensure_data(dir: &Path, recipients: u64, seed: u64) -> anyhow::Result<()> {
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let started = Instant::now();
    let options = GenerateOptions {
        recipients,
        seed,
        now: fixtures::demo_now(),
    };
    let summary = fixtures::generate(&options, dir)?;
    std::fs::write(&done, format!("{summary:?}\n"))?;
    eprintln!(
        "generated {} recipients, {} events in {:.1} s into {}",
        summary.recipients,
        summary.events,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// A key/value table of the bench's own, outside mailcast's schema.
async fn loaded_marker(store: &Store) -> anyhow::Result<Option<String>> {
    let create =
        "CREATE TABLE IF NOT EXISTS segment_bench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
    let select = "SELECT value FROM segment_bench_meta WHERE key = 'loaded'";
    let row: Option<(String,)> = match store.db() {
        Db::Postgres(pool) => {
            pool.execute(create).await?;
            sqlx::query_as(select).fetch_optional(pool).await?
        }
        Db::Sqlite(pool) => {
            pool.execute(create).await?;
            sqlx::query_as(select).fetch_optional(pool).await?
        }
    };
    Ok(row.map(|(v,)| v))
}

async fn set_loaded_marker(store: &Store, marker: &str) -> anyhow::Result<()> {
    let sql = "INSERT INTO segment_bench_meta (key, value) VALUES ('loaded', $1)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    match store.db() {
        Db::Postgres(pool) => sqlx::query(sql)
            .bind(marker)
            .execute(pool)
            .await?
            .rows_affected(),
        Db::Sqlite(pool) => sqlx::query(sql)
            .bind(marker)
            .execute(pool)
            .await?
            .rows_affected(),
    };
    Ok(())
}

// ------------------------------------------------------------------ loading

/// A value of one loaded row.
#[derive(Clone, Debug)]
enum Val {
    Null,
    Int(i64),
    Text(String),
}

/// Tables in the order they are loaded.
const RECIPIENT_COLUMNS: &[&str] = &[
    "id",
    "email",
    "email_key",
    "email_hash",
    "first_name",
    "last_name",
    "country",
    "city",
    "attributes",
    "locale",
    "timezone",
    "status",
    "created_at",
    "updated_at",
];
const CONSENT_COLUMNS: &[&str] = &["recipient_id", "topic_id", "status", "source", "updated_at"];
const EVENT_COLUMNS: &[&str] = &[
    "id",
    "external_id",
    "recipient_id",
    "kind",
    "product_id",
    "amount_cents",
    "occurred_at",
    "properties",
];
const TRACKING_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "campaign_id",
    "recipient_id",
    "link_id",
    "occurred_at",
    "verdict",
];
const SUPPRESSION_COLUMNS: &[&str] = &["email_hash", "email", "reason", "created_at"];

/// Tables whose secondary indexes are dropped during the load and rebuilt after.
const LOADED_TABLES: &[&str] = &[
    "recipients",
    "consents",
    "events",
    "tracking_events",
    "suppressions",
];

async fn load(store: &Store, data: &Path, now: i64) -> anyhow::Result<()> {
    eprintln!("loading {} …", data.display());
    clear(store).await?;
    // Products (60 rows) through the importer itself.
    let report = import_file(
        store,
        ImportKind::Products,
        &data.join(PRODUCTS_FILE),
        &ImportOptions::default(),
    )
    .await?;
    eprintln!("products: {report:?}");
    let products = product_ids(store).await?;
    let indexes = drop_indexes(store).await?;
    let mut sink = Sink::new(store).await?;

    let started = Instant::now();
    let (emails, consents, topics) = load_recipients(&mut sink, data, now).await?;
    eprintln!(
        "recipients: {} in {:.1} s",
        emails.len(),
        started.elapsed().as_secs_f64()
    );
    // Topics numbered 1, 2, … in order of appearance (the table was emptied).
    sink.begin("topics", &["id", "name"]).await?;
    for (i, topic) in topics.iter().enumerate() {
        sink.row(vec![Val::Int(i as i64 + 1), Val::Text(topic.clone())])
            .await?;
    }
    sink.end().await?;
    sink.begin("consents", CONSENT_COLUMNS).await?;
    for (recipient_id, topic, source) in &consents {
        sink.row(vec![
            Val::Int(*recipient_id),
            Val::Int(i64::from(*topic) + 1),
            Val::Text("subscribed".into()),
            Val::Text(source.clone()),
            Val::Int(now),
        ])
        .await?;
    }
    let n = sink.end().await?;
    eprintln!("consents: {n}");
    drop(consents);

    let started = Instant::now();
    let n = load_events(&mut sink, data, &emails, &products).await?;
    eprintln!("events: {n} in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let n = load_tracking(&mut sink, emails.len() as i64, now).await?;
    eprintln!(
        "tracking events (synthetic): {n} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    sink.begin("suppressions", SUPPRESSION_COLUMNS).await?;
    let mut by_id: Vec<(&String, i64)> = emails.iter().map(|(k, id)| (k, *id)).collect();
    by_id.sort_by_key(|(_, id)| *id);
    for (key, id) in by_id {
        if id % 100 == 7 {
            let email = EmailAddress::parse(key)?;
            sink.row(vec![
                Val::Text(email.hash()),
                Val::Text(key.clone()),
                Val::Text("bounce".into()),
                Val::Int(now - 86_400),
            ])
            .await?;
        }
    }
    let n = sink.end().await?;
    eprintln!("suppressions: {n}");
    sink.finish().await?;

    let started = Instant::now();
    restore_indexes(store, &indexes).await?;
    eprintln!(
        "indexes rebuilt in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    analyze(store).await?;
    eprintln!("analysed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Empties every table the bench fills.
async fn clear(store: &Store) -> anyhow::Result<()> {
    match store.db() {
        Db::Postgres(pool) => {
            pool.execute(
                "TRUNCATE deliveries, tracking_events, events, consents, suppressions,
                          recipients, products, topics, campaigns, segments, templates
                 RESTART IDENTITY CASCADE",
            )
            .await?;
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            conn.execute("PRAGMA foreign_keys = OFF").await?;
            for table in [
                "deliveries",
                "links",
                "tracking_events",
                "events",
                "consents",
                "suppressions",
                "recipients",
                "products",
                "campaigns",
                "segments",
                "templates",
                "topics",
            ] {
                conn.execute(AssertSqlSafe(format!("DELETE FROM {table}")))
                    .await?;
            }
            conn.execute("PRAGMA foreign_keys = ON").await?;
            conn.execute("VACUUM").await?;
        }
    }
    Ok(())
}

/// (name, definition) of every secondary index of the loaded tables that is not a
/// constraint (primary keys and UNIQUE stay), after dropping them.
async fn drop_indexes(store: &Store) -> anyhow::Result<Vec<(String, String)>> {
    let tables = LOADED_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let indexes: Vec<(String, String)> = match store.db() {
        Db::Postgres(pool) => {
            let sql = format!(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i
                 WHERE i.schemaname = current_schema() AND i.tablename IN ({tables})
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
                 ORDER BY i.indexname"
            );
            sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?
        }
        Db::Sqlite(pool) => {
            let sql = format!(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables})
                 ORDER BY name"
            );
            sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?
        }
    };
    for (name, _) in &indexes {
        let sql = format!("DROP INDEX {name}");
        match store.db() {
            Db::Postgres(pool) => pool.execute(AssertSqlSafe(sql)).await?.rows_affected(),
            Db::Sqlite(pool) => pool.execute(AssertSqlSafe(sql)).await?.rows_affected(),
        };
    }
    Ok(indexes)
}

async fn restore_indexes(store: &Store, indexes: &[(String, String)]) -> anyhow::Result<()> {
    match store.db() {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            conn.execute("SET maintenance_work_mem = '512MB'").await?;
            for (name, definition) in indexes {
                let started = Instant::now();
                conn.execute(AssertSqlSafe(definition.clone())).await?;
                eprintln!("  {name}: {:.1} s", started.elapsed().as_secs_f64());
            }
            conn.execute("RESET maintenance_work_mem").await?;
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            conn.execute("PRAGMA cache_size = -1000000").await?;
            for (name, definition) in indexes {
                let started = Instant::now();
                conn.execute(AssertSqlSafe(definition.clone())).await?;
                eprintln!("  {name}: {:.1} s", started.elapsed().as_secs_f64());
            }
            conn.execute("PRAGMA cache_size = -2000").await?;
        }
    }
    Ok(())
}

async fn analyze(store: &Store) -> anyhow::Result<()> {
    match store.db() {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            for (table, column) in [
                ("topics", "id"),
                ("recipients", "id"),
                ("events", "id"),
                ("tracking_events", "id"),
            ] {
                conn.execute(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                                   (SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)"
                )))
                .await?;
            }
            conn.execute("VACUUM ANALYZE").await?;
        }
        Db::Sqlite(pool) => {
            pool.execute("ANALYZE").await?;
        }
    }
    Ok(())
}

async fn product_ids(store: &Store) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(i64, String)> = match store.db() {
        Db::Postgres(pool) => {
            sqlx::query_as("SELECT id, sku FROM products")
                .fetch_all(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_as("SELECT id, sku FROM products")
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows.into_iter().map(|(id, sku)| (sku, id)).collect())
}

#[derive(Deserialize)]
struct RecipientLine {
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    country: Option<String>,
    city: Option<String>,
    locale: Option<String>,
    timezone: Option<String>,
    created_at: Option<String>,
    topics: Option<String>,
    consent_source: Option<String>,
    attributes: Option<String>,
}

type Consents = Vec<(i64, u8, String)>;

/// Recipients numbered 1, 2, … in file order; returns email key → id, the consents
/// (recipient, topic index, source) and the topic names.
async fn load_recipients(
    sink: &mut Sink,
    data: &Path,
    now: i64,
) -> anyhow::Result<(HashMap<String, i64>, Consents, Vec<String>)> {
    let path = data.join(RECIPIENTS_FILE);
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut emails = HashMap::new();
    let mut consents = Vec::new();
    let mut topics: Vec<String> = Vec::new();
    sink.begin("recipients", RECIPIENT_COLUMNS).await?;
    let text = |v: Option<String>| match v {
        Some(s) if !s.is_empty() => Val::Text(s),
        _ => Val::Null,
    };
    for (index, line) in reader.deserialize::<RecipientLine>().enumerate() {
        let line = line?;
        let id = index as i64 + 1;
        let email = EmailAddress::parse(&line.email)?;
        let key = email.key();
        let created_at = match line.created_at.as_deref() {
            Some(t) if !t.is_empty() => {
                mailcast::time::parse_timestamp(t).map_err(anyhow::Error::msg)?
            }
            _ => now,
        };
        let attributes = line
            .attributes
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "{}".into());
        let source = line
            .consent_source
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "import".into());
        for topic in line.topics.as_deref().unwrap_or("").split(';') {
            let topic = topic.trim();
            if topic.is_empty() {
                continue;
            }
            let slot = match topics.iter().position(|t| t == topic) {
                Some(i) => i,
                None => {
                    topics.push(topic.to_string());
                    topics.len() - 1
                }
            };
            consents.push((id, slot as u8, source.clone()));
        }
        sink.row(vec![
            Val::Int(id),
            Val::Text(email.as_str().to_string()),
            Val::Text(key.clone()),
            Val::Text(email.hash()),
            text(line.first_name),
            text(line.last_name),
            text(line.country),
            text(line.city),
            Val::Text(attributes),
            text(line.locale),
            text(line.timezone),
            Val::Text("active".into()),
            Val::Int(created_at),
            Val::Int(now),
        ])
        .await?;
        if emails.insert(key, id).is_some() {
            bail!("{}: duplicate email {}", path.display(), line.email);
        }
    }
    sink.end().await?;
    Ok((emails, consents, topics))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Time {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
struct EventLine {
    event_id: Option<String>,
    email: String,
    kind: String,
    sku: Option<String>,
    amount: Option<f64>,
    occurred_at: Time,
    properties: Option<serde_json::Value>,
}

async fn load_events(
    sink: &mut Sink,
    data: &Path,
    emails: &HashMap<String, i64>,
    products: &HashMap<String, i64>,
) -> anyhow::Result<u64> {
    let path = data.join(EVENTS_FILE);
    let file = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut id = 0i64;
    sink.begin("events", EVENT_COLUMNS).await?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let event: EventLine = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}", path.display(), id + 1))?;
        id += 1;
        let Some(recipient_id) = emails.get(&event.email.to_lowercase()) else {
            bail!("event {id}: unknown recipient {}", event.email);
        };
        let product_id = match &event.sku {
            Some(sku) => match products.get(sku) {
                Some(p) => Val::Int(*p),
                None => bail!("event {id}: unknown product {sku}"),
            },
            None => Val::Null,
        };
        let occurred_at = match event.occurred_at {
            Time::Seconds(s) => s,
            Time::Text(t) => mailcast::time::parse_timestamp(&t).map_err(anyhow::Error::msg)?,
        };
        let properties = event
            .properties
            .filter(|p| p.is_object())
            .map(|p| p.to_string())
            .unwrap_or_else(|| "{}".into());
        sink.row(vec![
            Val::Int(id),
            event.event_id.map(Val::Text).unwrap_or(Val::Null),
            Val::Int(*recipient_id),
            Val::Text(event.kind),
            product_id,
            event
                .amount
                .map(|a| Val::Int((a * 100.0).round() as i64))
                .unwrap_or(Val::Null),
            Val::Int(occurred_at),
            Val::Text(properties),
        ])
        .await?;
    }
    sink.end().await
}

/// A deterministic history of six earlier campaigns, sent 10, 24, 38, 52, 66 and 80
/// days before `now` to every recipient: about a third are engaged readers (opening
/// about half the mails), the rest open one in twenty-five; one open in six is a
/// machine open (privacy proxy); one human open in five is followed by a click.
async fn load_tracking(sink: &mut Sink, recipients: i64, now: i64) -> anyhow::Result<u64> {
    const DAY: i64 = 86_400;
    sink.begin("tracking_events", TRACKING_COLUMNS).await?;
    let mut id = 0i64;
    for campaign in 0..6i64 {
        let sent_at = now - (10 + 14 * campaign) * DAY;
        for recipient in 1..=recipients {
            let engaged = mix(recipient as u64, 0).is_multiple_of(3);
            let roll = mix(recipient as u64, campaign as u64 + 1);
            let opens = if engaged {
                roll % 100 < 50
            } else {
                roll % 100 < 4
            };
            if !opens {
                continue;
            }
            let at = sent_at + (roll >> 8) as i64 % (3 * DAY);
            let human = !(roll >> 20).is_multiple_of(6);
            id += 1;
            sink.row(vec![
                Val::Int(id),
                Val::Text("open".into()),
                Val::Int(1_000 + campaign),
                Val::Int(recipient),
                Val::Null,
                Val::Int(at),
                Val::Text(if human { "human" } else { "machine" }.into()),
            ])
            .await?;
            if human && (roll >> 32).is_multiple_of(5) {
                id += 1;
                sink.row(vec![
                    Val::Int(id),
                    Val::Text("click".into()),
                    Val::Int(1_000 + campaign),
                    Val::Int(recipient),
                    Val::Int(((roll >> 40) % 4) as i64),
                    Val::Int(at + 60),
                    Val::Text("human".into()),
                ])
                .await?;
            }
        }
    }
    sink.end().await
}

/// splitmix64 of (a, b).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Streams rows into one table at a time: PostgreSQL `COPY … FROM STDIN` (text
/// format), SQLite multi-row `INSERT`s inside one transaction.
enum Sink {
    Postgres {
        pool: PgPool,
        copy: Option<sqlx::postgres::PgCopyIn<sqlx::pool::PoolConnection<sqlx::Postgres>>>,
        buffer: Vec<u8>,
        rows: u64,
    },
    Sqlite {
        conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
        table: String,
        columns: Vec<String>,
        batch: Vec<Vec<Val>>,
        rows: u64,
    },
}

const PG_BUFFER: usize = 1 << 20;
/// Rows per SQLite INSERT statement.
const SQLITE_BATCH: usize = 256;

impl Sink {
    async fn new(store: &Store) -> anyhow::Result<Sink> {
        Ok(match store.db() {
            Db::Postgres(pool) => Sink::Postgres {
                pool: pool.clone(),
                copy: None,
                buffer: Vec::with_capacity(PG_BUFFER * 2),
                rows: 0,
            },
            Db::Sqlite(pool) => Sink::Sqlite {
                conn: sqlite_loader(pool).await?,
                table: String::new(),
                columns: Vec::new(),
                batch: Vec::new(),
                rows: 0,
            },
        })
    }

    async fn begin(&mut self, table: &str, columns: &[&str]) -> anyhow::Result<()> {
        match self {
            Sink::Postgres {
                pool, copy, rows, ..
            } => {
                let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
                *copy = Some(pool.copy_in_raw(&sql).await?);
                *rows = 0;
            }
            Sink::Sqlite {
                conn,
                table: t,
                columns: c,
                rows,
                ..
            } => {
                if t.is_empty() {
                    conn.execute("BEGIN").await?;
                }
                *t = table.to_string();
                *c = columns.iter().map(|s| s.to_string()).collect();
                *rows = 0;
            }
        }
        Ok(())
    }

    async fn row(&mut self, values: Vec<Val>) -> anyhow::Result<()> {
        match self {
            Sink::Postgres {
                copy, buffer, rows, ..
            } => {
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        buffer.push(b'\t');
                    }
                    match value {
                        Val::Null => buffer.extend_from_slice(b"\\N"),
                        Val::Int(n) => buffer.extend_from_slice(n.to_string().as_bytes()),
                        Val::Text(s) => copy_escape(buffer, s),
                    }
                }
                buffer.push(b'\n');
                *rows += 1;
                if buffer.len() >= PG_BUFFER {
                    let copy = copy.as_mut().expect("begin() first");
                    copy.send(buffer.as_slice()).await?;
                    buffer.clear();
                }
            }
            Sink::Sqlite {
                conn,
                table,
                columns,
                batch,
                rows,
            } => {
                batch.push(values);
                *rows += 1;
                if batch.len() >= SQLITE_BATCH {
                    sqlite_flush(conn, table, columns, batch).await?;
                }
            }
        }
        Ok(())
    }

    /// Ends the current table; returns its row count.
    async fn end(&mut self) -> anyhow::Result<u64> {
        match self {
            Sink::Postgres {
                copy, buffer, rows, ..
            } => {
                let mut copy = copy.take().expect("begin() first");
                if !buffer.is_empty() {
                    copy.send(buffer.as_slice()).await?;
                    buffer.clear();
                }
                let n = copy.finish().await?;
                if n != *rows {
                    bail!("COPY stored {n} rows of {rows}");
                }
                Ok(n)
            }
            Sink::Sqlite {
                conn,
                table,
                columns,
                batch,
                rows,
            } => {
                sqlite_flush(conn, table, columns, batch).await?;
                Ok(*rows)
            }
        }
    }

    async fn finish(self) -> anyhow::Result<()> {
        if let Sink::Sqlite { mut conn, .. } = self {
            conn.execute("COMMIT").await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            conn.execute("PRAGMA synchronous = NORMAL").await?;
            conn.execute("PRAGMA cache_size = -2000").await?;
        }
        Ok(())
    }
}

async fn sqlite_loader(
    pool: &SqlitePool,
) -> anyhow::Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    let mut conn = pool.acquire().await?;
    conn.ping().await?;
    conn.execute("PRAGMA foreign_keys = OFF").await?;
    conn.execute("PRAGMA synchronous = OFF").await?;
    conn.execute("PRAGMA cache_size = -1000000").await?;
    Ok(conn)
}

async fn sqlite_flush(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    columns: &[String],
    batch: &mut Vec<Vec<Val>>,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        vec![one; batch.len()].join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in batch.drain(..) {
        for value in row {
            query = match value {
                Val::Null => query.bind(None::<i64>),
                Val::Int(n) => query.bind(n),
                Val::Text(s) => query.bind(s),
            };
        }
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_escape(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}
