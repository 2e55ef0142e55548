use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{Db, Store, StoreError, on_pool};
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

/// Attributes merge key by key on both engines: a new value replaces the old one
/// whole. `$13` holds `null` for every new key whose value is an object, so that
/// SQLite's `json_patch` (RFC 7396, recursive) replaces those objects instead of
/// merging into them; on PostgreSQL `||` already replaces them and `$13` is inert.
const UPSERT_SQLITE: &str = "
    INSERT INTO recipients (email, email_key, first_name, last_name, country, city,
                            attributes, locale, timezone, created_at, updated_at, email_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (email_key) DO UPDATE SET
        email = excluded.email,
        first_name = COALESCE(excluded.first_name, recipients.first_name),
        last_name = COALESCE(excluded.last_name, recipients.last_name),
        country = COALESCE(excluded.country, recipients.country),
        city = COALESCE(excluded.city, recipients.city),
        attributes = json_patch(json_patch(recipients.attributes, $13), excluded.attributes),
        locale = COALESCE(excluded.locale, recipients.locale),
        timezone = COALESCE(excluded.timezone, recipients.timezone),
        updated_at = excluded.updated_at";

const UPSERT_POSTGRES: &str = "
    INSERT INTO recipients (email, email_key, first_name, last_name, country, city,
                            attributes, locale, timezone, created_at, updated_at, email_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (email_key) DO UPDATE SET
        email = excluded.email,
        first_name = COALESCE(excluded.first_name, recipients.first_name),
        last_name = COALESCE(excluded.last_name, recipients.last_name),
        country = COALESCE(excluded.country, recipients.country),
        city = COALESCE(excluded.city, recipients.city),
        attributes = recipients.attributes || $13 || excluded.attributes,
        locale = COALESCE(excluded.locale, recipients.locale),
        timezone = COALESCE(excluded.timezone, recipients.timezone),
        updated_at = excluded.updated_at";

/// Consent from an import never overrides an opt-out the store already holds.
const ADD_CONSENT: &str = "
    INSERT INTO consents (recipient_id, topic_id, status, source, updated_at)
    SELECT r.id, t.id, 'subscribed', $3, $4
    FROM recipients r, topics t
    WHERE r.email_key = $1 AND t.name = $2
    ON CONFLICT (recipient_id, topic_id) DO NOTHING";

/// Per row: the first row of a key the store did not hold is an insert; every other
/// row (an existing key, or a key repeated in the batch) is an update.
fn count_rows(keys: &[String], existing: &HashSet<String>) -> UpsertCounts {
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

/// `{key: null}` for each attribute whose new value is an object.
fn replaced_objects(attributes: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    attributes
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(k, _)| (k.clone(), Value::Null))
        .collect()
}

impl Store {
    /// Inserts or updates a batch of recipients in one transaction. Counts are per
    /// row (see [`count_rows`]).
    pub async fn upsert_recipients(
        &self,
        batch: &[NewRecipient],
    ) -> Result<UpsertCounts, StoreError> {
        let now = crate::time::now();
        let topics: Vec<&str> = batch
            .iter()
            .flat_map(|r| r.topics.iter().map(String::as_str))
            .collect();
        self.ensure_topics(&topics).await?;
        let keys: Vec<String> = batch.iter().map(|r| r.email.key()).collect();
        let existing = self.existing_email_keys(&keys).await?;
        let upsert = match self.db {
            Db::Sqlite(_) => UPSERT_SQLITE,
            Db::Postgres(_) => UPSERT_POSTGRES,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for recipient in batch {
                let key = recipient.email.key();
                sqlx::query(upsert)
                    .bind(recipient.email.as_str())
                    .bind(&key)
                    .bind(&recipient.first_name)
                    .bind(&recipient.last_name)
                    .bind(&recipient.country)
                    .bind(&recipient.city)
                    .bind(Json(&recipient.attributes))
                    .bind(&recipient.locale)
                    .bind(&recipient.timezone)
                    .bind(recipient.created_at.unwrap_or(now))
                    .bind(now)
                    .bind(recipient.email.hash())
                    .bind(Json(replaced_objects(&recipient.attributes)))
                    .execute(&mut *tx)
                    .await?;
                for topic in &recipient.topics {
                    sqlx::query(ADD_CONSENT)
                        .bind(&key)
                        .bind(topic)
                        .bind(&recipient.consent_source)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(count_rows(&keys, &existing))
    }

    async fn existing_email_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = match &self.db {
            Db::Sqlite(pool) => {
                let json = serde_json::to_string(keys).expect("strings serialise");
                sqlx::query_as(
                    "SELECT email_key FROM recipients WHERE email_key IN (SELECT value FROM json_each($1))",
                )
                .bind(&json)
                .fetch_all(pool)
                .await?
            }
            // `= ANY` and not a set-returning function: during a large import the
            // statistics still call the table small, and the planner would hash-join a
            // full scan of it for every chunk.
            Db::Postgres(pool) => {
                sqlx::query_as("SELECT email_key FROM recipients WHERE email_key = ANY($1)")
                    .bind(keys)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

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
