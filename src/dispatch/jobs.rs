//! The jobs apalis carries, and pushing them onto the store's own queue.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DispatchError;
use crate::store::{JobStorage, Store};

/// Freeze a campaign's audience and start delivering it; or, with `judge`, judge its
/// experiment's test and send the winner to the rest. Both ride one queue: a third
/// apalis poller on SQLite made lock conflicts that lost jobs at start-up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartCampaign {
    pub campaign_id: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub judge: bool,
}

impl StartCampaign {
    pub fn start(campaign_id: i64) -> StartCampaign {
        StartCampaign {
            campaign_id,
            judge: false,
        }
    }

    pub fn judge(campaign_id: i64) -> StartCampaign {
        StartCampaign {
            campaign_id,
            judge: true,
        }
    }
}

/// Deliver a campaign until nothing is left to claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliverBatch {
    pub campaign_id: i64,
}

/// Per-recipient retries live in the ledger; a job failing means the database or
/// the process went away, and a couple of tries cover that.
const JOB_ATTEMPTS: usize = 3;

/// Pushes jobs onto the apalis queue held in the same database as the store.
#[derive(Clone)]
pub struct JobQueue {
    start: JobStorage<StartCampaign>,
    deliver: JobStorage<DeliverBatch>,
}

impl JobQueue {
    pub fn new(store: &Store) -> JobQueue {
        JobQueue {
            start: store.job_storage(),
            deliver: store.job_storage(),
        }
    }

    pub async fn push_start(
        &self,
        job: StartCampaign,
        after: Duration,
    ) -> Result<(), DispatchError> {
        self.start
            .push(job, after, JOB_ATTEMPTS)
            .await
            .map_err(DispatchError::Queue)
    }

    pub async fn push_deliver(
        &self,
        job: DeliverBatch,
        after: Duration,
    ) -> Result<(), DispatchError> {
        self.deliver
            .push(job, after, JOB_ATTEMPTS)
            .await
            .map_err(DispatchError::Queue)
    }
}
