//! The link-signing key ring mailcast generates for itself when none is configured
//! (`links::KeyRing::load`): kept here so that every process on this database uses it.

use super::{Store, StoreError, on_pool};

impl Store {
    /// The stored link keys as (id, hex secret), the signing key (newest) first; empty
    /// until the first process started without configured keys.
    pub async fn link_keys(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let sql = "SELECT id, secret FROM link_keys ORDER BY created_at DESC, id DESC";
        let keys = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(keys)
    }

    /// Stores a key unless one with its id exists; true when this call stored it. Two
    /// processes starting at once both offer a key, and both then read the one stored.
    pub async fn add_link_key_if_absent(
        &self,
        id: i64,
        secret_hex: &str,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO link_keys (id, secret, created_at) VALUES ($1, $2, $3)
                   ON CONFLICT (id) DO NOTHING";
        let stored = on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(secret_hex)
            .bind(crate::time::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(stored == 1)
    }
}
