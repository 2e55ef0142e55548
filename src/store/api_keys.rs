//! CRM API keys. Only a SHA-256 of each key is stored: keys are 256 random bits, so a
//! fast hash is enough and a leaked table reveals no usable key.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    /// The id of a named scope for idempotency keys that do not come through the API
    /// (`mailcast send`), created on first use. It cannot authenticate: its stored hash
    /// is not hex, so no key hashes to it.
    pub async fn internal_scope(&self, name: &str) -> Result<i64, StoreError> {
        let insert = "INSERT INTO api_keys (name, key_hash, created_at) VALUES ($1, $2, $3)
                      ON CONFLICT (name) DO NOTHING";
        on_pool!(self, pool => sqlx::query(insert)
            .bind(name).bind(format!("internal:{name}")).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM api_keys WHERE name = $1").bind(name).fetch_one(pool).await)?;
        Ok(id)
    }

    /// Stores a key's hash under a unique name.
    pub async fn create_api_key(&self, name: &str, key_hash: &str) -> Result<ApiKey, StoreError> {
        let sql = "INSERT INTO api_keys (name, key_hash, created_at) VALUES ($1, $2, $3)
                   RETURNING id, name, created_at";
        let result = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(name)
            .bind(key_hash)
            .bind(crate::time::now())
            .fetch_one(pool)
            .await);
        result.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Invalid(format!("an API key named '{name}' exists already"))
            }
            _ => StoreError::Query(error),
        })
    }

    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = "SELECT id, name, created_at FROM api_keys WHERE key_hash = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(key_hash).fetch_optional(pool).await)?)
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = "SELECT id, name, created_at FROM api_keys ORDER BY name";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Deletes the key named `name`; false when there was none.
    pub async fn revoke_api_key(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM api_keys WHERE name = $1")
            .bind(name).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }
}
