//! Triggered sends: a single recipient put straight into a campaign's ledger, so the
//! message goes through the same claim, consent re-check, render and outcome recording
//! as every campaign message.

use super::{Engine, Store, StoreError, on_pool};

const ADD_SQLITE: &str = "
    INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
    VALUES ($1, $2, 'pending', $3, $3)
    ON CONFLICT (campaign_id, recipient_id) DO NOTHING";

const ADD_POSTGRES: &str = "
    INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
    SELECT c.id, r.id, 'pending', $3, $3
    FROM campaigns c, recipients r
    WHERE c.id = $1 AND r.id = $2
    FOR KEY SHARE
    ON CONFLICT (campaign_id, recipient_id) DO NOTHING";

impl Store {
    /// Adds one pending delivery; false when the recipient already has one in this
    /// campaign (or, on PostgreSQL, when the campaign or recipient no longer exists).
    pub async fn add_delivery(
        &self,
        campaign_id: i64,
        recipient_id: i64,
    ) -> Result<bool, StoreError> {
        // PostgreSQL: the ledger has no foreign keys (migration 0004); locking the
        // recipient row keeps a concurrent erasure from leaving this delivery behind.
        let sql = match self.engine() {
            Engine::Sqlite => ADD_SQLITE,
            Engine::Postgres => ADD_POSTGRES,
        };
        let added = on_pool!(self, pool => sqlx::query(sql)
            .bind(campaign_id).bind(recipient_id).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(added == 1)
    }
}

const ADD_MANY_SQLITE: &str = "
    INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
    SELECT value ->> 0, value ->> 1, 'pending', $2, $2 FROM json_each($1) WHERE true
    ON CONFLICT (campaign_id, recipient_id) DO NOTHING";

const ADD_MANY_POSTGRES: &str = "
    INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
    SELECT c.id, r.id, 'pending', $2, $2
    FROM jsonb_array_elements(CAST($1 AS JSONB)) j, campaigns c, recipients r
    WHERE c.id = (j.value ->> 0)::BIGINT AND r.id = (j.value ->> 1)::BIGINT
    FOR KEY SHARE OF c, r
    ON CONFLICT (campaign_id, recipient_id) DO NOTHING";

impl Store {
    /// [`Store::add_delivery`] for many `(campaign_id, recipient_id)` pairs in one
    /// statement; returns how many were new.
    pub async fn add_deliveries(&self, pairs: &[(i64, i64)]) -> Result<u64, StoreError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let sql = match self.engine() {
            Engine::Sqlite => ADD_MANY_SQLITE,
            Engine::Postgres => ADD_MANY_POSTGRES,
        };
        let json = serde_json::to_string(pairs).expect("pairs serialise");
        Ok(on_pool!(self, pool => sqlx::query(sql)
            .bind(json).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
