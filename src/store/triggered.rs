//! Triggered sends: a single recipient put straight into a campaign's ledger, so the
//! message goes through the same claim, consent re-check, render and outcome recording
//! as every campaign message.

use super::{Store, StoreError, on_pool};

impl Store {
    /// Adds one pending delivery; false when the recipient already has one in this
    /// campaign.
    pub async fn add_delivery(
        &self,
        campaign_id: i64,
        recipient_id: i64,
    ) -> Result<bool, StoreError> {
        let sql =
            "INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
                   VALUES ($1, $2, 'pending', $3, $3)
                   ON CONFLICT (campaign_id, recipient_id) DO NOTHING";
        let added = on_pool!(self, pool => sqlx::query(sql)
            .bind(campaign_id).bind(recipient_id).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(added == 1)
    }
}
