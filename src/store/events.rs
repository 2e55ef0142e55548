use std::collections::HashMap;

use serde_json::Value;
use sqlx::types::Json;

use super::{Store, StoreError, built, on_pool};

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

const INSERT: &str = "
    INSERT INTO events (external_id, recipient_id, kind, product_id, amount_cents,
                        occurred_at, properties)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (external_id) DO NOTHING";

impl Store {
    /// Appends events in one transaction; returns how many were new (an event whose
    /// `external_id` is already stored is skipped).
    pub async fn insert_events(&self, batch: &[NewEvent]) -> Result<u64, StoreError> {
        let mut inserted = 0;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for event in batch {
                let result = sqlx::query(INSERT)
                    .bind(&event.external_id)
                    .bind(event.recipient_id)
                    .bind(&event.kind)
                    .bind(event.product_id)
                    .bind(event.amount_cents)
                    .bind(event.occurred_at)
                    .bind(Json(&event.properties))
                    .execute(&mut *tx)
                    .await?;
                inserted += result.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(inserted)
    }

    /// email key → recipient id for the given lower-cased addresses that exist, in
    /// one query.
    pub async fn recipient_ids(&self, keys: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let json = serde_json::to_string(keys).expect("strings serialise");
        let sql = format!(
            "SELECT email_key, id FROM recipients WHERE email_key IN ({})",
            self.json_strings(1)
        );
        let rows: Vec<(String, i64)> = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(&json).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }

    pub async fn count_events(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool =>
            sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(pool).await)?;
        Ok(n)
    }
}
