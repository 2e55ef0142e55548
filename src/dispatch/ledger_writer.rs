//! The ledger as a worker process writes it while sending: outcomes, and the marks that
//! say a delivery was handed to SMTP, each mark committed before its message body goes
//! out.
//!
//! A delivery is handed to SMTP only while it holds one of `concurrency` batons. A baton
//! carries the outcome of the delivery that held it last, and that outcome is written in
//! the same statement that marks the next holder as handed, so every commit swaps one
//! marked delivery without an outcome for another: at no moment are more than
//! `concurrency` deliveries marked without an outcome, and a worker killed at any moment
//! leaves at most that many `unknown`. Writes of different batons run side by side, and
//! each overlaps the SMTP round trip of its message's envelope. Outcomes of deliveries
//! never handed (suppressed, failed to render, deferred before a session, handed back)
//! are grouped by a writer task into one statement per round.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::transport::HandOver;
use crate::store::{DeliveryOutcome, Store};

/// Entries written in one statement at most by the writer task.
const MOST_PER_WRITE: usize = 1000;

/// Delivery id → the job holding its lease: the leases the heartbeat renews.
pub(super) type HeldLeases = Arc<Mutex<HashMap<i64, u64>>>;

pub(super) struct LedgerWriter {
    ledger: Ledger,
    batons: Batons,
    queue: mpsc::UnboundedSender<Entry>,
}

/// What both the batons and the writer task write with.
#[derive(Clone)]
struct Ledger {
    store: Store,
    worker: String,
    held: HeldLeases,
    /// The first write that failed since a job last looked.
    failure: Arc<Mutex<Option<String>>>,
}

enum Entry {
    Outcome(DeliveryOutcome),
    /// Answers once everything queued before it is written (or failed to be).
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
        let ledger = Ledger {
            store,
            worker,
            held,
            failure: Arc::new(Mutex::new(None)),
        };
        let (queue, entries) = mpsc::unbounded_channel();
        tokio::spawn(ledger.clone().run(entries));
        LedgerWriter {
            ledger,
            batons: Batons::new(concurrency),
            queue,
        }
    }

    /// Queues the outcome of a delivery that was not handed to SMTP.
    pub(super) fn record(&self, outcome: DeliveryOutcome) {
        // The task lives as long as this writer: the send cannot fail.
        let _ = self.queue.send(Entry::Outcome(outcome));
    }

    /// Writes every outcome queued or carried by an idle baton so far.
    pub(super) async fn flush(&self) -> Result<(), String> {
        let (done, written) = oneshot::channel();
        let _ = self.queue.send(Entry::Flush(done));
        let _ = written.await;
        self.write_idle_batons().await;
        self.check()
    }

    /// The first failed write since the last look, if any.
    pub(super) fn check(&self) -> Result<(), String> {
        match self
            .ledger
            .failure
            .lock()
            .expect("ledger failure lock")
            .take()
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// What a send needs to mark its delivery as handed over. Once `stopping` is set,
    /// nothing more is handed over.
    pub(super) fn ticket<'a>(&'a self, delivery_id: i64, stopping: &'a AtomicBool) -> Ticket<'a> {
        Ticket {
            writer: self,
            delivery_id,
            stopping,
            baton: Mutex::new(None),
        }
    }

    /// Takes the batons nobody holds, writes what they carry, and puts them back.
    async fn write_idle_batons(&self) {
        let mut idle = self.batons.take_idle();
        let carried: Vec<DeliveryOutcome> =
            idle.iter_mut().filter_map(|b| b.outcome.take()).collect();
        if !carried.is_empty() {
            if let Err(error) = self.ledger.write(&carried, &[]).await {
                // Carried on: the next holder writes them.
                for (baton, outcome) in idle.iter_mut().zip(carried) {
                    baton.outcome = Some(outcome);
                }
                self.ledger.failed(error);
            }
        }
        for baton in idle {
            self.batons.give_back(baton);
        }
    }
}

/// One of `concurrency` rights to hand a delivery to SMTP, with the outcome of its last
/// holder when that is not written yet.
#[derive(Default)]
struct Baton {
    outcome: Option<DeliveryOutcome>,
}

struct Batons {
    free: Mutex<Vec<Baton>>,
    available: Semaphore,
}

impl Batons {
    fn new(count: usize) -> Batons {
        let count = count.max(1);
        Batons {
            free: Mutex::new((0..count).map(|_| Baton::default()).collect()),
            available: Semaphore::new(count),
        }
    }

    async fn take(&self) -> Baton {
        self.available
            .acquire()
            .await
            .expect("semaphore never closed")
            .forget();
        self.free
            .lock()
            .expect("batons lock")
            .pop()
            .expect("a baton per permit")
    }

