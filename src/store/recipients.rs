use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{Store, StoreError, on_pool};
use crate::domain::EmailAddress;

/// A recipient as an import or the API hands it over. `None` fields leave what the
/// store holds untouched on update; attributes are merged key by key.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub email: EmailAddress,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub attributes: serde_json::Map<String, Value>,
    pub created_at: Option<i64>,
    pub topics: Vec<String>,
    pub consent_source: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Recipient {
    pub id: i64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub attributes: Json<Value>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub status: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
}

impl UpsertCounts {
    pub fn add(&mut self, other: UpsertCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
    }
}

/// Per row: the first row of a key the store did not hold is an insert; every other
/// row (an existing key, or a key repeated in the batch) is an update.
pub(super) fn count_rows(keys: &[String], existing: &HashSet<String>) -> UpsertCounts {
    let mut seen = HashSet::with_capacity(keys.len());
    let mut counts = UpsertCounts::default();
    for key in keys {
        if existing.contains(key) || !seen.insert(key) {
            counts.updated += 1;
        } else {
            counts.inserted += 1;
        }
    }
    counts
}

impl Store {
    pub async fn ensure_topics(&self, names: &[&str]) -> Result<(), StoreError> {
        let mut names = names.to_vec();
        names.sort_unstable();
        names.dedup();
        for name in names {
            on_pool!(self, pool => sqlx::query(
                "INSERT INTO topics (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .execute(pool)
                .await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    pub async fn recipient_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Recipient>, StoreError> {
        let sql = "SELECT id, email, first_name, last_name, country, city, attributes, locale,
                          timezone, status, created_at
                   FROM recipients WHERE email_key = $1";
        let row = on_pool!(self, pool => sqlx::query_as::<_, Recipient>(sql)
            .bind(email.key())
            .fetch_optional(pool)
            .await)?;
        Ok(row)
    }

    pub async fn count_recipients(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool =>
            sqlx::query_as("SELECT COUNT(*) FROM recipients").fetch_one(pool).await)?;
        Ok(n)
    }

    /// Topics the recipient is currently subscribed to.
    pub async fn subscribed_topics(&self, recipient_id: i64) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT t.name FROM consents c JOIN topics t ON t.id = c.topic_id
                   WHERE c.recipient_id = $1 AND c.status = 'subscribed' ORDER BY t.name";
        let rows: Vec<(String,)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(recipient_id).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Records an opt-out of one topic, or of everything when `topic` is None.
    pub async fn unsubscribe(
        &self,
        recipient_id: i64,
        topic: Option<&str>,
        source: &str,
    ) -> Result<(), StoreError> {
        let now = crate::time::now();
        match topic {
            Some(topic) => on_pool!(self, pool => sqlx::query(
                "UPDATE consents SET status = 'unsubscribed', source = $3, updated_at = $4
                 WHERE recipient_id = $1
                   AND topic_id = (SELECT id FROM topics WHERE name = $2)")
                .bind(recipient_id).bind(topic).bind(source).bind(now)
                .execute(pool).await.map(|r| r.rows_affected()))?,
            None => on_pool!(self, pool => sqlx::query(
                "UPDATE recipients SET status = 'unsubscribed', updated_at = $2 WHERE id = $1")
                .bind(recipient_id).bind(now)
                .execute(pool).await.map(|r| r.rows_affected()))?,
        };
        Ok(())
    }
}
