use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Db, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens `url`: `postgres://…` for PostgreSQL; `sqlite://path`, `sqlite:path` or a
    /// plain file path for SQLite (created when missing).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = if is_postgres_url(url) {
            Db::Postgres(connect_postgres(url).await?)
        } else {
            Db::Sqlite(connect_sqlite(url).await?)
        };
        let store = Store { db };
        store.ping().await.map_err(|e| connect_error(url, e))?;
        Ok(store)
    }

    /// Opens `url` and brings its schema (mailcast's and the job queue's) up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The same database through `max_connections` connections of its own, opened on
    /// the calling runtime, which then drives their I/O (PostgreSQL). SQLite
    /// connections run on threads of their own whichever runtime asks, so SQLite shares
    /// the pool.
    pub async fn with_own_pool(&self, max_connections: u32) -> Result<Store, StoreError> {
        let db = match &self.db {
            Db::Sqlite(pool) => Db::Sqlite(pool.clone()),
            Db::Postgres(pool) => Db::Postgres(
                postgres_pool(max_connections)
                    .connect_with(pool.connect_options().as_ref().clone())
                    .await?,
            ),
        };
        Ok(Store { db })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => {
                own_migrations(sqlx::migrate!("./migrations/sqlite"))
                    .run(pool)
                    .await?;
                apalis_sqlite::SqliteStorage::<()>::migrations()
                    .run(pool)
                    .await?;
            }
            Db::Postgres(pool) => {
                own_migrations(sqlx::migrate!("./migrations/postgres"))
                    .run(pool)
                    .await?;
                apalis_postgres::PostgresStorage::<()>::migrations()
                    .run(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

/// mailcast keeps its migration history apart from the job queue's, which uses the
/// default `_sqlx_migrations` table in the same database.
fn own_migrations(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.dangerous_set_table_name("mailcast_migrations");
    migrator
}

pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| connect_error(url, e))?;
    // A prepared statement's generic plan is kept for the connection's life. Made
    // while `deliveries` was nearly empty (a new database, a first campaign), it scans
    // the whole table for every ledger write as the table grows; a plan per execution
    // uses the primary key.
    let options = options.options([("plan_cache_mode", "force_custom_plan")]);
    postgres_pool(16)
        .connect_with(options)
        .await
        .map_err(|e| connect_error(url, e))
}

fn postgres_pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
}

async fn connect_sqlite(url: &str) -> Result<sqlx::SqlitePool, StoreError> {
    let options = sqlite_options(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| connect_error(url, e))
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    // SQLite opens "" as a temporary database that vanishes on exit: everything
    // imported into it would be lost without a word.
    if url.trim().is_empty() {
        return Err(StoreError::Connect {
            url: "\"\"".into(),
            reason: "the database URL is empty (is DATABASE_URL set to nothing?): give a \
                     SQLite file, sqlite://PATH or postgres://…, or unset DATABASE_URL to use \
                     mailcast.db"
                .into(),
        });
    }
    if url.starts_with("sqlite:") {
        return SqliteConnectOptions::from_str(url).map_err(|e| connect_error(url, e));
    }
    if url.contains("://") {
        return Err(StoreError::Connect {
            url: redact_url(url),
            reason: "unsupported database URL: use postgres://…, sqlite://PATH or a file path"
                .into(),
        });
    }
    Ok(SqliteConnectOptions::new().filename(url))
}

fn connect_error(url: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Connect {
        url: redact_url(url),
        reason: error.to_string(),
    }
}

/// The URL with any password replaced, for messages and logs: the one place every
/// error and log line that shows a database or SMTP URL goes through. Works on the
/// text, so that a URL too broken to parse (the very one an error is about) is
/// redacted as well; a password may hold `/` or `@`, so the user part ends at the
/// last `@`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return url.to_string();
    };
    format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_even_from_urls_that_do_not_parse() {
        let cases = [
            (
                "postgres://bob:DbPass@127.0.0.1:1/x",
                "postgres://bob:***@127.0.0.1:1/x",
            ),
            ("postgres://bob:DbPass@[bad/x", "postgres://bob:***@[bad/x"),
            (
                "smtp://alice:S3cret@exa mple.com",
                "smtp://alice:***@exa mple.com",
            ),
            ("smtp://alice:p/a@ss@host:25", "smtp://alice:***@host:25"),
            ("smtp://alice@host", "smtp://alice@host"),
            ("mailcast.db", "mailcast.db"),
            ("sqlite://data/m.db", "sqlite://data/m.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown);
        }
    }
}