    fn take_idle(&self) -> Vec<Baton> {
        let mut taken = Vec::new();
        while let Ok(permit) = self.available.try_acquire() {
            permit.forget();
            taken.push(
                self.free
                    .lock()
                    .expect("batons lock")
                    .pop()
                    .expect("a baton per permit"),
            );
        }
        taken
    }

    fn give_back(&self, baton: Baton) {
        self.free.lock().expect("batons lock").push(baton);
        self.available.add_permits(1);
    }
}

/// One delivery on its way to SMTP. Settle it with its outcome.
pub(super) struct Ticket<'a> {
    writer: &'a LedgerWriter,
    delivery_id: i64,
    stopping: &'a AtomicBool,
    /// Held from the hand-over on; `true` once the delivery is marked as handed.
    baton: Mutex<Option<(Baton, bool)>>,
}

impl Ticket<'_> {
    /// A handed delivery's outcome rides on its baton, written with the next mark; any
    /// other outcome is queued.
    pub(super) fn settle(self, outcome: DeliveryOutcome) {
        let held = self.baton.lock().expect("ticket lock").take();
        match held {
            Some((mut baton, true)) => {
                baton.outcome = Some(outcome);
                self.writer.batons.give_back(baton);
            }
            Some((baton, false)) => {
                self.writer.record(outcome);
                self.writer.batons.give_back(baton);
            }
            None => self.writer.record(outcome),
        }
    }

    async fn mark(&self) -> Result<(), String> {
        // A second try (on the next relay) keeps the baton of the first.
        let held = self.baton.lock().expect("ticket lock").take();
        let mut baton = match held {
            Some((baton, _)) => baton,
            None => self.writer.batons.take().await,
        };
        let carried: Vec<DeliveryOutcome> = baton.outcome.take().into_iter().collect();
        let ledger = &self.writer.ledger;
        let result = match ledger.write(&carried, &[self.delivery_id]).await {
            Ok(marked) if marked.contains(&self.delivery_id) => Ok(()),
            Ok(_) => Err("no longer held by this worker (its lease ran out)".to_string()),
            Err(error) => {
                baton.outcome = carried.into_iter().next();
                let text = format!("cannot mark it as handed to SMTP: {error}");
                ledger.failed(error);
                Err(text)
            }
        };
        *self.baton.lock().expect("ticket lock") = Some((baton, result.is_ok()));
        result
    }
}

impl HandOver for Ticket<'_> {
    fn hand_over(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.stopping.load(Ordering::SeqCst) {
                return Err("this worker is stopping".into());
            }
            self.mark().await
        })
    }
}

impl Ledger {
    /// Writes outcomes and marks; the heartbeat stops renewing the leases of the
    /// outcomes written. Returns the marked deliveries.
    async fn write(
        &self,
        outcomes: &[DeliveryOutcome],
        handing: &[i64],
    ) -> Result<Vec<i64>, String> {
        let written = self
            .store
            .write_ledger(&self.worker, outcomes, handing)
            .await
            .map_err(|e| e.to_string())?;
        let mut held = self.held.lock().expect("held leases lock");
        for outcome in outcomes {
            held.remove(&outcome.delivery_id());
        }
        Ok(written)
    }

    fn failed(&self, error: String) {
        tracing::error!(%error, "cannot write delivery outcomes");
        self.failure
            .lock()
            .expect("ledger failure lock")
            .get_or_insert(error);
    }

    async fn run(self, mut entries: mpsc::UnboundedReceiver<Entry>) {
        while let Some(first) = entries.recv().await {
            let mut group = vec![first];
            while group.len() < MOST_PER_WRITE {
                match entries.try_recv() {
                    Ok(entry) => group.push(entry),
                    Err(_) => break,
                }
            }
            self.write_group(group).await;
        }
    }

    async fn write_group(&self, group: Vec<Entry>) {
        let mut outcomes = Vec::new();
        let mut flushes = Vec::new();
        for entry in group {
            match entry {
                Entry::Outcome(outcome) => outcomes.push(outcome),
                Entry::Flush(done) => flushes.push(done),
            }
        }
        if let Err(error) = self.write(&outcomes, &[]).await {
            // Lost: the heartbeat lets these leases run out, and none of these
            // deliveries was handed to SMTP, so they go back to be sent later.
            let ids: HashSet<i64> = outcomes.iter().map(DeliveryOutcome::delivery_id).collect();
            self.held
                .lock()
                .expect("held leases lock")
                .retain(|id, _| !ids.contains(id));
            self.failed(error);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
