use super::{Store, StoreError, on_pool};
use crate::domain::EmailAddress;

impl Store {
    pub async fn suppress(&self, email: &EmailAddress, reason: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO suppressions (email_hash, email, reason, created_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (email_hash) DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(email.hash())
            .bind(email.key())
            .bind(reason)
            .bind(crate::time::now())
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn is_suppressed(&self, email: &EmailAddress) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT reason FROM suppressions WHERE email_hash = $1")
            .bind(email.hash())
            .fetch_optional(pool)
            .await)?;
        Ok(row.is_some())
    }
}
