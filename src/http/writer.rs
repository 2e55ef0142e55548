//! The batched event writer. Handlers hand events to a bounded queue (waiting when it
//! is full: under load requests slow down, events are never dropped); one task writes
//! them a batch at a time, one multi-row INSERT per batch, when the batch is full or
//! `max_delay` after its first event, whichever comes first. Shutting down closes the
//! queue and writes everything still in it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::verdict::{TimingRules, burst_reason};
use crate::store::{NewTrackingEvent, Store, StoreError, TrackingKind, Verdict};

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
            max_batch: crate::store::MAX_ROWS_PER_INSERT,
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
    task: tokio::task::JoinHandle<()>,
}

impl WriterHandle {
    /// Closes the queue, writes what it holds, and waits for that.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "event writer task failed");
        }
    }
}

pub(crate) fn spawn(
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
) -> (EventSender, WriterHandle) {
    let (tx, rx) = mpsc::channel(settings.capacity.max(1));
    let (stop, stopped) = oneshot::channel();
    let writer = Writer {
        store,
        settings,
        metrics,
    };
    let task = tokio::spawn(writer.run(rx, stopped));
    (EventSender { tx }, WriterHandle { stop, task })
}

struct Writer {
    store: Store,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<NewTrackingEvent>, mut stop: oneshot::Receiver<()>) {
        let mut stopping = false;
        loop {
            let first = tokio::select! {
                biased;
                event = rx.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                _ = &mut stop, if !stopping => {
                    // No new events from now on; the loop drains what is queued.
                    rx.close();
                    stopping = true;
                    continue;
                }
            };
            let batch = self.fill(first, &mut rx).await;
            self.write(batch, stopping).await;
        }
        tracing::debug!("event writer drained and stopped");
    }

    /// A batch starting with `first`: until it is full, the queue is closed, or
    /// `max_delay` has passed.
    async fn fill(
        &self,
        first: NewTrackingEvent,
        rx: &mut mpsc::Receiver<NewTrackingEvent>,
    ) -> Vec<NewTrackingEvent> {
        let max = self.settings.max_batch.max(1);
        let deadline = Instant::now() + self.settings.max_delay;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(event)) => batch.push(event),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        batch
    }

    /// Classifies and stores a batch, retrying on store errors: forever while
    /// running (the queue fills and handlers wait), for `shutdown_retry` when stopping.
    async fn write(&self, mut batch: Vec<NewTrackingEvent>, stopping: bool) {
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.try_write(&mut batch).await {
                Ok(()) => return,
                Err(error) => {
                    self.metrics.write_failed();
                    tracing::error!(%error, events = batch.len(), "cannot store tracking events; retrying");
                    if stopping && started.elapsed() > self.settings.shutdown_retry {
                        tracing::error!(
                            events = batch.len(),
                            "giving up on tracking events at shutdown"
                        );
                        return;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn try_write(&self, batch: &mut [NewTrackingEvent]) -> Result<(), StoreError> {
        let started = Instant::now();
        let revised = self.classify(batch).await?;
        let classified = started.elapsed();
        let burst = burst_reason(self.settings.timing.burst.as_secs() as i64);
        self.store.mark_machine(&revised, &burst).await?;
        self.store.insert_tracking_events(batch).await?;
        for event in batch.iter() {
            self.metrics.event_written(event.kind, event.verdict);
        }
        tracing::debug!(
            events = batch.len(),
            classify_ms = classified.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "batch stored"
        );
        Ok(())
    }

    /// Applies the timing rules; returns stored clicks to re-label as machine.
    async fn classify(&self, batch: &mut [NewTrackingEvent]) -> Result<Vec<i64>, StoreError> {
        let mut pairs: Vec<(i64, i64)> = batch
            .iter()
            .filter(|e| e.kind == TrackingKind::Click && e.verdict == Verdict::Human)
            .map(|e| (e.campaign_id, e.recipient_id))
            .collect();
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        pairs.sort_unstable();
        pairs.dedup();
        let timing = self.settings.timing;
        let sent_at = self.store.sent_times(&pairs).await?;
        timing.apply_send_delay(batch, &sent_at);
        let earliest = batch.iter().map(|e| e.occurred_at).min().unwrap_or(0);
        let since = earliest - timing.burst.as_secs() as i64;
        let stored = self.store.clicks_since(&pairs, since).await?;
        Ok(timing.apply_bursts(batch, &stored))
    }
}
