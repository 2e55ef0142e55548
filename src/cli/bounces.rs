//! `mailcast bounces evaluate|list|show|receive|poll`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::bounce::{
    BounceSettings, DEFAULT_PREFIX, LineEnding, Mailbox, MailboxLimits, MailboxUrl,
    PauseThresholds, PollReport, ReceiverLimits, ReturnPath, bind_receiver, evaluate_dir,
    poll_forever, poll_once, serve_receiver,
};
use crate::links::KeyRing;
use crate::store::{BounceRecord, SoftBouncePolicy, Store};
use crate::time::format_timestamp;

#[derive(Debug, clap::Subcommand)]
pub enum BouncesCommand {
    /// Classify the messages of DIR/mail and compare with DIR/labels.tsv: agreement on
    /// class and recipient, the confusion table and every disagreement.
    Evaluate(EvaluateArgs),
    /// Received bounces, newest first: class, address, status and what each did.
    List {
        /// How many to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// How many of the newest to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// One received bounce: what was read from it, its delivery, what it did, and the
    /// message as received.
    Show {
        /// The bounce's id, as `bounces list` shows it.
        id: i64,
    },
    /// Receive bounces over SMTP for the bounce domain (point its MX, or the relay's
    /// transport for it, here) and apply each once it is stored.
    Receive(ReceiveArgs),
    /// Read bounces from a mailbox (IMAP or POP3, over TLS): each message is stored,
    /// applied, and then deleted from the mailbox (or moved with --move-to).
    Poll(PollArgs),
}

#[derive(Debug, clap::Args)]
pub struct PollArgs {
    /// The mailbox: imaps://USER:PASSWORD@HOST[:PORT]/FOLDER (port 993, folder INBOX)
    /// or pop3s://USER:PASSWORD@HOST[:PORT] (port 995), user and password %-escaped;
    /// the password may instead be in MAILCAST_BOUNCE_MAILBOX_PASSWORD.
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX", hide_env_values = true)]
    pub mailbox: String,
    /// One round: read what is there, print what was done, and exit.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub options: MailboxArgs,
    #[command(flatten)]
    pub return_path: ReturnPathArgs,
    #[command(flatten)]
    pub effects: BounceEffectArgs,
}

/// How the bounce mailbox is polled (`bounces poll`, and `run --bounce-mailbox`).
#[derive(Debug, Clone, clap::Args)]
pub struct MailboxArgs {
    /// Move each message, once stored, to this IMAP folder (created when missing)
    /// instead of deleting it.
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX_MOVE_TO")]
    pub move_to: Option<String>,
    /// Time between two reads of the mailbox: `60s`, `5m`, `1h`.
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub interval: Duration,
    /// A PEM file of CA certificates (or the server's self-signed certificate) to
    /// trust besides the public CAs.
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX_CA")]
    pub mailbox_ca: Option<PathBuf>,
    /// Larger messages are left in the mailbox, with a warning, in bytes.
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX_MAX_SIZE", default_value_t = MailboxLimits::default().max_message_size)]
    pub mailbox_max_size: usize,
}

impl MailboxArgs {
    /// The mailbox at `url`, checked (and its CA file read) now, so that a mistake
    /// stops the process before anything else starts.
    fn mailbox(&self, url: &str) -> anyhow::Result<Mailbox> {
        anyhow::ensure!(
            self.mailbox_max_size >= 1024,
            "--mailbox-max-size must be at least 1024 bytes, not {}",
            self.mailbox_max_size
        );
        let password = std::env::var("MAILCAST_BOUNCE_MAILBOX_PASSWORD").ok();
        let url = MailboxUrl::parse(url, password.as_deref())?;
        let limits = MailboxLimits {
            max_message_size: self.mailbox_max_size,
            ..MailboxLimits::default()
        };
        let ca = self.mailbox_ca.as_deref();
        Ok(Mailbox::new(url, self.move_to.clone(), ca, limits)?)
    }
}

/// A checked bounce mailbox with what its bounces do.
pub(super) struct BouncePoller {
    mailbox: Mailbox,
    settings: BounceSettings,
    interval: Duration,
}

impl BouncePoller {
    pub fn new(
        url: &str,
        args: &MailboxArgs,
        effects: &BounceEffectArgs,
        path: Option<ReturnPath>,
        keys: KeyRing,
    ) -> anyhow::Result<BouncePoller> {
        Ok(BouncePoller {
            mailbox: args.mailbox(url)?,
            settings: effects.settings(path, keys)?,
            interval: args.interval,
        })
    }

