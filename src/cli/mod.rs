//! The command line: argument types and what each command prints. `main.rs` only
//! parses and calls [`run`].

mod automation;
mod bounces;
mod campaign;
mod demo;
mod demo_automations;
mod experiment;
mod import;
mod logging;
mod personalised;
mod preview;
mod recommend;
pub mod segment;
mod send;
mod serve;
mod stats;
mod suppression;
mod user;
mod webhooks;
mod worker;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::store::Store;

pub use demo::DemoArgs;
pub use logging::LogFormat;

/// `--base-url`: the public address of the HTTP side, which tracked, unsubscribe and
/// "view online" links point at. Every command that signs links takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct BaseUrlArg {
    /// Public address of the HTTP side (tracking, unsubscribe and "view online" links).
    #[arg(
        long,
        env = "MAILCAST_BASE_URL",
        default_value = "http://localhost:8080"
    )]
    pub base_url: String,
}

/// Who a message is from; `mailcast send` and `campaign create` take the same flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SenderArgs {
    #[arg(long)]
    pub from_email: String,
    #[arg(long, default_value = "")]
    pub from_name: String,
    /// Where replies go, when not to the sender.
    #[arg(long)]
    pub reply_to: Option<String>,
}
pub use worker::{TransportArgs, WorkerArgs};

#[derive(Debug, Parser)]
#[command(
    name = "mailcast",
    version,
    about = "Email campaign rendering and dispatch worker"
)]
pub struct Cli {
    /// SQLite file (created when missing) or postgres:// URL.
    // The value is not shown in --help: a PostgreSQL URL carries its password.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "mailcast.db"
    )]
    pub database: String,
    /// Log more (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text (coloured only on a terminal without NO_COLOR) or as JSON,
    /// one object per line, for log collectors.
    #[arg(
        long,
        global = true,
        env = "MAILCAST_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import fixtures, run the example campaign through the worker into outbox/.
    Demo(DemoArgs),
    /// Create or update the database schema.
    Migrate,
    /// Import recipients, products or events from CSV or JSON Lines.
    Import(import::ImportArgs),
    /// Demo and benchmark data.
    Fixtures {
        #[command(subcommand)]
        command: FixturesCommand,
    },
    /// Store campaign templates from a directory.
    Template {
        #[command(subcommand)]
        command: campaign::TemplateCommand,
    },
    /// Create, schedule and inspect campaigns.
    Campaign {
        #[command(subcommand)]
        command: campaign::CampaignCommand,
    },
    /// Check, count and store segments.
    Segment {
        #[command(subcommand)]
        command: segment::SegmentCommand,
    },
    /// Run scheduled campaigns: start jobs and deliveries.
    Worker(WorkerArgs),
    /// Render one recipient's message of a campaign into .eml, .html and .txt files.
    Preview(preview::PreviewArgs),
    /// Serve tracking links, unsubscribe pages, the CRM API, /healthz and /metrics.
    Serve(serve::ServeArgs),
    /// The worker and the HTTP server in one process.
    Run(Box<serve::RunArgs>),
    /// Send one message to one recipient now (a triggered send), idempotently.
    Send(send::SendArgs),
    /// Keys for the CRM API.
    ApiKey {
        #[command(subcommand)]
        command: serve::ApiKeyCommand,
    },
    /// Same as `campaign stats` (kept for scripts written before it moved).
    #[command(hide = true)]
    Stats {
        /// The campaign's name.
        campaign: String,
    },
    /// The suppression list: list it, show why an address is on it, take one off.
    Suppression {
        #[command(subcommand)]
        command: suppression::SuppressionCommand,
    },
    /// Dashboard users: create (with a one-time password), list, remove.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// A/B/n experiments: the winner rule checked by simulation.
    Experiment {
        #[command(subcommand)]
        command: experiment::ExperimentCommand,
    },
    /// Evaluate and inspect product recommendations.
    Recommend {
        #[command(subcommand)]
        command: recommend::RecommendCommand,
    },
    /// Automations: journeys started by events, sign-ups, segments and dates.
    Automation {
        #[command(subcommand)]
        command: automation::AutomationCommand,
    },
    /// Bounces: received ones (list, show), and the classifier against a labelled corpus.
    Bounces {
        #[command(subcommand)]
        command: bounces::BouncesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Write recipients.csv, products.csv and events.jsonl with realistic shapes.
    Generate {
        #[arg(long, default_value_t = 2000)]
        recipients: u64,
        #[arg(long, default_value = "fixtures")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = crate::fixtures::DEMO_SEED)]
        seed: u64,
        /// The moment the data ends at (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
}

impl Command {
    /// Servers and workers: they run until stopped and write logs, not output.
    pub fn is_long_running(&self) -> bool {
        matches!(
            self,
            Command::Serve(_)
                | Command::Run(_)
                | Command::Worker(_)
                | Command::Bounces {
                    command: bounces::BouncesCommand::Receive(_)
                }
                | Command::Bounces {
                    command: bounces::BouncesCommand::Poll(bounces::PollArgs { once: false, .. })
                }
        )
    }
}

/// An error and its causes as one line, `outer: inner: innermost`. A cause whose text
/// the line already holds is left out: many errors print their source themselves
/// (`cannot listen on …: {source}`), and printing it again reads "X: X".
pub fn error_message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// True when the error comes from writing into a pipe nobody reads any more.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "mailcast=info,apalis=warn,sqlx=warn",
        1 => "mailcast=debug,apalis=info,sqlx=warn",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(logging::colour_wanted()).try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .event_format(logging::JsonLines)
            .try_init(),
    };
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(&cli.database, &args).await,
        Command::Fixtures { command } => fixtures(command),
        Command::Recommend { command } => recommend::run(&cli.database, &command).await,
        Command::Experiment { command } => experiment::run(&command),
        Command::Bounces { command } if !command.needs_store() => bounces::run(&command),
        command => {
            let store = Store::open(&cli.database).await?;
            let code = run_with_store(&store, command).await;
            store.close().await;
            code
        }
    }
}

