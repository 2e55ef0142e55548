//! The jobs apalis carries, and pushing them onto the store's own queue.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};

use super::DispatchError;
use crate::store::{Db, Store};

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
pub enum JobQueue {
    Sqlite {
        start: SqliteStorage<StartCampaign>,
        deliver: SqliteStorage<DeliverBatch>,
    },
    Postgres {
        start: PostgresStorage<StartCampaign>,
        deliver: PostgresStorage<DeliverBatch>,
    },
}

impl JobQueue {
    pub fn new(store: &Store) -> JobQueue {
        match store.db() {
            Db::Sqlite(pool) => JobQueue::Sqlite {
                start: SqliteStorage::new(pool),
                deliver: SqliteStorage::new(pool),
            },
            Db::Postgres(pool) => JobQueue::Postgres {
                start: PostgresStorage::new(pool),
                deliver: PostgresStorage::new(pool),
            },
        }
    }

    pub async fn push_start(
        &self,
        job: StartCampaign,
        after: Duration,
    ) -> Result<(), DispatchError> {
        let task = TaskBuilder::new(job)
            .run_after(after)
            .max_attempts(JOB_ATTEMPTS)
            .build();
        let result = match self {
            JobQueue::Sqlite { start, .. } => start.clone().push_task(task).await.map_err(to_text),
            JobQueue::Postgres { start, .. } => {
                start.clone().push_task(task).await.map_err(to_text)
            }
        };
        result.map_err(DispatchError::Queue)
    }

    pub async fn push_deliver(
        &self,
        job: DeliverBatch,
        after: Duration,
    ) -> Result<(), DispatchError> {
        let task = TaskBuilder::new(job)
            .run_after(after)
            .max_attempts(JOB_ATTEMPTS)
            .build();
        let result = match self {
            JobQueue::Sqlite { deliver, .. } => {
                deliver.clone().push_task(task).await.map_err(to_text)
            }
            JobQueue::Postgres { deliver, .. } => {
                deliver.clone().push_task(task).await.map_err(to_text)
            }
        };
        result.map_err(DispatchError::Queue)
    }
}

fn to_text(error: impl std::fmt::Display) -> String {
    error.to_string()
}