    /// Applies what is stored and unapplied, then reads the mailbox once.
    pub async fn once(&self, store: &Store) -> anyhow::Result<PollReport> {
        crate::bounce::process_unprocessed(store, &self.settings).await?;
        Ok(poll_once(store, &self.settings, &self.mailbox).await?)
    }

    /// Reads the mailbox every interval until `stop`.
    pub async fn run(&self, store: &Store, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            mailbox = %self.mailbox.url(),
            interval = ?self.interval,
            "polling the bounce mailbox"
        );
        poll_forever(store, &self.settings, &self.mailbox, self.interval, stop).await;
    }
}

/// `60s`, `5m`, `1h` or a number of seconds; at least one second.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("'{text}' is not an interval (write 60s, 5m or 1h)")),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(scale))),
        _ => Err(format!(
            "'{text}' is not an interval of at least 1s (write 60s, 5m or 1h)"
        )),
    }
}

#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {
    /// Address and port to listen on, e.g. 0.0.0.0:25.
    #[arg(long, env = "MAILCAST_BOUNCE_LISTEN")]
    pub listen: String,
    #[command(flatten)]
    pub return_path: ReturnPathArgs,
    #[command(flatten)]
    pub receiver: ReceiverArgs,
}

/// How the bounce receiver takes mail, and what bounces do.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// Largest message the bounce receiver accepts, in bytes; larger ones get 552.
    #[arg(long, env = "MAILCAST_BOUNCE_MAX_SIZE", default_value_t = ReceiverLimits::default().max_message_size)]
    pub bounce_max_size: usize,
    /// SMTP sessions the bounce receiver serves at once; more get 421.
    #[arg(long, env = "MAILCAST_BOUNCE_MAX_CONNECTIONS", default_value_t = ReceiverLimits::default().max_connections)]
    pub bounce_max_connections: usize,
    /// The host name the bounce receiver greets with.
    #[arg(long, env = "MAILCAST_BOUNCE_HOSTNAME", default_value = "localhost")]
    pub bounce_hostname: String,
    #[command(flatten)]
    pub effects: BounceEffectArgs,
}

impl ReceiverArgs {
    pub fn limits(&self) -> anyhow::Result<ReceiverLimits> {
        anyhow::ensure!(
            self.bounce_max_connections > 0,
            "--bounce-max-connections must be at least 1"
        );
        anyhow::ensure!(
            self.bounce_max_size >= 1024,
            "--bounce-max-size must be at least 1024 bytes, not {}",
            self.bounce_max_size
        );
        Ok(ReceiverLimits {
            max_message_size: self.bounce_max_size,
            max_connections: self.bounce_max_connections,
            hostname: self.bounce_hostname.clone(),
            ..ReceiverLimits::default()
        })
    }
}

/// A bound bounce receiver, ready to serve.
pub(super) struct BounceReceiver {
    listener: tokio::net::TcpListener,
    settings: BounceSettings,
    limits: ReceiverLimits,
}

impl BounceReceiver {
    /// Checks the settings and binds `listen`, so that a mistake stops the process
    /// before anything else starts.
    pub async fn bind(
        listen: &str,
        path: Option<ReturnPath>,
        args: &ReceiverArgs,
        keys: KeyRing,
    ) -> anyhow::Result<BounceReceiver> {
        let path =
            path.context("receiving bounces needs --bounce-domain (MAILCAST_BOUNCE_DOMAIN)")?;
        let limits = args.limits()?;
        let settings = args.effects.settings(Some(path), keys)?;
        let listener = bind_receiver(listen).await?;
        Ok(BounceReceiver {
            listener,
            settings,
            limits,
        })
    }

    /// Applies what an earlier process left stored, then serves until `stop`.
    pub async fn serve(
        self,
        store: &Store,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let domain = self
            .settings
            .return_path
            .as_ref()
            .map(|p| p.domain().to_string());
        tracing::info!(
            listen = %self.listener.local_addr()?,
            domain = domain.as_deref().unwrap_or(""),
            "bounce receiver listening"
        );
        serve_receiver(
            self.listener,
            store.clone(),
            self.settings,
            self.limits,
            stop,
        )
        .await?;
        Ok(())
    }
}

