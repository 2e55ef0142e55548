//! `mailcast serve` (the HTTP side), `mailcast run` (worker and HTTP side in one
//! process) and `mailcast api-key` (keys for the CRM API).

use super::BaseUrlArg;
use std::process::ExitCode;

use anyhow::Context;

use super::WorkerArgs;
use crate::http::{HttpSettings, bind, generate_api_key, hash_api_key, serve as serve_http};
use crate::links::KeyRing;
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Address and port to listen on.
    #[arg(long, env = "MAILCAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Take client addresses from X-Forwarded-For: only behind a proxy that sets it.
    #[arg(long, env = "MAILCAST_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Largest API request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub body_limit: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub public: BaseUrlArg,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub http: HttpArgs,
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

fn settings(base_url: &str, http: &HttpArgs) -> anyhow::Result<HttpSettings> {
    let keyring = KeyRing::from_env_or_dev().context("link signing keys")?;
    let mut settings = HttpSettings::new(base_url.to_string(), keyring);
    settings.trust_forwarded_for = http.trust_forwarded_for;
    settings.body_limit = http.body_limit;
    Ok(settings)
}

/// Ctrl-C or SIGTERM (what service managers send).
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("stopping: finishing requests in flight and storing queued events");
}

pub async fn serve(store: &Store, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.public.base_url, &args.http)?;
    let listener = bind(&args.http.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "HTTP server listening; Ctrl-C stops it");
    serve_http(listener, store.clone(), settings, stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The worker and the HTTP side in one process; a stop signal stops both.
pub async fn run(store: &Store, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let worker = &args.worker;
    // The same settings as `mailcast worker` takes from these arguments.
    let dispatcher = super::worker::dispatcher(store, &worker.transport, |settings| {
        settings.slots = worker.slots;
        settings.batch_size = worker.batch_size;
        settings.lease = std::time::Duration::from_secs(worker.lease_seconds.max(1));
    })
    .await?;
    let settings = settings(&worker.transport.public.base_url, &args.http)?;
    let listener = bind(&args.http.listen).await?;
    tracing::info!(
        worker = %dispatcher.settings.worker_name,
        transport = %dispatcher.transport.describe(),
        listen = %listener.local_addr()?,
        "worker and HTTP server started; Ctrl-C stops both"
    );
    let worker = crate::dispatch::spawn_worker(dispatcher);
    let served = serve_http(listener, store.clone(), settings, stop_signal()).await;
    let stopped = worker.shutdown().await;
    served?;
    stopped?;
    Ok(ExitCode::SUCCESS)
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
