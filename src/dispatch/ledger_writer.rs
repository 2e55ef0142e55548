//! The ledger as a worker process writes it while sending: outcomes, and the marks that
//! say a delivery was handed to SMTP, each mark committed before its message body goes
//! out. One writer task per process groups whatever the sending tasks asked for while
//! its last commit ran into the next commit, in the order they asked.
//!
//! At most `concurrency` deliveries are marked and without a recorded outcome at any
//! commit: a delivery's mark is asked for while it holds one of `concurrency` permits,
//! and the permit is let go only after its outcome was queued, so that outcome is in
//! the same or an earlier commit than any mark asked for later. A worker killed at any
//! moment leaves at most that many deliveries `unknown`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::transport::HandOver;
use crate::store::{DeliveryOutcome, Handing, Store};

/// Entries written in one commit at most.
const MOST_PER_COMMIT: usize = 1000;

/// Delivery id → the job holding its lease: the leases the heartbeat renews.
pub(super) type HeldLeases = Arc<Mutex<HashMap<i64, u64>>>;

/// The heartbeat stops renewing these leases: recorded, handed back, or lost.
pub(super) fn let_go(held: &HeldLeases, ids: impl IntoIterator<Item = i64>) {
    let mut held = held.lock().expect("held leases lock");
    for id in ids {
        held.remove(&id);
    }
}

pub(super) struct LedgerWriter {
    queue: mpsc::UnboundedSender<Entry>,
    handing: Arc<Semaphore>,
    /// The first write that failed since a job last looked.
    failure: Arc<Mutex<Option<String>>>,
}

enum Entry {
    Outcome(DeliveryOutcome),
    /// Mark as handed; answers whether this worker still held the delivery.
    Hand(Handing, oneshot::Sender<Result<bool, String>>),
    /// Answers once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

impl LedgerWriter {
    /// Starts the writer task; it ends when the writer is dropped.
    pub(super) fn start(
        store: Store,
        worker: String,
        held: HeldLeases,
        concurrency: usize,
    ) -> LedgerWriter {
        let (queue, entries) = mpsc::unbounded_channel();
        let failure = Arc::new(Mutex::new(None));
        let task = WriterTask {
            store,
            worker,
            held,
            failure: failure.clone(),
        };
        tokio::spawn(task.run(entries));
        LedgerWriter {
            queue,
            handing: Arc::new(Semaphore::new(concurrency.max(1))),
            failure,
        }
    }

    /// Queues an outcome; it is committed with the next group.
    pub(super) fn record(&self, outcome: DeliveryOutcome) {
        // The task lives as long as this writer: the send cannot fail.
        let _ = self.queue.send(Entry::Outcome(outcome));
    }

    /// Waits until everything queued so far is committed (or failed to be).
    pub(super) async fn flush(&self) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        let _ = self.queue.send(Entry::Flush(done));
        let _ = committed.await;
        self.check()
    }

    /// The first failed write since the last look, if any.
    pub(super) fn check(&self) -> Result<(), String> {
        match self.failure.lock().expect("ledger failure lock").take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// What a send needs to mark its delivery as handed over. Once `stopping` is set,
    /// nothing more is handed over.
    /// `rendered_with` is stored with the mark (see [`crate::render::RenderedWith`]).
    pub(super) fn ticket<'a>(
        &'a self,
        delivery_id: i64,
        rendered_with: &'a str,
        stopping: &'a AtomicBool,
    ) -> Ticket<'a> {
        Ticket {
            writer: self,
            delivery_id,
            rendered_with,
            stopping,
            permit: Mutex::new(None),
        }
    }

    async fn hand(&self, handing: Handing) -> Result<bool, String> {
        let (answer, marked) = oneshot::channel();
        let _ = self.queue.send(Entry::Hand(handing, answer));
        marked
            .await
            .unwrap_or_else(|_| Err("the ledger writer stopped".into()))
    }
}

/// One delivery on its way to SMTP. Settle it with its outcome.
pub(super) struct Ticket<'a> {
    writer: &'a LedgerWriter,
    delivery_id: i64,
    rendered_with: &'a str,
    stopping: &'a AtomicBool,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Ticket<'_> {
    /// Queues the outcome, then lets another delivery be marked.
    pub(super) fn settle(self, outcome: DeliveryOutcome) {
        self.writer.record(outcome);
    }
}

impl HandOver for Ticket<'_> {
    fn hand_over(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.stopping.load(Ordering::SeqCst) {
                return Err("this worker is stopping".into());
            }
            // A second try (on the next relay) keeps the permit of the first.
            if self.permit.lock().expect("ticket lock").is_none() {
                let permit = self
                    .writer
                    .handing
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                *self.permit.lock().expect("ticket lock") = Some(permit);
            }
            let handing = Handing {
                delivery_id: self.delivery_id,
                rendered_with: self.rendered_with.to_string(),
            };
            match self.writer.hand(handing).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("no longer held by this worker (its lease ran out)".into()),
                Err(error) => Err(format!("cannot mark it as handed to SMTP: {error}")),
            }
        })
    }
}

struct WriterTask {
    store: Store,
    worker: String,
    held: HeldLeases,
    failure: Arc<Mutex<Option<String>>>,
}

impl WriterTask {
    async fn run(self, mut entries: mpsc::UnboundedReceiver<Entry>) {
        while let Some(first) = entries.recv().await {
            let mut group = vec![first];
            while group.len() < MOST_PER_COMMIT {
                match entries.try_recv() {
                    Ok(entry) => group.push(entry),
                    Err(_) => break,
                }
            }
            self.write(group).await;
        }
    }

    async fn write(&self, group: Vec<Entry>) {
        let mut outcomes = Vec::new();
        let mut hands = Vec::new();
        let mut flushes = Vec::new();
        for entry in group {
            match entry {
                Entry::Outcome(outcome) => outcomes.push(outcome),
                Entry::Hand(handing, answer) => hands.push((handing, answer)),
                Entry::Flush(done) => flushes.push(done),
            }
        }
        let (handing, answers): (Vec<Handing>, Vec<_>) = hands.into_iter().unzip();
        let written = self
            .store
            .write_ledger(&self.worker, &outcomes, &handing)
            .await;
        let hands = handing.iter().map(|h| h.delivery_id).zip(answers);
        // Recorded, or lost: either way the heartbeat stops renewing these leases, and a
        // lost outcome's delivery expires as `unknown` (it was marked) like a killed
        // worker's.
        let_go(
            &self.held,
            outcomes.iter().map(DeliveryOutcome::delivery_id),
        );
        match written {
            Ok(marked) => {
                let marked: HashSet<i64> = marked.into_iter().collect();
                for (id, answer) in hands {
                    let _ = answer.send(Ok(marked.contains(&id)));
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot write delivery outcomes");
                let text = error.to_string();
                for (_, answer) in hands {
                    let _ = answer.send(Err(text.clone()));
                }
                self.failure
                    .lock()
                    .expect("ledger failure lock")
                    .get_or_insert(text);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
