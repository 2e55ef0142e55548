//! `mailcast serve` (the HTTP side), `mailcast run` (worker and HTTP side in one
//! process) and `mailcast api-key` (keys for the CRM API).

use super::BaseUrlArg;
use std::process::ExitCode;

use anyhow::Context;

use super::WorkerArgs;
use crate::http::{
    HttpLimits, HttpSettings, bind, generate_api_key, hash_api_key, serve as serve_http,
};
use crate::links::KeyRing;
use crate::shutdown::shutdown_signal;
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Address and port to listen on.
    #[arg(long, env = "MAILCAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Take client addresses from X-Forwarded-For: only behind a proxy that sets it.
    #[arg(long, env = "MAILCAST_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Largest API request body, in bytes (batch imports go through the API).
    #[arg(long, env = "MAILCAST_HTTP_BODY_LIMIT", default_value_t = HttpLimits::default().api_body_limit)]
    pub body_limit: usize,
    /// Largest request body on the tracking, unsubscribe and operator routes, in bytes.
    #[arg(long, env = "MAILCAST_HTTP_LINK_BODY_LIMIT", default_value_t = HttpLimits::default().link_body_limit)]
    pub link_body_limit: usize,
    /// Seconds a request's header may take to arrive, from its first byte.
    #[arg(long, env = "MAILCAST_HTTP_HEADER_TIMEOUT", default_value_t = HttpLimits::default().header_timeout.as_secs_f64())]
    pub header_timeout: f64,
    /// Seconds a request's body may take to arrive, from the end of its header.
    #[arg(long, env = "MAILCAST_HTTP_BODY_TIMEOUT", default_value_t = HttpLimits::default().body_timeout.as_secs_f64())]
    pub body_timeout: f64,
    /// Seconds a connection may wait for its next request, or stall a response, before
    /// it is closed.
    #[arg(long, env = "MAILCAST_HTTP_IDLE_TIMEOUT", default_value_t = HttpLimits::default().idle_timeout.as_secs_f64())]
    pub idle_timeout: f64,
    /// Connections open at once; more are answered 503 and closed.
    #[arg(long, env = "MAILCAST_HTTP_MAX_CONNECTIONS", default_value_t = HttpLimits::default().max_connections)]
    pub max_connections: usize,
    #[command(flatten)]
    pub webhooks: super::webhooks::WebhookArgs,
}

