//! The batched event writer. Handlers hand events to a bounded queue (waiting when it
//! is full: under load requests slow down, events are never dropped). On a thread and
//! runtime of its own (see [`spawn`]), two futures work on it as a pipeline, so the
//! store is busy with one batch while the next is formed:
//!
//! 1. the collector takes a batch off the queue (when it is full or `max_delay` after
//!    its first event) and looks up the send times its clicks need, keeping those
//!    known in memory;
//! 2. the storer applies the timing rules, using the clicks of the last seconds that it
//!    keeps in memory (no query), and stores the batch (one INSERT on PostgreSQL, one
//!    per 1,000 rows on SQLite).
//!
//! Shutting down closes the queue and writes everything still in it.
//!
//! The burst rule sees the clicks this process stored: with several HTTP processes
//! behind one balancer, a scanner's clicks on one message split across processes are
//! not seen together.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::recent::{RecentClicks, SentTimes};
use super::verdict::{TimingRules, burst_reason};
use crate::store::{NewTrackingEvent, Store, StoreError, TrackingKind, Verdict};

/// How long the collector sleeps between looks at a queue that has not filled a batch.
const FILL_TICK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Events the queue holds before handlers wait for room.
    pub capacity: usize,
    /// Events per INSERT.
    pub max_batch: usize,
    /// How long the first event of a batch waits for company.
    pub max_delay: Duration,
    /// How long a failing batch is retried during shutdown before it is given up.
    pub shutdown_retry: Duration,
    pub timing: TimingRules,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            capacity: 65_536,
            max_batch: 4 * crate::store::MAX_ROWS_PER_INSERT,
            max_delay: Duration::from_millis(100),
            shutdown_retry: Duration::from_secs(30),
            timing: TimingRules::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the event writer has stopped")]
pub struct WriterClosed;

/// The handlers' end of the queue.
#[derive(Clone)]
pub(crate) struct EventSender {
    tx: mpsc::Sender<NewTrackingEvent>,
}

impl EventSender {
    /// Queues an event, waiting while the queue is full.
    pub async fn record(&self, event: NewTrackingEvent) -> Result<(), WriterClosed> {
        self.tx.send(event).await.map_err(|_| WriterClosed)
    }

    /// Events waiting to be written.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Stops the writer after draining the queue.
pub(crate) struct WriterHandle {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriterHandle {
    /// Closes the queue, writes what it holds, and waits for that.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!("event writer thread panicked"),
            Err(error) => tracing::error!(%error, "cannot wait for the event writer"),
        }
    }
}

/// Starts the writer on a thread of its own with its own runtime and, on PostgreSQL,
/// its own connections, so that a batch's round trips do not wait behind the request
/// handlers ready on the server's runtime.
pub(crate) fn spawn(
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
) -> (EventSender, WriterHandle) {
    let (tx, rx) = mpsc::channel(settings.capacity.max(1));
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("event-writer".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            runtime.block_on(run(store, settings, metrics, rx, stopped));
        })
        .expect("the event writer thread starts");
    (EventSender { tx }, WriterHandle { stop, thread })
}

/// Runs collector and storer until the queue is drained.
async fn run(
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    rx: mpsc::Receiver<NewTrackingEvent>,
    stopped: oneshot::Receiver<()>,
) {
    let store = match store.with_own_pool(2).await {
        Ok(own) => own,
        Err(error) => {
            tracing::warn!(%error, "event writer shares the server's connections");
            store
        }
    };
    // One batch waits while the storer writes the one before.
    let (batches, formed) = mpsc::channel(1);
    let stopping = Arc::new(AtomicBool::new(false));
    let collector = Collector {
        store: store.clone(),
        settings: settings.clone(),
        metrics: metrics.clone(),
        stopping: stopping.clone(),
        sent: SentTimes::default(),
    };
    let storer = Storer {
        recent: RecentClicks::new(settings.timing.burst),
        store,
        settings,
        metrics,
        stopping,
    };
    tokio::join!(collector.run(rx, stopped, batches), storer.run(formed));
}

/// Events to store together, with the send times of their clicks' messages.
struct Batch {
    events: Vec<NewTrackingEvent>,
    sent_at: HashMap<(i64, i64), i64>,
}

/// Retries a failing store operation with a growing pause: forever while running (the
/// queue fills and handlers wait), for `shutdown_retry` once stopping.
struct Retry {
    give_up_after: Duration,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
    started: Instant,
    pause: Duration,
}

impl Retry {
    fn new(settings: &WriterSettings, metrics: &Arc<Metrics>, stopping: &Arc<AtomicBool>) -> Self {
        Retry {
            give_up_after: settings.shutdown_retry,
            metrics: metrics.clone(),
            stopping: stopping.clone(),
            started: Instant::now(),
            pause: Duration::from_millis(100),
        }
    }

    /// Logs the failure; false when it is time to give up, else true after a pause.
    async fn again(&mut self, error: &StoreError, what: &str, events: usize) -> bool {
        self.metrics.write_failed();
        tracing::error!(%error, events, "cannot {what}; retrying");
        let stopping = self.stopping.load(Ordering::Relaxed);
        if stopping && self.started.elapsed() > self.give_up_after {
            tracing::error!(events, "giving up on tracking events at shutdown ({what})");
            return false;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(5));
        true
    }
}

/// Forms batches and looks up their send times.
struct Collector {
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
    sent: SentTimes,
}

