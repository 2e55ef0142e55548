//! What stops a long-running command (`worker`, `serve`, `run`, `demo`): Ctrl-C, or
//! SIGTERM, which systemd, docker and Kubernetes send. Both stop the same graceful way.

use std::future::Future;

/// Completes at the first SIGINT or SIGTERM this process receives after the call. The
/// handlers are installed by the call itself, not when the future is first polled: a
/// signal that arrives in between would otherwise end the process at once.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let name = tokio::select! {
            _ = received(interrupt, "SIGINT") => "SIGINT",
            _ = received(terminate, "SIGTERM") => "SIGTERM",
        };
        tracing::info!(signal = name, "stopping: finishing what is in flight");
    }
}

#[cfg(unix)]
async fn received(listener: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match listener {
        Ok(mut listener) => {
            listener.recv().await;
        }
        Err(error) => {
            // Without the handler the signal still ends the process, only not gracefully.
            tracing::warn!(%error, "cannot listen for {name}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "Ctrl-C", "stopping: finishing what is in flight");
    }
}