impl HttpArgs {
    pub fn limits(&self) -> anyhow::Result<HttpLimits> {
        let seconds = |name: &str, value: f64| {
            anyhow::ensure!(
                value.is_finite() && value > 0.0 && value <= 86_400.0,
                "--{name} must be above 0 and at most 86400 seconds, not {value}"
            );
            Ok(std::time::Duration::from_secs_f64(value))
        };
        anyhow::ensure!(
            self.max_connections > 0,
            "--max-connections must be at least 1"
        );
        Ok(HttpLimits {
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            body_timeout: seconds("body-timeout", self.body_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            max_connections: self.max_connections,
            link_body_limit: self.link_body_limit,
            api_body_limit: self.body_limit,
        })
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub public: BaseUrlArg,
    // What webhook bounces and complaints do (`run` takes these with its receiver's).
    #[command(flatten)]
    pub effects: super::bounces::BounceEffectArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Also receive bounces over SMTP on this address (needs --bounce-domain).
    #[arg(long, env = "MAILCAST_BOUNCE_LISTEN")]
    pub bounce_listen: Option<String>,
    #[command(flatten)]
    pub receiver: super::bounces::ReceiverArgs,
    /// Also read bounces from this mailbox (imaps://… or pop3s://…, as `bounces poll
    /// --mailbox` takes it).
    #[arg(long, env = "MAILCAST_BOUNCE_MAILBOX", hide_env_values = true)]
    pub bounce_mailbox: Option<String>,
    #[command(flatten)]
    pub mailbox: super::bounces::MailboxArgs,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for the CRM API and print it (once: only its hash is stored).
    Create { name: String },
    /// Names and creation times of the keys.
    List,
    /// Delete a key: requests with it get 401 from now on.
    Revoke { name: String },
}

fn settings(
    base_url: &str,
    http: &HttpArgs,
    keyring: KeyRing,
    bounces: crate::bounce::BounceSettings,
) -> anyhow::Result<HttpSettings> {
    let mut settings = HttpSettings::new(base_url.to_string(), keyring);
    settings.trust_forwarded_for = http.trust_forwarded_for;
    settings.limits = http.limits()?;
    settings.webhooks = http.webhooks.settings(bounces)?;
    Ok(settings)
}

pub async fn serve(store: &Store, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let keyring = KeyRing::load(store).await.context("link signing keys")?;
    let bounces = args.effects.settings(None, keyring.clone())?;
    let settings = settings(&args.public.base_url, &args.http, keyring, bounces)?;
    let listener = bind(&args.http.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "HTTP server listening; Ctrl-C or SIGTERM stops it");
    serve_http(listener, store.clone(), settings, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The worker and the HTTP side in one process; a stop signal stops both.
pub async fn run(store: &Store, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let worker = &args.worker;
    // The same settings as `mailcast worker` takes from these arguments.
    let dispatcher =
        super::worker::dispatcher(store, &worker.transport, |settings| worker.apply(settings))
            .await?;
    // The worker's ring: loaded once, so its warnings are said once.
    let keyring = dispatcher.settings.keyring.clone();
    let effects = &args.receiver.effects;
    let bounces = effects.settings(dispatcher.settings.return_path.clone(), keyring.clone())?;
    let settings = settings(
        &worker.transport.public.base_url,
        &args.http,
        keyring,
        bounces,
    )?;
    let listener = bind(&args.http.listen).await?;
    let receiver = bounce_receiver(args, &dispatcher).await?;
    let poller = bounce_poller(args, &dispatcher)?;
    let (stop_worker, stop_http, stop_bounces, stop_mailbox) = (
        shutdown_signal(),
        shutdown_signal(),
        shutdown_signal(),
        shutdown_signal(),
    );
    super::worker::report_unreachable_relays(&worker.transport).await?;
    tracing::info!(
        worker = %dispatcher.settings.worker_name,
        transport = %dispatcher.transport.describe(),
        listen = %listener.local_addr()?,
        "worker and HTTP server started; Ctrl-C or SIGTERM stops both"
    );
    let bounces = async {
        match receiver {
            Some(receiver) => receiver.serve(store, stop_bounces).await,
            None => Ok(()),
        }
    };
    let polled = async {
        if let Some(poller) = &poller {
            poller.run(store, stop_mailbox).await;
        }
    };
    // All listen for the signal from the start, so all stop at once.
    let worker = crate::dispatch::run_worker(dispatcher, stop_worker);
    let served = serve_http(listener, store.clone(), settings, stop_http);
    let (stopped, served, received, ()) = tokio::join!(worker, served, bounces, polled);
    served?;
    stopped?;
    received?;
    Ok(ExitCode::SUCCESS)
}

/// The bounce receiver of `run`, bound when `--bounce-listen` asks for one.
async fn bounce_receiver(
    args: &RunArgs,
    dispatcher: &crate::dispatch::Dispatcher,
) -> anyhow::Result<Option<super::bounces::BounceReceiver>> {
    let Some(listen) = &args.bounce_listen else {
        return Ok(None);
    };
    let settings = &dispatcher.settings;
    let path = settings.return_path.clone();
    let keys = settings.keyring.clone();
    let receiver = super::bounces::BounceReceiver::bind(listen, path, &args.receiver, keys).await?;
    Ok(Some(receiver))
}

/// The bounce mailbox poller of `run`, when `--bounce-mailbox` names a mailbox.
fn bounce_poller(
    args: &RunArgs,
    dispatcher: &crate::dispatch::Dispatcher,
) -> anyhow::Result<Option<super::bounces::BouncePoller>> {
    let Some(url) = &args.bounce_mailbox else {
        return Ok(None);
    };
    let settings = &dispatcher.settings;
    let poller = super::bounces::BouncePoller::new(
        url,
        &args.mailbox,
        &args.receiver.effects,
        settings.return_path.clone(),
        settings.keyring.clone(),
    )?;
    Ok(Some(poller))
}

pub async fn api_key(store: &Store, command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create { name } => {
            let key = generate_api_key();
            store.create_api_key(&name, &hash_api_key(&key)).await?;
            println!("{key}");
            eprintln!(
                "API key '{name}' created. It is shown only now: store it in your CRM's secrets."
            );
        }
        ApiKeyCommand::List => {
            for key in store.api_keys().await? {
                println!(
                    "{}\tcreated {}",
                    key.name,
                    crate::time::format_timestamp(key.created_at)
                );
            }
        }
        ApiKeyCommand::Revoke { name } => {
            if !store.revoke_api_key(&name).await? {
                anyhow::bail!("no API key named '{name}'");
            }
            println!("API key '{name}' revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
