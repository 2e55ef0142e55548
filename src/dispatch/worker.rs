//! The apalis monitor running both job kinds for one worker process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::*;

use super::heartbeat::Heartbeat;
use super::{BatchEnd, DeliverBatch, DispatchError, Dispatcher, StartCampaign};
use crate::store::JobStorage;

/// `{host}-{pid}-{random}`: a name no earlier or concurrent process has used.
pub fn unique_worker_name() -> String {
    let host = hostname();
    format!(
        "mailcast-{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A running worker; dropping it does not stop it, `shutdown` does.
pub struct WorkerHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl WorkerHandle {
    /// Stops taking jobs, lets running ones finish, and waits.
    pub async fn shutdown(self) -> Result<(), DispatchError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| DispatchError::Queue(format!("worker task failed: {e}")))?
    }
}

/// Starts the worker in the background.
pub fn spawn_worker(dispatcher: Arc<Dispatcher>) -> WorkerHandle {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_worker(dispatcher, async move {
        let _ = stopped.await;
    }));
    WorkerHandle { stop, task }
}

/// Running campaigns get delivery jobs again when a worker starts: jobs held by a
/// killed process may otherwise wait for apalis to notice it is gone. An extra job is
/// harmless; each one only claims what is left.
async fn recover_running_campaigns(dispatcher: &Dispatcher) -> Result<(), DispatchError> {
    let running = dispatcher
        .store
        .campaign_ids_with_status(crate::domain::CampaignStatus::Running)
        .await?;
    for campaign_id in running {
        tracing::info!(campaign_id, "resuming delivery of a running campaign");
        dispatcher
            .queue
            .push_deliver(DeliverBatch { campaign_id }, Duration::ZERO)
            .await?;
        let testing = dispatcher
            .store
            .campaign(campaign_id)
            .await?
            .settings
            .0
            .experiment;
        if testing.is_some_and(|e| e.picks_a_winner()) {
            // A judge job comes back by itself until its time; one more is harmless.
            dispatcher
                .queue
                .push_start(StartCampaign::judge(campaign_id), Duration::ZERO)
                .await?;
        }
    }
    Ok(())
}

/// A monitor running the start worker over `start` and the delivery workers over
/// `deliver` (two storages of one backend). A macro, not a function: apalis' worker
/// types differ by backend.
macro_rules! monitor_over {
    ($start:expr, $deliver:expr, $dispatcher:expr, $interval:expr, $name:expr) => {{
        let (start, deliver, interval) = ($start, $deliver, $interval);
        let (d1, d2) = ($dispatcher.clone(), $dispatcher.clone());
        let (n1, n2) = (format!("{}-start", $name), format!("{}-deliver", $name));
        Monitor::new()
            .register(move |_| {
                WorkerBuilder::new(n1.as_str())
                    .backend(
                        start
                            .clone()
                            .poll_with_strategy(SteadyInterval::new(interval)),
                    )
                    .data(d1.clone())
                    .build(handle_start)
            })
            .register(move |_| {
                WorkerBuilder::new(n2.as_str())
                    .backend(
                        deliver
                            .clone()
                            .poll_with_strategy(SteadyInterval::new(interval)),
                    )
                    .data(d2.clone())
                    .concurrency(d2.settings.slots.max(1))
                    .parallelize(tokio::spawn)
                    .build(handle_deliver)
            })
    }};
}

