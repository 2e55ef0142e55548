//! What a delivery's message was rendered from, read back: its record, the recipient's
//! data in every kept version, and the products it named.

use std::collections::HashMap;

use super::{Product, Recipient, Store, StoreError, built, on_pool};

/// A delivery's state and, once handed to SMTP, what its message was rendered with.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentDelivery {
    pub id: i64,
    pub status: String,
    pub rendered_with: Option<String>,
    pub handed_at: Option<i64>,
}

impl Store {
    /// The delivery of campaign `campaign_id` to `recipient_id`, if there is one.
    pub async fn sent_delivery(
        &self,
        campaign_id: i64,
        recipient_id: i64,
    ) -> Result<Option<SentDelivery>, StoreError> {
        let sql = "SELECT id, status, rendered_with, handed_at FROM deliveries
                   WHERE campaign_id = $1 AND recipient_id = $2";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(campaign_id)
            .bind(recipient_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// The recipient's data as it is now, then each earlier version kept, newest first.
    /// Empty when there is no such recipient (or they were erased).
    pub async fn recipient_versions(
        &self,
        recipient_id: i64,
    ) -> Result<Vec<Recipient>, StoreError> {
        let Some(current) = self.recipient(recipient_id).await? else {
            return Ok(Vec::new());
        };
        let sql = "SELECT r.id, v.email, v.first_name, v.last_name, v.country, v.city,
                          v.attributes, v.locale, v.timezone, r.status, r.created_at
                   FROM recipient_versions v JOIN recipients r ON r.id = v.recipient_id
                   WHERE v.recipient_id = $1 ORDER BY v.id DESC";
        let older: Vec<Recipient> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(recipient_id).fetch_all(pool).await)?;
        Ok(std::iter::once(current).chain(older).collect())
    }

    /// The products with these ids that exist, by id.
    pub async fn products_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, Product>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let json = serde_json::to_string(ids).expect("ids serialise");
        let sql = format!(
            "SELECT id, sku, name, url, image_url, price_cents, currency, category, in_stock
             FROM products WHERE id IN ({})",
            self.json_ints(1)
        );
        let rows: Vec<Product> = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(&json).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
    }
}
