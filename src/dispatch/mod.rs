//! From a scheduled campaign to messages handed to a transport, through the ledger.
//!
//! `StartCampaign` freezes the audience and enqueues `DeliverBatch` jobs; each of those
//! claims deliveries with a lease, renders, re-checks consent, sends, and records the
//! outcome, until nothing is left to claim.

mod as_sent;
mod control;
mod deliver;
mod error;
mod experiment;
mod heartbeat;
mod jobs;
mod ledger_writer;
mod pipelining;
mod refusal;
mod relay_warning;
mod retry;
mod runtime;
mod smtp_stream;
mod start;
mod throttle;
mod transport;
mod triggered;
mod validate;
mod worker;

pub use as_sent::{AsSent, AsSentError, as_sent};
pub use control::{cancel_campaign, pause_campaign, requeue_deliveries, resume_campaign};
pub use deliver::{BatchEnd, deliver_campaign};
pub use error::DispatchError;
pub use experiment::{JudgeOutcome, judge_experiment};
pub use jobs::{DeliverBatch, JobQueue, StartCampaign};
pub use retry::RetryPolicy;
pub use runtime::CampaignRuntime;
pub use start::{StartOutcome, schedule_campaign, start_campaign};
pub use throttle::{DomainLimit, Throttle, ThrottleSettings};
pub use transport::{
    HandOver, NothingToMark, Outgoing, SendResult, Transport, TransportError, enhanced_code,
};
pub use triggered::{
    CheckedSend, FieldProblems, IDEMPOTENCY_TTL_SECONDS, KeyedOutcome, KeyedSend, QueuedSend,
    TriggeredError, TriggeredSend, check_send, compiles, enqueue_send, send_once,
};
pub use validate::{Retemplated, VALIDATION_SAMPLE, retemplate_campaign, validate_campaign};
pub use worker::{WorkerHandle, run_worker, spawn_worker, unique_worker_name};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ledger_writer::{HeldLeases, LedgerWriter};

use crate::bounce::ReturnPath;
use crate::links::KeyRing;
use crate::render::DkimSettings;
use crate::schedule::{FrequencyCap, QuietHours};
use crate::store::Store;
use crate::time::Clock;

/// How often a worker process looks for expired leases while it delivers.
const LEASE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How a worker process delivers.
#[derive(Clone)]
pub struct DispatchSettings {
    /// Unique per process: apalis keeps a job `Running` forever when a restarted
    /// worker reuses the name of a killed one.
    pub worker_name: String,
    /// Deliveries claimed per round.
    pub batch_size: i64,
    /// How long a claim holds without renewal: a live worker renews its leases every
    /// third of this; a worker gone this long has its unfinished deliveries counted
    /// as `unknown`.
    pub lease: Duration,
    /// `DeliverBatch` jobs this process runs at once.
    pub slots: usize,
    /// `DeliverBatch` jobs a campaign start (or resume) enqueues; each loops until no
    /// work is left. More jobs than one process's slots spread a campaign over all
    /// worker processes.
    pub jobs_per_campaign: usize,
    /// A campaign whose start is later than `send_at` plus this is marked expired.
    pub start_grace: Duration,
    pub retry: RetryPolicy,
    pub base_url: String,
    pub keyring: KeyRing,
    /// Signs every message the worker sends, when set.
    pub dkim: Option<DkimSettings>,
    /// How often idle workers look for new jobs.
    pub poll_interval: Duration,
    /// Share of messages failing to render past which a campaign pauses itself.
    pub max_render_failure_rate: f64,
    /// When deliveries are due (local send times, quiet hours, retries): the system
    /// clock, or a manual one in tests. Leases and the ledger's own times are always
    /// the system's.
    pub clock: Clock,
    /// The zone of recipients without one (local send times, quiet hours).
    pub default_zone: chrono_tz::Tz,
    /// Marketing messages wait while it is quiet in the recipient's zone; a campaign
    /// may set its own or turn them off.
    pub quiet_hours: Option<QuietHours>,
    /// At most this many marketing messages per recipient in a rolling window, over
    /// every campaign.
    pub frequency_cap: Option<FrequencyCap>,
    /// The longest a campaign waiting for retries or local send times goes without a
    /// job looking at it again.
    pub recheck: Duration,
    /// Per-delivery envelope senders at the bounce domain; None sends from the
    /// campaign's sender address.
    pub return_path: Option<ReturnPath>,
    /// Whether this process also moves automation runs on (`automation::EngineTask`).
    pub automations: bool,
}

impl DispatchSettings {
    pub fn new(worker_name: String, base_url: String, keyring: KeyRing) -> Self {
        DispatchSettings {
            worker_name,
            batch_size: 100,
            lease: Duration::from_secs(300),
            slots: 2,
            jobs_per_campaign: 8,
            start_grace: Duration::from_secs(24 * 3600),
            retry: RetryPolicy::default(),
            base_url,
            keyring,
            dkim: None,
            poll_interval: Duration::from_millis(100),
            max_render_failure_rate: 0.05,
            clock: Clock::system(),
            default_zone: crate::schedule::DEFAULT_ZONE,
            quiet_hours: None,
            frequency_cap: None,
            recheck: Duration::from_secs(60),
            return_path: None,
            automations: true,
        }
    }
}