/// Runs the worker until `shutdown` completes, then stops gracefully: delivery jobs
/// claim nothing more, finish and record the batch they are sending, hand back the
/// one they claimed ahead, and queue themselves again for the next worker. Leases are
/// renewed until the last job has ended.
pub async fn run_worker(
    dispatcher: Arc<Dispatcher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DispatchError> {
    recover_running_campaigns(&dispatcher).await?;
    let _heartbeat = Heartbeat::start(dispatcher.clone());
    let _automations = dispatcher
        .settings
        .automations
        .then(|| crate::automation::EngineTask::start(dispatcher.clone()));
    let stopping = dispatcher.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.stop_delivering();
    };
    let interval = dispatcher.settings.poll_interval;
    let name = dispatcher.settings.worker_name.clone();
    let start = dispatcher.store.job_storage::<StartCampaign>();
    let deliver = dispatcher.store.job_storage_one_per_poll::<DeliverBatch>();
    let monitor = match (start, deliver) {
        (JobStorage::Sqlite(start), JobStorage::Sqlite(deliver)) => {
            monitor_over!(start, deliver, dispatcher, interval, name)
        }
        (JobStorage::Postgres(start), JobStorage::Postgres(deliver)) => {
            monitor_over!(start, deliver, dispatcher, interval, name)
        }
        _ => unreachable!("both queues live in the same store"),
    };
    monitor
        .shutdown_timeout(Duration::from_secs(30))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await
        .map_err(|e| DispatchError::Queue(format!("worker stopped with an error: {e}")))
}

/// Wakes a worker every `every` to look for jobs.
///
/// apalis' `IntervalStrategy` re-arms its timer without polling it: when a tick and the
/// end of a fetch reach the worker in the same poll (a fetch slower than the interval, a
/// busy runtime), nothing wakes the worker again until its heartbeat, 30 s later. This
/// one registers the next tick at once.
struct SteadyInterval {
    every: Duration,
    tick: Pin<Box<tokio::time::Sleep>>,
}

impl SteadyInterval {
    fn new(every: Duration) -> Self {
        SteadyInterval {
            every,
            tick: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl Clone for SteadyInterval {
    fn clone(&self) -> Self {
        SteadyInterval::new(self.every)
    }
}

impl PollStrategy for SteadyInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        if self.tick.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.tick
            .as_mut()
            .reset(tokio::time::Instant::now() + self.every);
        let _ = self.tick.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

async fn handle_start(
    job: StartCampaign,
    dispatcher: Data<Arc<Dispatcher>>,
) -> Result<(), BoxDynError> {
    if job.judge {
        let outcome = super::judge_experiment(&dispatcher, job.campaign_id).await?;
        tracing::info!(campaign_id = job.campaign_id, ?outcome, "judge job done");
        return Ok(());
    }
    let outcome = super::start_campaign(&dispatcher, job.campaign_id).await?;
    tracing::debug!(campaign_id = job.campaign_id, ?outcome, "start job done");
    Ok(())
}

async fn handle_deliver(
    job: DeliverBatch,
    dispatcher: Data<Arc<Dispatcher>>,
) -> Result<(), BoxDynError> {
    let end = super::deliver_campaign(&dispatcher, job.campaign_id).await?;
    let wait = match end {
        BatchEnd::RetryAt(at) => {
            let until = Duration::from_secs((at - dispatcher.settings.clock.now()).max(1) as u64);
            until.min(dispatcher.settings.recheck)
        }
        // A killed worker's leases only expire with time: look again then.
        BatchEnd::OthersInFlight => dispatcher.settings.lease,
        // Any worker still running (or this one, restarted) goes on at once.
        BatchEnd::ShuttingDown => Duration::ZERO,
        BatchEnd::Finished | BatchEnd::Stopped(_) => return Ok(()),
    };
    dispatcher.queue.push_deliver(job, wait).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_tick_arms_the_next_one_without_another_poll() {
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut interval = SteadyInterval::new(Duration::from_millis(20));
        let snapshot = PollSnapshot::default();

        assert!(interval.poll_drive(&mut cx, &snapshot).is_pending());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(interval.poll_drive(&mut cx, &snapshot).is_ready());
        let after_tick = wakes.0.load(Ordering::SeqCst);

        // Not polled again: the next tick must still wake the worker.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(wakes.0.load(Ordering::SeqCst) > after_tick);
    }
}
