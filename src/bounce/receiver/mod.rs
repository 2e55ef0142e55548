//! The inbound SMTP receiver for the bounce domain: `mailcast bounces receive` and,
//! when configured, inside `mailcast run`. Each message is committed to the store
//! before 250 answers its DATA, then classified and applied; what a stopped process
//! left unprocessed is processed when the receiver starts.

mod command;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{BounceSettings, ReturnPath};
use crate::store::{IncomingBounce, Store, StoreError};

/// How much the receiver takes.
#[derive(Debug, Clone)]
pub struct ReceiverLimits {
    /// Largest message accepted, in bytes (DSNs quote at most the original's headers
    /// or a part of it; Postfix returns up to 50,000 bytes of it).
    pub max_message_size: usize,
    /// Sessions at once; more are answered 421 and closed.
    pub max_connections: usize,
    /// How long a client may stay silent.
    pub command_timeout: Duration,
    /// The name the receiver greets with.
    pub hostname: String,
    /// How often stored bounces whose processing failed (the store was unreachable
    /// after the commit) are tried again.
    pub retry_interval: Duration,
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        ReceiverLimits {
            max_message_size: 1024 * 1024,
            max_connections: 32,
            command_timeout: Duration::from_secs(300),
            hostname: "localhost".to_string(),
            retry_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("cannot listen on {addr} for bounces: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the bounce receiver needs a bounce domain (--bounce-domain)")]
    NoDomain,
    #[error("cannot process stored bounces")]
    Store(#[from] StoreError),
}

/// What sessions share: the store, the bounce settings and the domain accepted.
pub(crate) struct Intake {
    store: Store,
    settings: BounceSettings,
    path: ReturnPath,
}

impl Intake {
    fn accepts(&self, address: &str) -> bool {
        self.path.is_bounce_domain(address)
    }

    fn domain(&self) -> &str {
        self.path.domain()
    }

    async fn store(&self, incoming: &IncomingBounce<'_>) -> Result<i64, StoreError> {
        let stored = super::store(&self.store, incoming).await?;
        Ok(stored.id)
    }

    /// Classifies and applies a stored bounce; a failure leaves it for the next start.
    async fn process(&self, id: i64) {
        if let Err(error) = super::process(&self.store, &self.settings, id).await {
            tracing::error!(%error, bounce = id, "bounce stored but not yet applied; it is applied when the receiver next starts");
        }
    }
}

/// Binds `addr` (a port of 0 picks a free one).
pub async fn bind_receiver(addr: &str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ReceiverError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Processes what is stored and unprocessed, then serves until `stop` completes.
pub async fn serve_receiver(
    listener: TcpListener,
    store: Store,
    settings: BounceSettings,
    limits: ReceiverLimits,
    stop: impl Future<Output = ()>,
) -> Result<(), ReceiverError> {
    let path = settings
        .return_path
        .clone()
        .ok_or(ReceiverError::NoDomain)?;
    let applied = super::process_unprocessed(&store, &settings).await?;
    if applied > 0 {
        tracing::info!(applied, "applied bounces stored before the last stop");
    }
    let intake = Arc::new(Intake {
        store,
        settings,
        path,
    });
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut sessions = tokio::task::JoinSet::new();
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
    let retries = tokio::spawn(retry_unprocessed(
        intake.clone(),
        limits.retry_interval,
        stop_seen.clone(),
    ));
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "bounce receiver: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while sessions.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            sessions.spawn(refuse_busy(socket));
            continue;
        };
        let (intake, limits, stop_seen) = (intake.clone(), limits.clone(), stop_seen.clone());
        sessions.spawn(async move {
            session(socket, peer, &intake, &limits, stop_seen).await;
            drop(slot);
        });
    }
    // Idle sessions end now; those in their DATA finish it: their senders are owed an
    // answer.
    let _ = stopping.send(true);
    while sessions.join_next().await.is_some() {}
    let _ = retries.await;
    Ok(())
}

async fn session(
    socket: TcpStream,
    peer: SocketAddr,
    intake: &Intake,
    limits: &ReceiverLimits,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let stream = BufReader::new(socket);
    let session = session::Session::new(stream, intake, limits, stopping);
    if let Err(end) = session.run().await {
        tracing::debug!(%peer, %end, "bounce receiver session ended");
    }
}

/// Applies, every `interval` until the receiver stops, what is stored and unprocessed.
async fn retry_unprocessed(
    intake: Arc<Intake>,
    interval: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = super::process_unprocessed(&intake.store, &intake.settings).await {
            tracing::warn!(%error, "cannot apply stored bounces yet; trying again later");
        }
    }
}

async fn refuse_busy(mut socket: TcpStream) {
    let _ = socket
        .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
        .await;
    let _ = socket.shutdown().await;
}
