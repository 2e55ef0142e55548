//! The automation engine of a worker process: each tick starts the runs that triggers
//! call for, then claims due runs in batches and moves each on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;
use futures::StreamExt;

use super::AutomationError;
use super::definition::Definition;
use super::steps::Moved;
use super::triggers::ScanMemory;
use crate::dispatch::{DeliverBatch, JobQueue};
use crate::store::{
    ClaimedRun, Recipient, RunState, RunUpdate, SqlFilter, Store, StoredAutomation,
};
use crate::time::Clock;

/// Batches of due runs one tick moves on at most.
const BATCHES_PER_TICK: usize = 2;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Unique per process: whose leases runs carry.
    pub owner: String,
    /// When runs are due: the system clock, or a manual one in tests and the demo.
    pub clock: Clock,
    /// The zone of recipients without one (`wait_until`, date triggers).
    pub default_zone: Tz,
    /// Runs claimed per round.
    pub batch: i64,
    /// Runs moved on at once.
    pub parallel: usize,
    /// How long a claim holds: a process gone this long has its runs taken over.
    pub lease: Duration,
    /// How long an idle engine waits before looking again.
    pub interval: Duration,
    /// How often (automation clock seconds) `enters_segment` triggers are evaluated.
    pub segment_every: i64,
}

