//! Building the router, serving it, and stopping gracefully: stop accepting, let
//! requests in flight finish, then drain the event writer, so that every request that
//! got an answer has its event stored.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::limits::{BodyRule, HttpLimits, with_body_rule};
use super::metrics::Metrics;
use super::state::AppState;
use super::webhooks::{self, WebhookSettings};
use super::writer::{self, WriterSettings};
use super::{api, app, connection, observe, ops, tracking, unsubscribe, view};
use crate::links::KeyRing;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Public base URL of this server, for the links in "view online" pages.
    pub base_url: String,
    /// Verifies `/o`, `/c`, `/u` and `/v` tokens (every listed key).
    pub keyring: KeyRing,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Timeouts, the connection cap and body limits.
    pub limits: HttpLimits,
    pub writer: WriterSettings,
    /// When opens and clicks happen (the system clock; tests move a manual one).
    pub clock: crate::time::Clock,
    /// Which providers' bounce and complaint webhooks are served (none by default).
    pub webhooks: WebhookSettings,
}

impl HttpSettings {
    pub fn new(base_url: String, keyring: KeyRing) -> HttpSettings {
        let webhooks = WebhookSettings::none(keyring.clone());
        HttpSettings {
            base_url,
            keyring,
            trust_forwarded_for: false,
            limits: HttpLimits::default(),
            writer: WriterSettings::default(),
            clock: crate::time::Clock::system(),
            webhooks,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start the HTTP server: {0}")]
    Setup(String),
    #[error(
        "refusing to serve on {addr} with the public development link key in \
         MAILCAST_LINK_KEYS: anyone could forge tracking and unsubscribe links; listen on a \
         loopback address, or set keys of your own (or unset MAILCAST_LINK_KEYS to use a \
         key generated for this database)"
    )]
    DevelopmentKey { addr: SocketAddr },
}

/// Binds `addr` (`127.0.0.1:8080`, `0.0.0.0:80`, port 0 for any free port).
pub async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves until `shutdown` completes, then stops gracefully.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    if settings.keyring.contains_development_key() && !addr.ip().is_loopback() {
        return Err(ServeError::DevelopmentKey { addr });
    }
    let metrics = Arc::new(Metrics::default());
    let (events, writer) = writer::spawn(store.clone(), settings.writer.clone(), metrics.clone());
    let limits = settings.limits.clone();
    let app = match AppState::new(store, settings, events, metrics) {
        Ok(state) => {
            warm_preview_model(&state).await;
            router(state)
        }
        Err(error) => {
            writer.shutdown().await;
            return Err(ServeError::Setup(error.to_string()));
        }
    };
    // `shutdown` is the hook for stopping (Ctrl-C, SIGTERM, a test's oneshot): once it
    // completes no connection is accepted and each open one finishes its request.
    connection::serve(listener, app, limits, shutdown).await;
    // Every connection is closed and every handler has returned: what they queued is
    // all there will be.
    writer.shutdown().await;
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// Where the dashboard has users, the template preview's recommendation model is built
/// at start, in the background, so that no one's first preview waits for it.
async fn warm_preview_model(state: &AppState) {
    match state.store.users().await {
        Ok(users) if !users.is_empty() => state.refresh_preview_model(crate::time::now()),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the dashboard's users"),
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let limits = &state.settings.limits;
    let links = Router::new()
        .merge(tracking::router())
        .merge(view::router())
        .merge(unsubscribe::router())
        .merge(ops::router());
    let link_rule = BodyRule {
        limit: limits.link_body_limit,
        timeout: limits.body_timeout,
    };
    let api_rule = BodyRule {
        limit: limits.api_body_limit,
        timeout: limits.body_timeout,
    };
    Router::new()
        .merge(with_body_rule(links, link_rule))
        .merge(with_body_rule(app::router(state.clone()), api_rule))
        .merge(with_body_rule(api::router(state.clone()), api_rule))
        .merge(with_body_rule(webhooks::router(&state), api_rule))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// A server running in the background (tests, `mailcast run`).
pub struct HttpServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl HttpServer {
    pub async fn start(
        listener: TcpListener,
        store: Store,
        settings: HttpSettings,
    ) -> Result<HttpServer, ServeError> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(listener, store, settings, shutdown));
        Ok(HttpServer { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops gracefully and waits until every queued event is stored.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| ServeError::Setup(format!("server task failed: {e}")))?
    }
}
