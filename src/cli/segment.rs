//! `mailcast segment check|count|sample|save|list`.

use std::io::Write;

use anyhow::{Context, bail};

use crate::segment::{Expr, check_definition, compile_stored, parse};
use crate::store::{SqlFilter, Store};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SegmentCommand {
    /// Parse an expression and print its canonical form, or the error with a caret
    /// under its position. Stored segments it refers to must exist.
    Check {
        /// The expression, or the name of a stored segment.
        expr: String,
        /// Also print the SQL it compiles to for this store, with its parameters.
        #[arg(long)]
        sql: bool,
    },
    /// Count matching recipients, how many may be mailed and why the others may not.
    Count {
        /// The expression, or the name of a stored segment.
        expr: String,
        /// Only recipients subscribed to this topic are eligible.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Show some matching recipients, lowest id first.
    Sample {
        /// The expression, or the name of a stored segment.
        expr: String,
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
    /// Store a named segment, replacing one of the same name. It is checked first:
    /// references must exist and must not lead back to it.
    Save {
        name: String,
        expr: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the stored segments.
    List,
}

/// Runs a command, printing to standard output.
pub async fn run(store: &Store, cmd: &SegmentCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    run_to(store, cmd, crate::time::now(), &mut out).await
}

/// Runs a command against `now`, printing to `out`.
pub async fn run_to(
    store: &Store,
    cmd: &SegmentCommand,
    now: i64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        SegmentCommand::Check { expr, sql } => check(store, expr, *sql, now, out).await,
        SegmentCommand::Count { expr, topic } => {
            let (_, filter) = prepare(store, expr, now).await?;
            let count = store.count_segment(&filter, topic.as_deref()).await?;
            write_count(out, &count, topic.as_deref())
        }
        SegmentCommand::Sample { expr, limit } => {
            let (_, filter) = prepare(store, expr, now).await?;
            let recipients = store.sample_segment(&filter, *limit).await?;
            write_sample(out, &recipients)
        }
        SegmentCommand::Save {
            name,
            expr,
            description,
        } => save(store, name, expr, description, now, out).await,
        SegmentCommand::List => list(store, out).await,
    }
}

/// Parses `text` and compiles it for the store.
async fn prepare(store: &Store, text: &str, now: i64) -> anyhow::Result<(Expr, SqlFilter)> {
    let expr = expression(store, text).await?;
    let filter = compile_stored(store, &expr, now).await?;
    Ok((expr, filter))
}

/// The parsed `text`, or a reference to the stored segment named `text` when `text`
/// is not an expression.
async fn expression(store: &Store, text: &str) -> anyhow::Result<Expr> {
    match parse(text) {
        Ok(expr) => Ok(expr),
        Err(_) if store.segment_by_name(text.trim()).await?.is_some() => {
            Ok(Expr::Segment(text.trim().to_string()))
        }
        Err(e) => bail!("{}", e.render(text)),
    }
}

async fn check(
    store: &Store,
    text: &str,
    sql: bool,
    now: i64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (expr, filter) = prepare(store, text, now).await?;
    writeln!(out, "ok: {expr}")?;
    if sql {
        writeln!(out, "sql: {}", filter.sql)?;
        for (i, param) in filter.params.iter().enumerate() {
            writeln!(out, "  ${} = {param:?}", i + 1)?;
        }
    }
    Ok(())
}

async fn save(
    store: &Store,
    name: &str,
    text: &str,
    description: &str,
    now: i64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if name.trim().is_empty() || name != name.trim() {
        bail!("a segment name may not be empty or start or end with white space");
    }
    let expr = expression(store, text).await?;
    check_definition(store, name, &expr, now)
        .await
        .with_context(|| format!("cannot save segment \"{name}\""))?;
    let canonical = expr.to_string();
    store.upsert_segment(name, &canonical, description).await?;
    writeln!(out, "saved segment \"{name}\": {canonical}")?;
    Ok(())
}

async fn list(store: &Store, out: &mut dyn Write) -> anyhow::Result<()> {
    let segments = store.segments().await?;
    if segments.is_empty() {
        writeln!(out, "no stored segments")?;
    }
    for segment in segments {
        writeln!(out, "{}: {}", segment.name, segment.expression)?;
        if !segment.description.is_empty() {
            writeln!(out, "    {}", segment.description)?;
        }
    }
    Ok(())
}

fn write_count(
    out: &mut dyn Write,
    count: &crate::store::SegmentCount,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let consent = match topic {
        Some(topic) => format!("not subscribed to \"{topic}\""),
        None => "no --topic given: consent not checked".to_string(),
    };
    let rows = [
        ("matching", count.matching, String::new()),
        (
            "eligible",
            count.eligible,
            "active, consented, not suppressed".into(),
        ),
        (
            "excluded by suppression",
            count.excluded_by_suppression,
            String::new(),
        ),
        (
            "excluded by status",
            count.excluded_by_status,
            "unsubscribed, bounced or erased".into(),
        ),
        ("excluded by consent", count.excluded_by_consent, consent),
    ];
    for (label, n, note) in rows {
        let note = if note.is_empty() {
            note
        } else {
            format!("  ({note})")
        };
        writeln!(out, "{:<24} {n:>9}{note}", format!("{label}:"))?;
    }
    Ok(())
}

fn write_sample(out: &mut dyn Write, recipients: &[crate::store::Recipient]) -> anyhow::Result<()> {
    if recipients.is_empty() {
        writeln!(out, "no matching recipients")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>8}  {:<36} {:<24} {:<7} city",
        "id", "email", "name", "country"
    )?;
    for r in recipients {
        let name = [r.first_name.as_deref(), r.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(
            out,
            "{:>8}  {:<36} {:<24} {:<7} {}",
            r.id,
            r.email,
            name,
            r.country.as_deref().unwrap_or("-"),
            r.city.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}