impl EngineSettings {
    pub fn new(owner: String, clock: Clock, default_zone: Tz) -> EngineSettings {
        EngineSettings {
            owner,
            clock,
            default_zone,
            batch: 500,
            parallel: 16,
            lease: Duration::from_secs(60),
            interval: Duration::from_millis(100),
            segment_every: 900,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub started: u64,
    pub moved: usize,
    pub messages: usize,
    pub ended: usize,
    /// Runs that ended because a step could not be done (logged with the reason).
    pub failed: usize,
}

/// Boxed so the batch's futures have one type that is `Send` for every lifetime.
type MoveFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Moved, AutomationError>> + Send + 'a>,
>;

pub struct AutomationEngine {
    pub(super) store: Store,
    queue: JobQueue,
    pub(super) settings: EngineSettings,
    definitions: Mutex<HashMap<i64, Arc<Definition>>>,
    campaigns: Mutex<HashMap<(i64, i64, i64), i64>>,
    /// `if` conditions compiled for the tick's `now` (relative times depend on it).
    conditions: Mutex<HashMap<String, (i64, SqlFilter)>>,
    pub(super) scans: Mutex<ScanMemory>,
}

impl AutomationEngine {
    pub fn new(store: Store, queue: JobQueue, settings: EngineSettings) -> Arc<AutomationEngine> {
        Arc::new(AutomationEngine {
            store,
            queue,
            settings,
            definitions: Mutex::default(),
            campaigns: Mutex::default(),
            conditions: Mutex::default(),
            scans: Mutex::default(),
        })
    }

    /// Runs ticks until `stopping` says so, pausing `interval` when a tick found
    /// nothing to do. A failed tick is logged and tried again.
    pub async fn run(self: Arc<Self>, stopping: impl Fn() -> bool) {
        while !stopping() {
            match self.tick().await {
                Ok(report) if report.moved > 0 || report.started > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "automation tick failed"),
            }
            tokio::time::sleep(self.settings.interval).await;
        }
    }

    /// Ticks until a tick leaves no due run behind; the figures summed.
    pub async fn drain(&self) -> Result<TickReport, AutomationError> {
        let mut total = TickReport::default();
        loop {
            let report = self.tick().await?;
            total.started += report.started;
            total.moved += report.moved;
            total.messages += report.messages;
            total.ended += report.ended;
            total.failed += report.failed;
            if report.moved < BATCHES_PER_TICK * self.settings.batch as usize {
                return Ok(total);
            }
        }
    }

    /// Starts triggered runs, then moves on up to [`BATCHES_PER_TICK`] batches of the
    /// runs due now.
    pub async fn tick(&self) -> Result<TickReport, AutomationError> {
        let now = self.settings.clock.now();
        let mut report = TickReport {
            started: self.scan_triggers(now).await?,
            ..TickReport::default()
        };
        // A bounded share per tick, so new events are scanned again soon while a
        // backlog of due runs is worked off (the loop in `run` goes on at once).
        for _ in 0..BATCHES_PER_TICK {
            let claimed = self.process_due(now, &mut report).await?;
            if claimed < self.settings.batch as usize {
                break;
            }
        }
        Ok(report)
    }

    /// Claims one batch of due runs and moves each on; returns how many it claimed.
    async fn process_due(
        &self,
        now: i64,
        report: &mut TickReport,
    ) -> Result<usize, AutomationError> {
        let settings = &self.settings;
        let lease = settings.lease.as_secs() as i64;
        let runs = self
            .store
            .claim_due_runs(&settings.owner, now, lease, settings.batch)
            .await?;
        if runs.is_empty() {
            return Ok(0);
        }
        let recipients = self.recipients_of(&runs).await?;
        let mut moving: Vec<MoveFuture<'_>> = Vec::with_capacity(runs.len());
        for run in &runs {
            moving.push(Box::pin(self.move_one(
                run,
                recipients.get(&run.recipient_id),
                now,
            )));
        }
        let moved: Vec<Result<Moved, AutomationError>> = futures::stream::iter(moving)
            .buffer_unordered(settings.parallel.max(1))
            .collect()
            .await;
        let mut updates = Vec::with_capacity(runs.len());
        let mut deliveries = Vec::new();
        for result in moved {
            let moved = result?;
            report.messages += moved.deliveries.len();
            deliveries.extend(moved.deliveries);
            if matches!(moved.update.state, RunState::Ended { .. }) {
                report.ended += 1;
            }
            if is_failure(&moved.update.state) {
                report.failed += 1;
            }
            updates.push(moved.update);
        }
        // Deliveries first: a crash between the two moves the runs on again, and adding
        // a delivery twice adds nothing.
        self.store.add_deliveries(&deliveries).await?;
        self.store.save_runs(&settings.owner, &updates).await?;
        let campaigns: BTreeSet<i64> = deliveries.iter().map(|&(campaign, _)| campaign).collect();
        for campaign_id in campaigns {
            self.queue
                .push_deliver(DeliverBatch { campaign_id }, Duration::ZERO)
                .await?;
        }
        report.moved += runs.len();
        Ok(runs.len())
    }

    /// Moves one run on. A step that cannot be done (its template or segment is gone)
    /// ends the run as `failed`; a store error ends the tick, and the run's lease
    /// runs out for another try.
    async fn move_one(
        &self,
        run: &ClaimedRun,
        recipient: Option<&Recipient>,
        now: i64,
    ) -> Result<Moved, AutomationError> {
        let definition = self.definition(run.version_id).await?;
        match self.move_run(&definition, run, recipient, now).await {
            Err(AutomationError::Store(error)) => Err(AutomationError::Store(error)),
            Err(AutomationError::Queue(error)) => Err(AutomationError::Queue(error)),
            Err(error) => {
                tracing::error!(run_id = run.id, automation = %definition.name, %error,
                    "automation run failed");
                Ok(Moved {
                    update: RunUpdate {
                        run_id: run.id,
                        state: RunState::Ended {
                            step: run.step,
                            at: now,
                            reason: "failed".into(),
                            converted_at: None,
                        },
                        last_sent_step: run.last_sent_step,
                        entered: Vec::new(),
                    },
                    deliveries: Vec::new(),
                })
            }
            moved => moved,
        }
    }

    async fn recipients_of(
        &self,
        runs: &[ClaimedRun],
    ) -> Result<HashMap<i64, Recipient>, AutomationError> {
        let ids: Vec<i64> = runs.iter().map(|r| r.recipient_id).collect();
        let found = self.store.recipients_by_ids(&ids).await?;
        Ok(found.into_iter().map(|r| (r.id, r)).collect())
    }

    /// One version's definition, read from the store once per process.
    pub(super) async fn definition(
        &self,
        version_id: i64,
    ) -> Result<Arc<Definition>, AutomationError> {
        if let Some(found) = self
            .definitions
            .lock()
            .expect("not poisoned")
            .get(&version_id)
        {
            return Ok(found.clone());
        }
        let json = self.store.automation_definition(version_id).await?;
        let definition: Definition =
            serde_json::from_str(&json).map_err(|e| AutomationError::Stored {
                version: version_id,
                reason: e.to_string(),
            })?;
        let definition = Arc::new(definition);
        self.definitions
            .lock()
            .expect("not poisoned")
            .insert(version_id, definition.clone());
        Ok(definition)
    }

    /// The active automations with their current definitions.
    pub(super) async fn active_automations(
        &self,
    ) -> Result<Vec<(StoredAutomation, Arc<Definition>)>, AutomationError> {
        let mut active = Vec::new();
        for automation in self.store.automations().await? {
            if automation.status == "active" {
                let definition = self.definition(automation.version_id).await?;
                active.push((automation, definition));
            }
        }
        Ok(active)
    }

    /// The condition compiled as of `now`, compiled once per tick.
    pub(super) async fn condition(
        &self,
        text: &str,
        now: i64,
    ) -> Result<SqlFilter, crate::segment::SegmentError> {
        let cached = self
            .conditions
            .lock()
            .expect("not poisoned")
            .get(text)
            .cloned();
        if let Some((at, filter)) = cached
            && at == now
        {
            return Ok(filter);
        }
        let filter = crate::segment::compile_text(&self.store, text, now).await?;
        self.conditions
            .lock()
            .expect("not poisoned")
            .insert(text.to_string(), (now, filter.clone()));
        Ok(filter)
    }

    pub(super) fn cached_campaign(&self, key: (i64, i64, i64)) -> Option<i64> {
        self.campaigns
            .lock()
            .expect("not poisoned")
            .get(&key)
            .copied()
    }

    pub(super) fn cache_campaign(&self, key: (i64, i64, i64), id: i64) {
        self.campaigns.lock().expect("not poisoned").insert(key, id);
    }
}

fn is_failure(state: &RunState) -> bool {
    matches!(state, RunState::Ended { reason, .. } if reason == "failed")
}

/// A worker process's automation engine, running until the worker stops delivering.
pub struct EngineTask {
    task: tokio::task::JoinHandle<()>,
}

impl EngineTask {
    /// Starts the engine on the worker's store, queue, clock and default zone.
    pub fn start(dispatcher: Arc<crate::dispatch::Dispatcher>) -> EngineTask {
        let mut settings = EngineSettings::new(
            dispatcher.settings.worker_name.clone(),
            dispatcher.settings.clock.clone(),
            dispatcher.settings.default_zone,
        );
        settings.lease = dispatcher.settings.lease;
        let engine =
            AutomationEngine::new(dispatcher.store.clone(), dispatcher.queue.clone(), settings);
        let task = tokio::spawn(engine.run(move || dispatcher.is_stopping()));
        EngineTask { task }
    }
}

impl Drop for EngineTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}
