//! Products in bulk: one set-based upsert per batch, through COPY into a staging
//! table on PostgreSQL and one JSON array bound to one statement on SQLite. A sku
//! repeated in a batch is stored once, from its last row, as applying the rows in
//! order would leave it.

use std::collections::HashMap;

use sqlx::{PgConnection, SqliteConnection};

use super::copy_text::CopyText;
use super::recipients::count_rows;
use super::{Db, NewProduct, Store, StoreError, UpsertCounts, WRITE_FROM_THE_START};

/// The notice "relation already exists, skipping" would be logged once per batch.
const PG_STAGE: &str = "
    SET LOCAL client_min_messages = warning;
    CREATE TEMP TABLE IF NOT EXISTS products_import (
        seq         BIGINT  NOT NULL,
        sku         TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        url         TEXT    NOT NULL,
        image_url   TEXT,
        price_cents BIGINT  NOT NULL,
        currency    TEXT    NOT NULL,
        category    TEXT    NOT NULL,
        in_stock    BOOLEAN NOT NULL
    ) ON COMMIT DELETE ROWS";

const PG_COPY: &str = "COPY products_import FROM STDIN";

const SET_ON_CONFLICT: &str = "
    ON CONFLICT (sku) DO UPDATE SET
        name = excluded.name, url = excluded.url, image_url = excluded.image_url,
        price_cents = excluded.price_cents, currency = excluded.currency,
        category = excluded.category, in_stock = excluded.in_stock,
        updated_at = excluded.updated_at";

/// A returned row whose `xmax` is 0 was inserted, not updated.
fn pg_upsert() -> String {
    format!(
        "WITH upserted AS (
            INSERT INTO products (sku, name, url, image_url, price_cents, currency, category,
                                  in_stock, created_at, updated_at)
            SELECT sku, name, url, image_url, price_cents, currency, category, in_stock, $1, $1
            FROM products_import ORDER BY seq
            {SET_ON_CONFLICT}
            RETURNING xmax = 0 AS inserted)
        SELECT COUNT(*) FILTER (WHERE inserted) FROM upserted"
    )
}

/// `$1`: a JSON array of rows, each an array in the column order below.
fn sqlite_upsert() -> String {
    format!(
        "INSERT INTO products (sku, name, url, image_url, price_cents, currency, category,
                               in_stock, created_at, updated_at)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                value ->> 5, value ->> 6, value ->> 7, $2, $2
         FROM json_each($1) WHERE true
         {SET_ON_CONFLICT}"
    )
}

impl Store {
    /// Inserts or updates a batch of products in one transaction. Counts are per row:
    /// the first row of a sku the store did not hold is an insert, every other row an
    /// update.
    pub async fn upsert_products(&self, batch: &[NewProduct]) -> Result<UpsertCounts, StoreError> {
        if batch.is_empty() {
            return Ok(UpsertCounts::default());
        }
        let last = last_row_per_sku(batch);
        let now = crate::time::now();
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let inserted = upsert_postgres(&mut tx, &last, now).await?;
                tx.commit().await?;
                Ok(UpsertCounts {
                    inserted,
                    updated: batch.len() as u64 - inserted,
                })
            }
            Db::Sqlite(pool) => {
                let skus: Vec<String> = batch.iter().map(|p| p.sku.clone()).collect();
                let mut tx = pool.begin_with(WRITE_FROM_THE_START).await?;
                let existing = existing_skus_sqlite(&mut tx, &skus).await?;
                upsert_sqlite(&mut tx, &last, now).await?;
                tx.commit().await?;
                Ok(count_rows(&skus, &existing))
            }
        }
    }
}

/// One row per sku, its last, in the order each sku first appears.
fn last_row_per_sku(batch: &[NewProduct]) -> Vec<&NewProduct> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut rows: Vec<&NewProduct> = Vec::with_capacity(batch.len());
    for product in batch {
        match position.get(product.sku.as_str()) {
            Some(&at) => rows[at] = product,
            None => {
                position.insert(&product.sku, rows.len());
                rows.push(product);
            }
        }
    }
    rows
}

async fn upsert_postgres(
    conn: &mut PgConnection,
    rows: &[&NewProduct],
    now: i64,
) -> Result<u64, StoreError> {
    sqlx::raw_sql(PG_STAGE).execute(&mut *conn).await?;
    let mut copy = CopyText::with_capacity(rows.len() * 160);
    for (seq, p) in rows.iter().enumerate() {
        copy.int(seq as i64)
            .text(&p.sku)
            .text(&p.name)
            .text(&p.url)
            .optional_text(p.image_url.as_deref())
            .int(p.price_cents)
            .text(&p.currency)
            .text(&p.category)
            .text(if p.in_stock { "t" } else { "f" });
        copy.end_row();
    }
    let mut stream = conn.copy_in_raw(PG_COPY).await?;
    stream.send(copy.as_bytes()).await?;
    stream.finish().await?;
    let (inserted,): (i64,) = sqlx::query_as(super::built(&pg_upsert()))
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    Ok(inserted as u64)
}

async fn upsert_sqlite(
    conn: &mut SqliteConnection,
    rows: &[&NewProduct],
    now: i64,
) -> Result<(), StoreError> {
    let rows: Vec<_> = rows
        .iter()
        .map(|p| {
            (
                &p.sku,
                &p.name,
                &p.url,
                &p.image_url,
                p.price_cents,
                &p.currency,
                &p.category,
                p.in_stock,
            )
        })
        .collect();
    let rows = serde_json::to_string(&rows).expect("rows serialise");
    sqlx::query(super::built(&sqlite_upsert()))
        .bind(rows)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn existing_skus_sqlite(
    conn: &mut SqliteConnection,
    skus: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let json = serde_json::to_string(skus).expect("strings serialise");
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT sku FROM products WHERE sku IN (SELECT value FROM json_each($1))")
            .bind(&json)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}
