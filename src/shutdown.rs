//! What stops a long-running command (`worker`, `serve`, `run`, `demo`): Ctrl-C, or
//! SIGTERM, which systemd, docker and Kubernetes send. Both stop the same graceful way.

/// Completes at the first SIGINT or SIGTERM this process receives after the call.
pub async fn shutdown_signal() {
    let name = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate() => "SIGTERM",
    };
    tracing::info!(signal = name, "stopping: finishing what is in flight");
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            terminate.recv().await;
        }
        Err(error) => {
            // Without the handler SIGTERM still ends the process, only not gracefully.
            tracing::warn!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
