use std::collections::HashMap;

use serde_json::Value;
use sqlx::{PgConnection, SqliteConnection};

use super::copy_text::CopyText;
use super::{Db, Store, StoreError, on_pool};

/// A behavioural event whose recipient and product are already resolved to ids.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub external_id: Option<String>,
    pub recipient_id: i64,
    pub kind: String,
    pub product_id: Option<i64>,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
    pub properties: serde_json::Map<String, Value>,
}

/// The notice "relation already exists, skipping" would be logged once per batch.
const PG_STAGE: &str = "
    SET LOCAL client_min_messages = warning;
    CREATE TEMP TABLE IF NOT EXISTS events_import (
        seq          BIGINT NOT NULL,
        external_id  TEXT,
        recipient_id BIGINT NOT NULL,
        kind         TEXT   NOT NULL,
        product_id   BIGINT,
        amount_cents BIGINT,
        occurred_at  BIGINT NOT NULL,
        properties   JSONB  NOT NULL
    ) ON COMMIT DELETE ROWS";

const PG_COPY: &str = "COPY events_import FROM STDIN";

/// Rows are inserted in file order, so of two with one `external_id` the first stays.
const PG_INSERT: &str = "
    INSERT INTO events (external_id, recipient_id, kind, product_id, amount_cents,
                        occurred_at, properties)
    SELECT external_id, recipient_id, kind, product_id, amount_cents, occurred_at, properties
    FROM events_import ORDER BY seq
    ON CONFLICT (external_id) DO NOTHING";

/// `$1`: a JSON array of rows, each an array in the column order below.
const SQLITE_INSERT: &str = "
    INSERT INTO events (external_id, recipient_id, kind, product_id, amount_cents,
                        occurred_at, properties)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
           value ->> 5, value -> 6
    FROM json_each($1) WHERE true
    ON CONFLICT (external_id) DO NOTHING";

impl Store {
    /// Appends events in one transaction; returns how many were new (an event whose
    /// `external_id` is already stored, or earlier in the batch, is skipped).
    pub async fn insert_events(&self, batch: &[NewEvent]) -> Result<u64, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let inserted = insert_postgres(&mut tx, batch).await?;
                tx.commit().await?;
                Ok(inserted)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let inserted = insert_sqlite(&mut tx, batch).await?;
                tx.commit().await?;
                Ok(inserted)
            }
        }
    }

    /// email key → recipient id for the given lower-cased addresses that exist, in
    /// one query.
    pub async fn recipient_ids(&self, keys: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = match &self.db {
            Db::Sqlite(pool) => {
                let json = serde_json::to_string(keys).expect("strings serialise");
                let sql = "SELECT email_key, id FROM recipients
                           WHERE email_key IN (SELECT value FROM json_each($1))";
                sqlx::query_as(sql).bind(&json).fetch_all(pool).await?
            }
            // `= ANY` and not a set-returning function: during a large import the
            // statistics still call the table small, and the planner would hash-join a
            // full scan of it for every batch.
            Db::Postgres(pool) => {
                let sql = "SELECT email_key, id FROM recipients WHERE email_key = ANY($1)";
                sqlx::query_as(sql).bind(keys).fetch_all(pool).await?
            }
        };
        Ok(rows.into_iter().collect())
    }

    pub async fn count_events(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool =>
            sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(pool).await)?;
        Ok(n)
    }
}

async fn insert_postgres(conn: &mut PgConnection, batch: &[NewEvent]) -> Result<u64, StoreError> {
    sqlx::raw_sql(PG_STAGE).execute(&mut *conn).await?;
    let mut copy = CopyText::with_capacity(batch.len() * 128);
    for (seq, event) in batch.iter().enumerate() {
        copy.int(seq as i64)
            .optional_text(event.external_id.as_deref())
            .int(event.recipient_id)
            .text(&event.kind)
            .optional_int(event.product_id)
            .optional_int(event.amount_cents)
            .int(event.occurred_at)
            .json(&event.properties);
        copy.end_row();
    }
    let mut stream = conn.copy_in_raw(PG_COPY).await?;
    stream.send(copy.as_bytes()).await?;
    stream.finish().await?;
    let result = sqlx::query(PG_INSERT).execute(&mut *conn).await?;
    Ok(result.rows_affected())
}

async fn insert_sqlite(conn: &mut SqliteConnection, batch: &[NewEvent]) -> Result<u64, StoreError> {
    let rows: Vec<_> = batch
        .iter()
        .map(|e| {
            (
                &e.external_id,
                e.recipient_id,
                &e.kind,
                e.product_id,
                e.amount_cents,
                e.occurred_at,
                &e.properties,
            )
        })
        .collect();
    let rows = serde_json::to_string(&rows).expect("rows serialise");
    let result = sqlx::query(SQLITE_INSERT)
        .bind(rows)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected())
}
