//! A live worker keeps its leases. Every third of the lease, one statement extends the
//! lease of every delivery this process's jobs hold (claimed, not yet recorded or handed
//! back), however many there are and however slow the relay sending them. Only a
//! process that is gone (killed, frozen, or cut off from the database for a whole lease)
//! lets its leases run out, and so does a job that ended on an error with deliveries it
//! could not record: those become `unknown` as before.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::Dispatcher;

/// Renews the process's leases until dropped.
pub(super) struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    pub(super) fn start(dispatcher: Arc<Dispatcher>) -> Heartbeat {
        let every = renewal_interval(dispatcher.settings.lease);
        let task = tokio::spawn(every_interval(every, async move || {
            renew(&dispatcher).await;
        }));
        Heartbeat { task }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Three renewals per lease: one late or failed renewal does not let a lease run out.
fn renewal_interval(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(100))
}

/// Runs `beat` at once and then every `every`; a slow beat delays the next one
/// instead of bunching them up.
async fn every_interval(every: Duration, mut beat: impl AsyncFnMut()) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        beat().await;
    }
}

async fn renew(dispatcher: &Dispatcher) {
    let held = dispatcher.held_ids();
    if held.is_empty() {
        return;
    }
    let settings = &dispatcher.settings;
    let lease_seconds = settings.lease.as_secs() as i64;
    match dispatcher
        .store
        .renew_leases(&settings.worker_name, &held, lease_seconds)
        .await
    {
        Ok(renewed) => tracing::trace!(renewed, "leases renewed"),
        Err(error) => tracing::warn!(
            %error,
            "cannot renew leases: if this lasts a whole lease, deliveries in flight are reported unknown"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn beats_at_once_then_three_times_per_lease() {
        let beats = Arc::new(AtomicUsize::new(0));
        let counted = beats.clone();
        let every = renewal_interval(Duration::from_secs(6));
        let task = tokio::spawn(every_interval(every, async move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(beats.load(Ordering::SeqCst), 1, "at once");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(beats.load(Ordering::SeqCst), 4, "then every 2 s");
        task.abort();
    }

    #[test]
    fn renews_three_times_per_lease_but_not_in_a_busy_loop() {
        assert_eq!(
            renewal_interval(Duration::from_secs(300)),
            Duration::from_secs(100)
        );
        assert_eq!(
            renewal_interval(Duration::from_millis(30)),
            Duration::from_millis(100)
        );
    }
}
