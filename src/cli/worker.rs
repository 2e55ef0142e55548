use super::BaseUrlArg;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{SmtpUrl, TransportConfig};
use crate::dispatch::{
    DispatchSettings, Dispatcher, DomainLimit, ThrottleSettings, Transport, unique_worker_name,
};
use crate::links::KeyRing;
use crate::schedule::{FrequencyCap, QuietHours, WhenCapped};
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// Send over SMTP: smtp://host:port, smtp://user:pass@host?tls=starttls, smtps://host.
    /// Repeat (or separate with commas) for failover relays, optionally named:
    /// `--smtp primary=smtp://a --smtp backup=smtp://b`.
    #[arg(
        long,
        env = "MAILCAST_SMTP_URL",
        // Not shown in --help: the URL may carry the relay's password.
        hide_env_values = true,
        value_delimiter = ',',
        conflicts_with = "outbox"
    )]
    pub smtp: Vec<String>,
    /// Write one .eml file per message into this directory instead of sending.
    #[arg(long, default_value = "outbox")]
    pub outbox: PathBuf,
    #[command(flatten)]
    pub public: BaseUrlArg,
    /// Messages in flight at once per worker (SMTP connections).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Messages per second at most, over all domains.
    #[arg(long)]
    pub rate: Option<f64>,
    /// DKIM private key: a PEM file, PKCS#8 (RSA or Ed25519, as `openssl genpkey` writes
    /// it) or PKCS#1 (RSA), or a file holding the base64 of an Ed25519 seed. Signs From,
    /// To, Subject, Date, Message-ID, Reply-To, the List-* headers, MIME-Version and
    /// Content-Type.
    #[arg(long, env = "MAILCAST_DKIM_KEY", requires_all = ["dkim_selector", "dkim_domain"])]
    pub dkim_key: Option<PathBuf>,
    /// DKIM selector (the DNS record is SELECTOR._domainkey.DOMAIN).
    #[arg(long, env = "MAILCAST_DKIM_SELECTOR")]
    pub dkim_selector: Option<String>,
    /// DKIM signing domain (d=).
    #[arg(long, env = "MAILCAST_DKIM_DOMAIN")]
    pub dkim_domain: Option<String>,
    /// Per recipient domain: at most CONCURRENCY at once and RATE per second
    /// (`gmail.com=8/50`). Repeatable.
    #[arg(long = "domain-limit", value_name = "DOMAIN=CONCURRENCY[/RATE]")]
    pub domain_limits: Vec<String>,
    #[command(flatten)]
    pub return_path: super::bounces::ReturnPathArgs,
}

impl TransportArgs {
    pub fn transport_config(&self) -> anyhow::Result<TransportConfig> {
        let relays = self
            .smtp
            .iter()
            .enumerate()
            .map(|(i, text)| named_relay(i, text))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(match relays.len() {
            0 => TransportConfig::Outbox(self.outbox.clone()),
            1 if !self.smtp[0].contains("=smtp") => {
                TransportConfig::Smtp(relays.into_iter().next().expect("one relay").1)
            }
            _ => TransportConfig::Relays(relays),
        })
    }

    pub fn throttle(&self) -> anyhow::Result<ThrottleSettings> {
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate > 0.0, "--rate must be above 0, not {rate}");
        }
        let mut domains = std::collections::HashMap::new();
        for text in &self.domain_limits {
            let (domain, limit) = text.split_once('=').with_context(|| {
                format!("--domain-limit '{text}': expected DOMAIN=CONCURRENCY[/RATE]")
            })?;
            let limit =
                DomainLimit::parse(limit).map_err(|e| anyhow::anyhow!("--domain-limit {e}"))?;
            domains.insert(domain.trim().to_ascii_lowercase(), limit);
        }
        Ok(ThrottleSettings {
            global_per_second: self.rate,
            domains,
        })
    }
}

