//! Idempotency keys of the CRM API: the first answer to a request is kept, so a client
//! retrying with the same key gets that answer again and nothing happens twice.

use super::{Store, StoreError, on_pool};

/// What the store holds for an Idempotency-Key a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new (or its record expired): this request handles it.
    Fresh,
    /// An earlier request finished with this answer.
    Replay {
        request_hash: String,
        status: u16,
        body: String,
    },
    /// An earlier request with this key has not finished.
    InProgress { request_hash: String },
}

impl Store {
    /// Takes `key` for this request unless a record younger than `ttl_seconds` exists.
    /// Expired records (of every key) are removed first.
    pub async fn claim_idempotency_key(
        &self,
        api_key_id: i64,
        key: &str,
        request_hash: &str,
        ttl_seconds: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = crate::time::now();
        on_pool!(self, pool => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now - ttl_seconds).execute(pool).await.map(|r| r.rows_affected()))?;
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO idempotency_keys (api_key_id, idem_key, request_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (api_key_id, idem_key) DO NOTHING")
            .bind(api_key_id).bind(key).bind(request_hash).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(IdempotencyClaim::Fresh);
        }
        let row: Option<(String, Option<i64>, Option<String>)> = on_pool!(self, pool =>
            sqlx::query_as(
                "SELECT request_hash, status, response FROM idempotency_keys
                 WHERE api_key_id = $1 AND idem_key = $2")
                .bind(api_key_id).bind(key).fetch_optional(pool).await)?;
        Ok(match row {
            // Removed between our insert and select: expired just now. Rare; the
            // client's retry gets a fresh claim.
            None => IdempotencyClaim::InProgress {
                request_hash: request_hash.to_string(),
            },
            Some((request_hash, Some(status), Some(body))) => IdempotencyClaim::Replay {
                request_hash,
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            Some((request_hash, _, _)) => IdempotencyClaim::InProgress { request_hash },
        })
    }

    /// Stores the answer given to the request that claimed `key`.
    pub async fn complete_idempotency_key(
        &self,
        api_key_id: i64,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4
             WHERE api_key_id = $1 AND idem_key = $2")
            .bind(api_key_id).bind(key).bind(i64::from(status)).bind(body)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets a claimed key whose request failed before doing anything, so that the
    /// client may retry with it.
    pub async fn release_idempotency_key(
        &self,
        api_key_id: i64,
        key: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idem_key = $2 AND status IS NULL")
            .bind(api_key_id).bind(key).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