impl Collector {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<NewTrackingEvent>,
        mut stop: oneshot::Receiver<()>,
        batches: mpsc::Sender<Batch>,
    ) {
        loop {
            let first = tokio::select! {
                biased;
                event = rx.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                _ = &mut stop, if !self.stopping.load(Ordering::Relaxed) => {
                    // No new events from now on; the loop drains what is queued.
                    rx.close();
                    self.stopping.store(true, Ordering::Relaxed);
                    continue;
                }
            };
            let (max, max_delay) = (self.settings.max_batch, self.settings.max_delay);
            let events = fill(first, &mut rx, max, max_delay).await;
            let sent_at = self.sent_times(&events).await;
            if batches.send(Batch { events, sent_at }).await.is_err() {
                tracing::error!("event storer stopped; tracking events lost");
                break;
            }
        }
        tracing::debug!("event collector drained and stopped");
    }

    /// The send times of the messages of the batch's human clicks: from memory, the
    /// rest in one query. Given up on at shutdown, the batch goes on without them.
    async fn sent_times(&mut self, events: &[NewTrackingEvent]) -> HashMap<(i64, i64), i64> {
        let mut pairs: Vec<(i64, i64)> = events
            .iter()
            .filter(|e| e.kind == TrackingKind::Click && e.verdict == Verdict::Human)
            .map(|e| (e.campaign_id, e.recipient_id))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let (mut known, unknown) = self.sent.split(&pairs);
        if unknown.is_empty() {
            return known;
        }
        let mut retry = Retry::new(&self.settings, &self.metrics, &self.stopping);
        loop {
            match self.store.sent_times(&unknown).await {
                Ok(found) => {
                    self.sent.remember(&found);
                    known.extend(found);
                    return known;
                }
                Err(error) => {
                    if !retry
                        .again(&error, "look up send times", events.len())
                        .await
                    {
                        return known;
                    }
                }
            }
        }
    }
}

/// A batch starting with `first`: until it holds `max` items, the queue is closed and
/// empty, or `max_delay` has passed. Between looks at the queue it sleeps for
/// [`FILL_TICK`] instead of waiting on it: a waiting receiver is woken by every event,
/// a cross-thread wake-up per click.
async fn fill<T>(first: T, rx: &mut mpsc::Receiver<T>, max: usize, max_delay: Duration) -> Vec<T> {
    let max = max.max(1);
    let deadline = Instant::now() + max_delay;
    let mut batch = Vec::with_capacity(max.min(1024));
    batch.push(first);
    loop {
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(mpsc::error::TryRecvError::Disconnected) => return batch,
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        if batch.len() >= max || now >= deadline {
            return batch;
        }
        tokio::time::sleep_until(deadline.min(now + FILL_TICK)).await;
    }
}

/// Classifies and stores batches, one at a time, in the order they were formed.
struct Storer {
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
    recent: RecentClicks,
}

impl Storer {
    async fn run(mut self, mut formed: mpsc::Receiver<Batch>) {
        while let Some(batch) = formed.recv().await {
            self.write(batch).await;
        }
        tracing::debug!("event storer stopped");
    }

    async fn write(&mut self, mut batch: Batch) {
        let mut retry = Retry::new(&self.settings, &self.metrics, &self.stopping);
        loop {
            match self.try_write(&mut batch).await {
                Ok(()) => return,
                Err(error) => {
                    let events = batch.events.len();
                    if !retry.again(&error, "store tracking events", events).await {
                        return;
                    }
                }
            }
        }
    }

    async fn try_write(&mut self, batch: &mut Batch) -> Result<(), StoreError> {
        let started = Instant::now();
        let timing = self.settings.timing;
        timing.apply_send_delay(&mut batch.events, &batch.sent_at);
        let earlier = self.recent.of_messages(&batch.events);
        let revised = timing.apply_bursts(&mut batch.events, &earlier);
        let classified = started.elapsed();
        let burst = burst_reason(timing.burst.as_secs() as i64);
        self.store.mark_machine(&revised, &burst).await?;
        self.store.insert_tracking_events(&batch.events).await?;
        self.recent.revised(&revised);
        self.recent.stored(&batch.events);
        for event in &batch.events {
            self.metrics.event_written(event.kind, event.verdict);
        }
        tracing::debug!(
            events = batch.events.len(),
            classify_us = classified.as_micros() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "batch stored"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_batch_stops_at_its_size_and_leaves_the_rest_queued() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 1..=5 {
            tx.send(i).await.unwrap();
        }
        let batch = fill(0, &mut rx, 3, Duration::from_secs(1)).await;
        assert_eq!(batch, vec![0, 1, 2]);
        assert_eq!(rx.try_recv().unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_batch_waits_for_company_until_its_delay() {
        let (tx, mut rx) = mpsc::channel(16);
        let started = Instant::now();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(1).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send(2).await.unwrap();
        });
        let batch = fill(0, &mut rx, 10, Duration::from_millis(100)).await;
        assert_eq!(batch, vec![0, 1]);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(
            waited < Duration::from_millis(100) + FILL_TICK,
            "{waited:?}"
        );
        late.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_queue_ends_the_batch_at_once() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        drop(tx);
        let started = Instant::now();
        let batch = fill(0, &mut rx, 10, Duration::from_secs(60)).await;
        assert_eq!(batch, vec![0, 1]);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
