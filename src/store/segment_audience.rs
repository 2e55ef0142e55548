//! Questions about a compiled segment's audience: how many match and may be mailed,
//! who they are, and which of a campaign's declared segments each recipient is in.

use std::collections::HashMap;

use serde::Serialize;

use super::audience::ineligible_reason;
use super::{Engine, Recipient, SqlFilter, Store, StoreError, bind_filter, built, on_pool};

/// How a segment's matches divide. Every match is counted once, under the first
/// reason that excludes it (suppression, then status, then consent), so
/// `matching == eligible + excluded_by_suppression + excluded_by_status +
/// excluded_by_consent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SegmentCount {
    pub matching: i64,
    /// Active, not suppressed and (when a topic is given) subscribed to it: the
    /// recipients a campaign would freeze into its ledger.
    pub eligible: i64,
    pub excluded_by_suppression: i64,
    /// Unsubscribed from everything, bounced or erased.
    pub excluded_by_status: i64,
    /// Not subscribed to the topic.
    pub excluded_by_consent: i64,
}

const RECIPIENT_COLUMNS: &str = "r.id, r.email, r.first_name, r.last_name, r.country, r.city,
    r.attributes, r.locale, r.timezone, r.status, r.created_at";

impl Store {
    /// Counts the recipients matching `filter`, and why those that may not be mailed
    /// for `topic` (None: no topic, consent not checked) are excluded. An unknown
    /// topic is an error, not an empty audience.
    pub async fn count_segment(
        &self,
        filter: &SqlFilter,
        topic: Option<&str>,
    ) -> Result<SegmentCount, StoreError> {
        let topic_id = match topic {
            Some(name) => Some(self.topic_by_name(name).await?),
            None => None,
        };
        let sql = format!(
            "SELECT x.class, COUNT(*) FROM (
                SELECT CASE
                    WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = r.email_hash)
                        THEN 'suppression'
                    WHEN r.status <> 'active' THEN 'status'
                    WHEN ({}) IS NOT NULL THEN 'consent'
                    ELSE 'eligible' END AS class
                FROM recipients r WHERE ({})) x
             GROUP BY x.class",
            ineligible_reason("CAST($1 AS BIGINT)"),
            filter.shifted(1)
        );
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            let query = sqlx::query_as(built(&sql)).bind(topic_id);
            bind_filter!(query, filter).fetch_all(pool).await
        })?;
        Ok(tally(&rows))
    }

    /// Up to `limit` matching recipients, lowest id first.
    pub async fn sample_segment(
        &self,
        filter: &SqlFilter,
        limit: i64,
    ) -> Result<Vec<Recipient>, StoreError> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients r WHERE ({}) ORDER BY r.id LIMIT $1",
            filter.shifted(1)
        );
        Ok(on_pool!(self, pool => {
            let query = sqlx::query_as(built(&sql)).bind(limit.max(0));
            bind_filter!(query, filter).fetch_all(pool).await
        })?)
    }

    /// The ids of every matching recipient, ascending.
    pub async fn matching_ids(&self, filter: &SqlFilter) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT r.id FROM recipients r WHERE ({}) ORDER BY r.id",
            filter.sql
        );
        let rows: Vec<(i64,)> = on_pool!(self, pool => {
            let query = sqlx::query_as(built(&sql));
            bind_filter!(query, filter).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// For each of `recipient_ids`, the names of the `declared` segments it matches,
    /// in declared order: what a template sees as `segments`. One query per declared
    /// segment; every requested id has an entry.
    pub async fn recipient_segment_names(
        &self,
        recipient_ids: &[i64],
        declared: &[(String, SqlFilter)],
    ) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        let mut names: HashMap<i64, Vec<String>> =
            recipient_ids.iter().map(|id| (*id, Vec::new())).collect();
        if recipient_ids.is_empty() {
            return Ok(names);
        }
        let ids = serde_json::to_string(recipient_ids).expect("ids serialise");
        for (name, filter) in declared {
            for id in self.members_among(&ids, filter).await? {
                if let Some(list) = names.get_mut(&id) {
                    list.push(name.clone());
                }
            }
        }
        Ok(names)
    }

    /// Which of `ids` match `filter`.
    pub async fn matching_among(
        &self,
        ids: &[i64],
        filter: &SqlFilter,
    ) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let json = serde_json::to_string(ids).expect("ids serialise");
        self.members_among(&json, filter).await
    }

    /// Whether one recipient matches `filter` now.
    pub async fn recipient_matches(
        &self,
        recipient_id: i64,
        filter: &SqlFilter,
    ) -> Result<bool, StoreError> {
        let ids = format!("[{recipient_id}]");
        Ok(!self.members_among(&ids, filter).await?.is_empty())
    }

    /// Which of the ids in the JSON array `ids` match `filter`.
    async fn members_among(&self, ids: &str, filter: &SqlFilter) -> Result<Vec<i64>, StoreError> {
        let id_list = match self.engine() {
            Engine::Sqlite => "SELECT value FROM json_each($1)",
            Engine::Postgres => "SELECT jsonb_array_elements_text($1::jsonb)::bigint",
        };
        let sql = format!(
            "SELECT r.id FROM recipients r WHERE r.id IN ({id_list}) AND ({})",
            filter.shifted(1)
        );
        let rows: Vec<(i64,)> = on_pool!(self, pool => {
            let query = sqlx::query_as(built(&sql)).bind(ids);
            bind_filter!(query, filter).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn topic_by_name(&self, name: &str) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT id FROM topics WHERE name = $1")
                .bind(name).fetch_optional(pool).await)?;
        row.map(|(id,)| id)
            .ok_or_else(|| StoreError::not_found("topic", name))
    }
}

fn tally(rows: &[(String, i64)]) -> SegmentCount {
    let mut count = SegmentCount::default();
    for (class, n) in rows {
        let slot = match class.as_str() {
            "suppression" => &mut count.excluded_by_suppression,
            "status" => &mut count.excluded_by_status,
            "consent" => &mut count.excluded_by_consent,
            _ => &mut count.eligible,
        };
        *slot += n;
        count.matching += n;
    }
    count
}