/// Everything a job handler needs, shared by all jobs of one worker process.
pub struct Dispatcher {
    pub store: Store,
    pub transport: Transport,
    pub settings: DispatchSettings,
    pub queue: JobQueue,
    runtimes: Mutex<HashMap<i64, Arc<CampaignRuntime>>>,
    /// When this process last turned expired leases into `unknown`.
    leases_checked: Mutex<Option<std::time::Instant>>,
    /// Set once the process is stopping: delivery jobs claim nothing more.
    stopping: AtomicBool,
    /// The deliveries this process's jobs hold (delivery id → job), claimed and not yet
    /// recorded or handed back: the heartbeat renews exactly these leases.
    held: HeldLeases,
    /// Records outcomes and marks handed deliveries; started by the first job.
    ledger: OnceLock<LedgerWriter>,
    /// Numbers the delivery jobs of this process.
    jobs_started: AtomicU64,
}

impl Dispatcher {
    pub fn new(store: Store, transport: Transport, settings: DispatchSettings) -> Arc<Self> {
        let queue = JobQueue::new(&store);
        Arc::new(Dispatcher {
            store,
            transport,
            settings,
            queue,
            runtimes: Mutex::new(HashMap::new()),
            leases_checked: Mutex::new(None),
            stopping: AtomicBool::new(false),
            held: HeldLeases::default(),
            ledger: OnceLock::new(),
            jobs_started: AtomicU64::new(0),
        })
    }

    /// A job's share of the held deliveries; whatever the job still holds when it ends
    /// (an error, a panic) is no longer renewed, and its leases run out.
    fn job_leases(&self) -> JobLeases<'_> {
        JobLeases {
            dispatcher: self,
            job: self.jobs_started.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The process's ledger writer (a task on the current runtime, started on first use).
    fn ledger(&self) -> &LedgerWriter {
        self.ledger.get_or_init(|| {
            LedgerWriter::start(
                self.store.clone(),
                self.settings.worker_name.clone(),
                self.held.clone(),
                self.transport.concurrency(),
            )
        })
    }

    fn let_go(&self, ids: impl IntoIterator<Item = i64>) {
        ledger_writer::let_go(&self.held, ids);
    }

    /// The deliveries whose leases the heartbeat renews.
    fn held_ids(&self) -> Vec<i64> {
        let held = self.held.lock().expect("held leases lock");
        held.keys().copied().collect()
    }

    /// From now on, delivery jobs send what they hold, hand back what they claimed
    /// ahead, record, and end.
    pub fn stop_delivering(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// True at most once per [`LEASE_CHECK_INTERVAL`]: every job would otherwise look
    /// for expired leases before each batch.
    fn lease_check_due(&self) -> bool {
        let mut checked = self.leases_checked.lock().expect("lease check lock");
        let due = checked.is_none_or(|at| at.elapsed() >= LEASE_CHECK_INTERVAL);
        if due {
            *checked = Some(std::time::Instant::now());
        }
        due
    }

    fn cached_runtime(&self, campaign_id: i64) -> Option<Arc<CampaignRuntime>> {
        self.runtimes
            .lock()
            .expect("campaign cache lock")
            .get(&campaign_id)
            .cloned()
    }

    fn cache_runtime(&self, campaign_id: i64, runtime: Arc<CampaignRuntime>) {
        self.runtimes
            .lock()
            .expect("campaign cache lock")
            .insert(campaign_id, runtime);
    }
}

/// The deliveries one delivery job holds, as far as the heartbeat is concerned.
struct JobLeases<'a> {
    dispatcher: &'a Dispatcher,
    job: u64,
}

impl JobLeases<'_> {
    fn hold(&self, ids: &[i64]) {
        let mut held = self.dispatcher.held.lock().expect("held leases lock");
        held.extend(ids.iter().map(|id| (*id, self.job)));
    }
}

impl Drop for JobLeases<'_> {
    fn drop(&mut self) {
        let mut held = self.dispatcher.held.lock().expect("held leases lock");
        held.retain(|_, job| *job != self.job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TransportConfig;

    fn held(dispatcher: &Dispatcher) -> Vec<i64> {
        let mut ids = dispatcher.held_ids();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn a_job_that_ends_stops_renewing_what_it_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&path).await.unwrap();
        let outbox = TransportConfig::Outbox(dir.path().join("outbox"));
        let transport = Transport::new(&outbox, 1).await.unwrap();
        let settings = DispatchSettings::new(
            "w".into(),
            "http://localhost".into(),
            KeyRing::development(),
        );
        let dispatcher = Dispatcher::new(store, transport, settings);

        let first = dispatcher.job_leases();
        first.hold(&[1, 2, 3]);
        {
            let second = dispatcher.job_leases();
            second.hold(&[4]);
            dispatcher.let_go([2]);
            assert_eq!(held(&dispatcher), [1, 3, 4], "2 was recorded");
        }
        assert_eq!(held(&dispatcher), [1, 3], "the second job ended");
        drop(first);
        assert!(held(&dispatcher).is_empty());
    }
}