async fn run_with_store(store: &Store, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => {
            println!("database is up to date ({:?})", store.engine());
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => import::run(store, &args).await,
        Command::Template { command } => campaign::run_template(store, command).await,
        Command::Campaign { command } => campaign::run(store, command).await,
        Command::Segment { command } => {
            segment::run(store, &command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => worker::run(store, &args).await,
        Command::Preview(args) => preview::run(store, &args).await,
        Command::Serve(args) => serve::serve(store, &args).await,
        Command::Run(args) => serve::run(store, &args).await,
        Command::Send(args) => send::run(store, &args).await,
        Command::ApiKey { command } => serve::api_key(store, command).await,
        Command::Stats { campaign } => stats::run(store, &campaign, stats::StatsFormat::Text).await,
        Command::Suppression { command } => suppression::run(store, command).await,
        Command::User { command } => user::run(store, command).await,
        Command::Bounces { command } => bounces::run_with_store(store, command).await,
        Command::Automation { command } => automation::run(store, command).await,
        Command::Demo(_)
        | Command::Fixtures { .. }
        | Command::Recommend { .. }
        | Command::Experiment { .. } => {
            unreachable!("handled without a store")
        }
    }
}

fn fixtures(command: FixturesCommand) -> anyhow::Result<ExitCode> {
    let FixturesCommand::Generate {
        recipients,
        out,
        seed,
        now,
    } = command;
    let now = match now {
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .with_context(|| format!("--now '{text}' is not an RFC 3339 time"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let options = crate::fixtures::GenerateOptions {
        recipients,
        seed,
        now,
    };
    let summary = crate::fixtures::generate(&options, &out)?;
    println!(
        "wrote {} recipients, {} products, {} events to {}",
        summary.recipients,
        summary.products,
        summary.events,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, error_message};

    fn long_running(args: &[&str]) -> bool {
        let cli = Cli::try_parse_from([&["mailcast"], args].concat()).expect("parses");
        cli.command.is_long_running()
    }

    #[test]
    fn servers_workers_and_pollers_run_long_and_one_round_does_not() {
        let mailbox = ["--mailbox", "imaps://u:p@mail.example.com/INBOX"];
        assert!(long_running(&[&["bounces", "poll"], &mailbox[..]].concat()));
        assert!(!long_running(
            &[&["bounces", "poll", "--once"], &mailbox[..]].concat()
        ));
        assert!(long_running(&["worker"]));
        assert!(!long_running(&["campaign", "list"]));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on {addr}: {source}")]
    struct Bind {
        addr: String,
        source: std::io::Error,
    }

    #[test]
    fn an_error_that_prints_its_source_is_not_repeated() {
        let io = std::io::Error::other("invalid socket address");
        let error = anyhow::Error::new(Bind {
            addr: "x:1".into(),
            source: io,
        })
        .context("serve");
        assert_eq!(
            error_message(&error),
            "serve: cannot listen on x:1: invalid socket address"
        );
    }

    #[test]
    fn causes_that_add_something_are_kept() {
        let error = anyhow::anyhow!("disk full").context("cannot write m.eml");
        assert_eq!(error_message(&error), "cannot write m.eml: disk full");
    }
}
