//! The job queue lives in the store's own database: apalis storages over the store's
//! pool, built here so that no other module needs to know the engine.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Db, Store};

/// The queue of one job type, on the store's engine.
pub enum JobStorage<T> {
    Sqlite(SqliteStorage<T>),
    Postgres(PostgresStorage<T>),
}

impl<T> Clone for JobStorage<T> {
    fn clone(&self) -> Self {
        match self {
            JobStorage::Sqlite(storage) => JobStorage::Sqlite(storage.clone()),
            JobStorage::Postgres(storage) => JobStorage::Postgres(storage.clone()),
        }
    }
}

impl<T> JobStorage<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
{
    /// Queues `job` to run after `after`, tried at most `attempts` times.
    pub async fn push(&self, job: T, after: Duration, attempts: usize) -> Result<(), String> {
        match self {
            JobStorage::Sqlite(storage) => {
                let task = TaskBuilder::new(job)
                    .run_after(after)
                    .max_attempts(attempts)
                    .build();
                storage.clone().push_task(task).await.map_err(text)
            }
            JobStorage::Postgres(storage) => {
                let task = TaskBuilder::new(job)
                    .run_after(after)
                    .max_attempts(attempts)
                    .build();
                storage.clone().push_task(task).await.map_err(text)
            }
        }
    }
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

impl Store {
    /// The queue of `T` jobs in this store's database.
    pub fn job_storage<T>(&self) -> JobStorage<T> {
        match &self.db {
            Db::Sqlite(pool) => JobStorage::Sqlite(SqliteStorage::new(pool)),
            Db::Postgres(pool) => JobStorage::Postgres(PostgresStorage::new(pool)),
        }
    }

    /// The queue of `T` jobs, fetched one per poll, so that the jobs of one campaign
    /// spread over every worker process instead of the first one taking them all.
    pub fn job_storage_one_per_poll<T>(&self) -> JobStorage<T> {
        let queue = std::any::type_name::<T>();
        match &self.db {
            Db::Sqlite(pool) => JobStorage::Sqlite(
                SqliteStorage::new(pool)
                    .with_config(apalis_sqlite::Config::default().queue(queue).batch_size(1)),
            ),
            Db::Postgres(pool) => JobStorage::Postgres(
                PostgresStorage::new(pool).with_config(
                    apalis_postgres::Config::default()
                        .queue(queue)
                        .batch_size(1),
                ),
            ),
        }
    }
}
