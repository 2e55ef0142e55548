//! What the unsubscribe and preferences page reads and writes, and consents the CRM
//! API grants with their own source and time.

use serde::Serialize;

use super::{Recipient, Store, StoreError, on_pool};

/// One topic the recipient has a consent record for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TopicChoice {
    pub name: String,
    pub description: String,
    pub subscribed: bool,
}

impl Store {
    pub async fn recipient(&self, id: i64) -> Result<Option<Recipient>, StoreError> {
        let sql = "SELECT id, email, first_name, last_name, country, city, attributes, locale,
                          timezone, status, created_at
                   FROM recipients WHERE id = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Every topic the recipient has a consent record for, subscribed or not, by name.
    pub async fn topic_choices(&self, recipient_id: i64) -> Result<Vec<TopicChoice>, StoreError> {
        let sql = "SELECT t.name, t.description,
                          CASE WHEN c.status = 'subscribed' THEN TRUE ELSE FALSE END AS subscribed
                   FROM consents c JOIN topics t ON t.id = c.topic_id
                   WHERE c.recipient_id = $1 ORDER BY t.name";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(recipient_id).fetch_all(pool).await)?)
    }

    /// Records consent to `topics` given at `at` through `source` for the recipient
    /// keyed `email_key`. Like an import, it never overrides an opt-out the store holds.
    /// Returns how many consents were new.
    pub async fn grant_consents(
        &self,
        email_key: &str,
        topics: &[String],
        source: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.ensure_topics(&names).await?;
        let sql = "INSERT INTO consents (recipient_id, topic_id, status, source, updated_at)
                   SELECT r.id, t.id, 'subscribed', $3, $4
                   FROM recipients r, topics t
                   WHERE r.email_key = $1 AND t.name = $2
                   ON CONFLICT (recipient_id, topic_id) DO NOTHING";
        let mut added = 0;
        for topic in topics {
            added += on_pool!(self, pool => sqlx::query(sql)
                .bind(email_key).bind(topic).bind(source).bind(at)
                .execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(added)
    }
}