impl BouncesCommand {
    pub fn needs_store(&self) -> bool {
        !matches!(self, BouncesCommand::Evaluate(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// A directory holding mail/ (one message per file) and labels.tsv.
    pub dir: PathBuf,
    /// Convert each message to this line-ending convention before classifying it.
    #[arg(long, value_enum, default_value = "lf")]
    pub line_endings: LineEnding,
    /// Classify the corpus this many times, for the throughput figure.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

/// The commands that need no database.
pub fn run(command: &BouncesCommand) -> anyhow::Result<ExitCode> {
    match command {
        BouncesCommand::Evaluate(args) => {
            let evaluation = evaluate_dir(&args.dir, args.line_endings, args.repeat)?;
            print!("{}", evaluation.render());
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("needs a store"),
    }
}

pub async fn run_with_store(store: &Store, command: BouncesCommand) -> anyhow::Result<ExitCode> {
    match command {
        BouncesCommand::Evaluate(_) => run(&command),
        BouncesCommand::List { limit, offset } => {
            let bounces = store.received_bounces(limit.into(), offset.into()).await?;
            if bounces.is_empty() {
                println!("no bounces received");
            }
            for bounce in &bounces {
                println!("{}", one_line(bounce));
            }
            Ok(ExitCode::SUCCESS)
        }
        BouncesCommand::Show { id } => {
            let (record, raw) = store
                .bounce(id)
                .await?
                .with_context(|| format!("no bounce with id {id}"))?;
            print!("{}", described(&record));
            println!("\n{}", String::from_utf8_lossy(&raw));
            Ok(ExitCode::SUCCESS)
        }
        BouncesCommand::Receive(args) => {
            let keys = KeyRing::load(store).await.context("link signing keys")?;
            let path = args.return_path.return_path()?;
            let receiver = BounceReceiver::bind(&args.listen, path, &args.receiver, keys).await?;
            receiver
                .serve(store, crate::shutdown::shutdown_signal())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        BouncesCommand::Poll(args) => {
            let keys = KeyRing::load(store).await.context("link signing keys")?;
            let path = args.return_path.return_path()?;
            let poller =
                BouncePoller::new(&args.mailbox, &args.options, &args.effects, path, keys)?;
            if args.once {
                let report = poller.once(store).await?;
                println!("{}: {report}", poller.mailbox.url());
            } else {
                poller.run(store, crate::shutdown::shutdown_signal()).await;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

fn one_line(b: &BounceRecord) -> String {
    let delivery = b
        .delivery_id
        .map_or("-".to_string(), |id| format!("delivery {id}"));
    format!(
        "#{}\t{}\t{}\t{}\t{}\t{}\t{}",
        b.id,
        format_timestamp(b.received_at),
        or_dash(b.class.as_deref().or(Some("unprocessed"))),
        or_dash(b.recipient.as_deref()),
        or_dash(b.status.as_deref()),
        delivery,
        or_dash(b.action.as_deref()),
    )
}

fn described(b: &BounceRecord) -> String {
    let processed = b
        .processed_at
        .map_or("not yet".to_string(), format_timestamp);
    let delivery = match (b.delivery_id, b.campaign_id) {
        (Some(id), Some(campaign)) => format!("{id} (campaign {campaign})"),
        (Some(id), None) => id.to_string(),
        _ => "none of ours".to_string(),
    };
    [
        ("bounce", format!("#{}", b.id)),
        ("received", format_timestamp(b.received_at)),
        ("processed", processed),
        ("envelope from", or_dash(b.envelope_from.as_deref()).into()),
        ("envelope to", or_dash(b.envelope_to.as_deref()).into()),
        ("class", or_dash(b.class.as_deref()).into()),
        ("recipient", or_dash(b.recipient.as_deref()).into()),
        ("status", or_dash(b.status.as_deref()).into()),
        ("diagnostic", or_dash(b.diagnostic.as_deref()).into()),
        ("delivery", delivery),
        ("matched by", or_dash(b.matched_by.as_deref()).into()),
        ("action", or_dash(b.action.as_deref()).into()),
        ("digest", b.digest.clone()),
    ]
    .into_iter()
    .map(|(name, value)| format!("{name:<14}{value}\n"))
    .collect()
}

/// `--bounce-domain` and `--bounce-prefix`: where bounces of the messages sent go.
#[derive(Debug, Clone, clap::Args)]
pub struct ReturnPathArgs {
    /// The bounce domain: every message is sent with the envelope sender
    /// PREFIX+TOKEN@DOMAIN, TOKEN naming its delivery (signed with the link keys), and
    /// the bounce receiver takes mail for this domain only. Without it, the envelope
    /// sender is the campaign's sender address.
    #[arg(long, env = "MAILCAST_BOUNCE_DOMAIN")]
    pub bounce_domain: Option<String>,
    /// The local part before the `+TOKEN` of the return path.
    #[arg(long, env = "MAILCAST_BOUNCE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub bounce_prefix: String,
}

impl ReturnPathArgs {
    pub fn return_path(&self) -> anyhow::Result<Option<ReturnPath>> {
        self.bounce_domain
            .as_deref()
            .map(|domain| ReturnPath::new(&self.bounce_prefix, domain))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--bounce-domain/--bounce-prefix: {e}"))
    }
}
/// When soft bounces suppress an address.
#[derive(Debug, Clone, clap::Args)]
pub struct BounceEffectArgs {
    /// Soft bounces (mailbox full, greylisted, expired …) that suppress an address …
    #[arg(long, env = "MAILCAST_SOFT_BOUNCE_LIMIT", default_value_t = SoftBouncePolicy::default().limit)]
    pub soft_bounce_limit: i64,
    /// … among the last this many messages sent to it.
    #[arg(long, env = "MAILCAST_SOFT_BOUNCE_WINDOW", default_value_t = SoftBouncePolicy::default().window)]
    pub soft_bounce_window: i64,
    /// A running campaign pauses itself when more than this share of what it delivered
    /// came back as spam complaints (`0.3%` or `0.003`).
    #[arg(long, env = "MAILCAST_PAUSE_COMPLAINT_RATE", default_value = "0.3%", value_parser = parse_share)]
    pub pause_complaint_rate: f64,
    /// … or as hard bounces (`5%`).
    #[arg(long, env = "MAILCAST_PAUSE_HARD_BOUNCE_RATE", default_value = "5%", value_parser = parse_share)]
    pub pause_hard_bounce_rate: f64,
    /// … once it has delivered at least this many messages.
    #[arg(long, env = "MAILCAST_PAUSE_MIN_DELIVERED", default_value_t = PauseThresholds::default().min_delivered)]
    pub pause_min_delivered: i64,
}

impl BounceEffectArgs {
    pub fn policy(&self) -> anyhow::Result<SoftBouncePolicy> {
        anyhow::ensure!(
            self.soft_bounce_limit >= 1,
            "--soft-bounce-limit must be at least 1, not {}",
            self.soft_bounce_limit
        );
        anyhow::ensure!(
            self.soft_bounce_window >= self.soft_bounce_limit,
            "--soft-bounce-window ({}) must be at least --soft-bounce-limit ({})",
            self.soft_bounce_window,
            self.soft_bounce_limit
        );
        Ok(SoftBouncePolicy {
            limit: self.soft_bounce_limit,
            window: self.soft_bounce_window,
        })
    }

    pub fn thresholds(&self) -> anyhow::Result<PauseThresholds> {
        anyhow::ensure!(
            self.pause_min_delivered >= 0,
            "--pause-min-delivered must be 0 or more, not {}",
            self.pause_min_delivered
        );
        Ok(PauseThresholds {
            complaint_rate: self.pause_complaint_rate,
            hard_rate: self.pause_hard_bounce_rate,
            min_delivered: self.pause_min_delivered,
        })
    }

    /// What received bounces do, for messages sent with `return_path` and `keys`.
    pub fn settings(
        &self,
        return_path: Option<ReturnPath>,
        keys: KeyRing,
    ) -> anyhow::Result<BounceSettings> {
        Ok(BounceSettings {
            return_path,
            keys,
            soft: self.policy()?,
            pause: self.thresholds()?,
        })
    }
}

/// A share as `0.3%` or `0.003`, between 0 and 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let share = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v / scale)
        .ok_or_else(|| format!("'{text}' is not a share (write 0.3% or 0.003)"))?;
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("'{text}' is not between 0% and 100%"))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn intervals_in_seconds_minutes_or_hours() {
        assert_eq!(parse_interval("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval("90"), Ok(Duration::from_secs(90)));
        for bad in ["0s", "m", "5d", "-1s", "1.5m", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
