//! Everything held about one recipient (export), and erasure: personal data goes, a
//! hashed suppression stays so that a later import of the address is never mailed.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::audience::LEDGER_LOCK;
use super::{Engine, Recipient, Store, StoreError, on_pool};
use crate::domain::EmailAddress;

#[derive(Debug, Clone, Serialize)]
pub struct RecipientExport {
    pub recipient: Recipient,
    pub consents: Vec<ConsentRecord>,
    pub events: Vec<EventRecord>,
    pub deliveries: Vec<DeliveryRecord>,
    pub tracking_events: Vec<TrackingRecord>,
    pub suppression: Option<SuppressionRecord>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConsentRecord {
    pub topic: String,
    pub status: String,
    pub source: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub external_id: Option<String>,
    pub kind: String,
    pub sku: Option<String>,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
    pub properties: Json<Value>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub campaign: String,
    pub status: String,
    pub attempts: i64,
    pub message_id: Option<String>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TrackingRecord {
    pub kind: String,
    pub campaign_id: i64,
    pub url: Option<String>,
    pub occurred_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub verdict: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SuppressionRecord {
    pub reason: String,
    pub created_at: i64,
}

impl Store {
    /// Everything the store holds about `email`; None when it holds no recipient.
    pub async fn export_recipient(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<RecipientExport>, StoreError> {
        let Some(recipient) = self.recipient_by_email(email).await? else {
            return Ok(None);
        };
        let id = recipient.id;
        Ok(Some(RecipientExport {
            consents: self.consent_records(id).await?,
            events: self.event_records(id).await?,
            deliveries: self.delivery_records(id).await?,
            tracking_events: self.tracking_records(id).await?,
            suppression: self.suppression_record(email).await?,
            recipient,
        }))
    }

    pub(crate) async fn consent_records(&self, id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        let sql = "SELECT t.name AS topic, c.status, c.source, c.updated_at
                   FROM consents c JOIN topics t ON t.id = c.topic_id
                   WHERE c.recipient_id = $1 ORDER BY t.name";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_all(pool).await)?)
    }

    async fn event_records(&self, id: i64) -> Result<Vec<EventRecord>, StoreError> {
        let sql = "SELECT e.external_id, e.kind, p.sku, e.amount_cents, e.occurred_at, e.properties
                   FROM events e LEFT JOIN products p ON p.id = e.product_id
                   WHERE e.recipient_id = $1 ORDER BY e.occurred_at, e.id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_all(pool).await)?)
    }

    async fn delivery_records(&self, id: i64) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = "SELECT c.name AS campaign, d.status, d.attempts, d.message_id, d.sent_at,
                          d.last_error
                   FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
                   WHERE d.recipient_id = $1 ORDER BY d.id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_all(pool).await)?)
    }

    async fn tracking_records(&self, id: i64) -> Result<Vec<TrackingRecord>, StoreError> {
        let sql = "SELECT t.kind, t.campaign_id, l.url, t.occurred_at, t.ip, t.user_agent,
                          t.verdict, t.reason
                   FROM tracking_events t
                   LEFT JOIN links l ON l.campaign_id = t.campaign_id AND l.link_id = t.link_id
                   WHERE t.recipient_id = $1 ORDER BY t.id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_all(pool).await)?)
    }

    async fn suppression_record(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<SuppressionRecord>, StoreError> {
        let sql = "SELECT reason, created_at FROM suppressions WHERE email_hash = $1";
        Ok(
            on_pool!(self, pool => sqlx::query_as(sql).bind(email.hash()).fetch_optional(pool).await)?,
        )
    }

    /// Deletes the recipient and everything about them (consents, events, deliveries,
    /// tracking events, received bounces about them and the `data` of their triggered
    /// sends), keeping only the
    /// SHA-256 of the address on the suppression list (its clear text removed). False
    /// when no such recipient exists. Their id is never given to anyone else (SQLite
    /// migration 0006; PostgreSQL identities never reuse), and events their old links
    /// cause later are not stored (`insert_tracking_events`).
    pub async fn erase_recipient(&self, email: &EmailAddress) -> Result<bool, StoreError> {
        let Some(recipient) = self.recipient_by_email(email).await? else {
            return Ok(false);
        };
        let suppress = "INSERT INTO suppressions (email_hash, email, reason, created_at)
                        VALUES ($1, NULL, 'erased on request', $2)
                        ON CONFLICT (email_hash) DO UPDATE SET email = NULL";
        let forget_data = match self.engine() {
            Engine::Sqlite => FORGET_SEND_DATA_SQLITE,
            Engine::Postgres => FORGET_SEND_DATA_POSTGRES,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if self.engine() == Engine::Postgres {
                // Waits for running freezes, which may still add this recipient.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(LEDGER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                // Waits for event inserts in flight (they checked the recipient
                // before this erasure began) and holds back new ones until the row is
                // gone, so that none of this person's events outlives the erasure.
                sqlx::query("LOCK TABLE tracking_events IN SHARE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(suppress)
                .bind(email.hash())
                .bind(crate::time::now())
                .execute(&mut *tx)
                .await?;
            sqlx::query(forget_data)
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            // Consents and events go with the row (ON DELETE CASCADE).
            sqlx::query("DELETE FROM recipients WHERE id = $1")
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            // A bounce quotes the address and often the message it returns.
            sqlx::query("DELETE FROM bounces
                         WHERE delivery_id IN (SELECT id FROM deliveries WHERE recipient_id = $1)
                            OR LOWER(recipient) = $2")
                .bind(recipient.id)
                .bind(email.key())
                .execute(&mut *tx)
                .await?;
            // The ledger has no foreign keys on PostgreSQL (migration 0004). Deleted
            // after the row, whose lock a triggered send adding a delivery waits for.
            sqlx::query("DELETE FROM deliveries WHERE recipient_id = $1")
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            // Event inserts store nothing for a recipient without a row.
            sqlx::query("DELETE FROM tracking_events WHERE recipient_id = $1")
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM recipient_engagement WHERE recipient_id = $1")
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM link_clicks WHERE recipient_id = $1")
                .bind(recipient.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }
}

/// A triggered send is a campaign of one recipient whose settings hold that send's
/// `data` (an order number, a name): personal data that goes with the recipient. Only
/// triggered sends set `data`, so clearing it from every campaign the recipient has a
/// delivery in touches nobody else's.
const FORGET_SEND_DATA_SQLITE: &str = "
    UPDATE campaigns SET settings = json_remove(settings, '$.data')
    WHERE id IN (SELECT campaign_id FROM deliveries WHERE recipient_id = $1)
      AND json_type(settings, '$.data') IS NOT NULL";

const FORGET_SEND_DATA_POSTGRES: &str = "
    UPDATE campaigns SET settings = settings - 'data'
    WHERE id IN (SELECT campaign_id FROM deliveries WHERE recipient_id = $1)
      AND settings -> 'data' IS NOT NULL";