/// `name=url` or a bare URL (named `relay1`, `relay2`, … by position).
fn named_relay(index: usize, text: &str) -> anyhow::Result<(String, SmtpUrl)> {
    let (name, url) = match text.split_once('=') {
        Some((name, url)) if url.starts_with("smtp") && !name.contains("://") => {
            (name.trim().to_string(), url)
        }
        _ => (format!("relay{}", index + 1), text),
    };
    Ok((name, SmtpUrl::parse(url.trim())?))
}

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Delivery jobs a campaign start enqueues.
    #[arg(long, default_value_t = 2)]
    pub slots: usize,
    /// Deliveries claimed per round. Each slot claims its next batch while sending
    /// the current one, so a crash leaves at most 2 × slots × batch-size `unknown`.
    #[arg(long, default_value_t = 100)]
    pub batch_size: i64,
    /// Seconds a claim lasts unless renewed; a running worker renews its claims every
    /// third of this, so only after a crash do its deliveries become `unknown`.
    #[arg(long, default_value_t = 300)]
    pub lease_seconds: u64,
    /// The time zone of recipients who have none (an IANA name).
    #[arg(long, default_value = "UTC", value_parser = crate::schedule::parse_zone)]
    pub default_timezone: chrono_tz::Tz,
    /// Marketing messages wait while it is this time in the recipient's zone
    /// (`21:00-08:00`); campaigns may set their own or `off`.
    #[arg(long, value_parser = |t: &str| t.parse::<QuietHours>())]
    pub quiet_hours: Option<QuietHours>,
    /// At most N marketing messages per recipient in a rolling window, over every
    /// campaign (`3/7d`, `2/24h`).
    #[arg(long, value_parser = |t: &str| t.parse::<FrequencyCap>())]
    pub frequency_cap: Option<FrequencyCap>,
    /// Count only messages of campaigns with the same topic.
    #[arg(long, requires = "frequency_cap")]
    pub cap_per_topic: bool,
    /// What becomes of a message over the cap.
    #[arg(long, value_enum, default_value = "skip", requires = "frequency_cap")]
    pub when_capped: WhenCapped,
}

impl WorkerArgs {
    /// These arguments as dispatch settings (`mailcast worker` and `mailcast run`).
    pub fn apply(&self, settings: &mut DispatchSettings) {
        settings.slots = self.slots;
        settings.batch_size = self.batch_size;
        settings.lease = std::time::Duration::from_secs(self.lease_seconds.max(1));
        settings.default_zone = self.default_timezone;
        settings.quiet_hours = self.quiet_hours;
        settings.frequency_cap = self.frequency_cap.map(|cap| FrequencyCap {
            per_topic: self.cap_per_topic,
            when_capped: self.when_capped,
            ..cap
        });
    }
}

/// Builds the dispatcher a worker process runs with; `configure` adjusts the
/// settings first.
pub async fn dispatcher(
    store: &Store,
    transport: &TransportArgs,
    configure: impl FnOnce(&mut DispatchSettings),
) -> anyhow::Result<Arc<Dispatcher>> {
    let config = transport.transport_config()?;
    let dkim = match (
        &transport.dkim_key,
        &transport.dkim_selector,
        &transport.dkim_domain,
    ) {
        (Some(key), Some(selector), Some(domain)) => Some(
            crate::render::DkimSettings::from_key_file(domain, selector, key)
                .with_context(|| format!("DKIM key {}", key.display()))?,
        ),
        _ => None,
    };
    let transport_impl = Transport::new(&config, transport.concurrency)
        .await?
        .with_throttle(transport.throttle()?);
    let keyring = KeyRing::load(store).await.context("link signing keys")?;
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        transport.public.base_url.clone(),
        keyring,
    );
    settings.dkim = dkim;
    settings.return_path = transport.return_path.return_path()?;
    configure(&mut settings);
    Ok(Dispatcher::new(store.clone(), transport_impl, settings))
}

pub async fn run(store: &Store, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let dispatcher = dispatcher(store, &args.transport, |settings| args.apply(settings)).await?;
    let stop = crate::shutdown::shutdown_signal();
    report_unreachable_relays(&args.transport).await?;
    tracing::info!(
        worker = %dispatcher.settings.worker_name,
        transport = %dispatcher.transport.describe(),
        "worker started; Ctrl-C or SIGTERM stops it"
    );
    crate::dispatch::run_worker(dispatcher, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// One error line when no relay can be reached; the worker runs on and retries.
pub(super) async fn report_unreachable_relays(transport: &TransportArgs) -> anyhow::Result<()> {
    if let Err(unreachable) = reach_relays(&transport.transport_config()?).await {
        tracing::error!("{unreachable}; the worker keeps retrying");
    }
    Ok(())
}

/// Tries one connection to each relay: a relay that cannot be reached would otherwise
/// show only as deliveries deferred one by one. Err names every relay tried.
pub(super) async fn reach_relays(config: &TransportConfig) -> Result<(), String> {
    let relays: Vec<&SmtpUrl> = match config {
        TransportConfig::Outbox(_) => return Ok(()),
        TransportConfig::Smtp(url) => vec![url],
        TransportConfig::Relays(relays) => relays.iter().map(|(_, url)| url).collect(),
    };
    let mut failures = Vec::new();
    for relay in relays {
        let address = (relay.host.as_str(), relay.port);
        let connect = tokio::net::TcpStream::connect(address);
        let url = crate::store::redact_url(&relay.url);
        match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => failures.push(format!("{url}: {e}")),
            Err(_) => failures.push(format!("{url}: no answer within 5s")),
        }
    }
    Err(format!(
        "cannot reach the SMTP relay ({}); is it running?",
        failures.join("; ")
    ))
}
