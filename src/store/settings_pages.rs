//! Reads the dashboard's settings page needs: API keys without their hashes, the link
//! keys stored for this database (ids and ages, never secrets), and what the delivery
//! ledger says about sending: the relays campaigns ask for, the outcomes of the last
//! hour, the deliveries waiting to retry and why, the campaigns that paused themselves.
//!
//! The ledger does not record which relay took a message, so outcomes are over all
//! relays. Every query stays cheap with millions of deliveries: outcomes only look at
//! the ledger of campaigns that may have sent in the window (through the
//! `(campaign_id, status)` index), and errors only at a bounded sample.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

/// An API key as the settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKeyListing {
    pub name: String,
    pub created_at: i64,
    /// A scope `mailcast send` keeps its idempotency keys under: no key authenticates
    /// with it, and revoking it would drop those keys.
    pub internal: bool,
}

/// A relay named by campaign settings (`smtp_relay`) and how many campaigns name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RelayUse {
    pub name: String,
    pub campaigns: i64,
    /// Of those, scheduled or running now.
    pub live: i64,
}

/// Deliveries whose outcome was written in a window, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecentOutcomes {
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub bounced: i64,
    /// The worker's lease ran out while the message was being handed over.
    pub unknown: i64,
}

/// One error text of deliveries waiting to retry and how often it occurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeferralReason {
    pub error: String,
    pub count: i64,
}

/// A campaign that paused itself (a relay refused the sender, too many render failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SelfPaused {
    pub id: i64,
    pub name: String,
    pub reason: String,
}

/// A link key stored for this database: its id and when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredLinkKeyId {
    pub id: i64,
    pub created_at: i64,
}

impl Store {
    /// Every API key's name and creation time, by name; never the hash.
    pub async fn api_key_listing(&self) -> Result<Vec<ApiKeyListing>, StoreError> {
        let sql = "SELECT name, created_at, key_hash LIKE 'internal:%' AS internal
                   FROM api_keys ORDER BY name";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// The ids of the link keys stored for this database, the signing one first.
    pub async fn stored_link_key_ids(&self) -> Result<Vec<StoredLinkKeyId>, StoreError> {
        let sql = "SELECT id, created_at FROM link_keys ORDER BY created_at DESC, id DESC";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Relays named by campaigns' `smtp_relay`, by name.
    pub async fn relays_in_use(&self) -> Result<Vec<RelayUse>, StoreError> {
        let sql = "SELECT settings ->> 'smtp_relay' AS name, COUNT(*) AS campaigns,
                          SUM(CASE WHEN status IN ('scheduled', 'running') THEN 1 ELSE 0 END)
                              AS live
                   FROM campaigns WHERE settings ->> 'smtp_relay' IS NOT NULL
                   GROUP BY settings ->> 'smtp_relay' ORDER BY 1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Outcomes written since `since` (unix seconds), over the campaigns that may have
    /// sent since then: sending now, or finished or paused since.
    pub async fn outcomes_since(&self, since: i64) -> Result<RecentOutcomes, StoreError> {
        // CROSS JOIN keeps SQLite on campaigns first, then each one's ledger through
        // the (campaign_id, status) index, rather than every `sent` row of all time.
        let sql = "SELECT d.status, COUNT(*) FROM campaigns c CROSS JOIN deliveries d
                   WHERE d.campaign_id = c.id
                     AND (c.status IN ('scheduled', 'running') OR c.finished_at >= $1
                          OR (c.status = 'paused' AND c.updated_at >= $1))
                     AND d.status IN ('sent', 'deferred', 'failed', 'bounced', 'unknown')
                     AND d.updated_at >= $1
                   GROUP BY d.status";
        let rows: Vec<(String, i64)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(since).fetch_all(pool).await)?;
        Ok(tally(&rows))
    }

    /// Deliveries waiting to retry now.
    pub async fn deferred_count(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM deliveries WHERE status = 'deferred'";
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(count)
    }

    /// The `limit` commonest errors among up to `sample` deliveries waiting to retry.
    pub async fn deferral_reasons(
        &self,
        sample: i64,
        limit: i64,
    ) -> Result<Vec<DeferralReason>, StoreError> {
        let sql = "SELECT COALESCE(s.last_error, '') AS error, COUNT(*) AS count
                   FROM (SELECT last_error FROM deliveries WHERE status = 'deferred' LIMIT $1) s
                   GROUP BY COALESCE(s.last_error, '') ORDER BY 2 DESC, 1 LIMIT $2";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(sample).bind(limit).fetch_all(pool).await)?)
    }

    /// Paused campaigns that paused themselves, most recent first.
    pub async fn self_paused_campaigns(&self, limit: i64) -> Result<Vec<SelfPaused>, StoreError> {
        let sql = "SELECT id, name, pause_reason AS reason FROM campaigns
                   WHERE status = 'paused' AND pause_reason IS NOT NULL
                   ORDER BY updated_at DESC, id DESC LIMIT $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(limit).fetch_all(pool).await)?)
    }
}

fn tally(rows: &[(String, i64)]) -> RecentOutcomes {
    let mut outcomes = RecentOutcomes::default();
    for (status, count) in rows {
        let slot = match status.as_str() {
            "sent" => &mut outcomes.sent,
            "deferred" => &mut outcomes.deferred,
            "failed" => &mut outcomes.failed,
            "bounced" => &mut outcomes.bounced,
            "unknown" => &mut outcomes.unknown,
            _ => continue,
        };
        *slot += count;
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Campaigns 1 (done long ago), 2 (running), 3 (paused itself lately) and 4 (done
    /// lately), their ledgers, a key and the CLI's internal scope, two link keys.
    const SEED: &[&str] = &[
        "INSERT INTO templates (id, name, version, subject, html, created_at, updated_at)
         VALUES (1, 'welcome', 1, 'Hi', '<p>Hi</p>', 0, 0)",
        "INSERT INTO recipients (id, email, email_key, email_hash, created_at, updated_at)
         VALUES (1, 'a@example.com', 'a@example.com', 'h1', 0, 0),
                (2, 'b@example.com', 'b@example.com', 'h2', 0, 0),
                (3, 'c@example.com', 'c@example.com', 'h3', 0, 0)",
        r#"INSERT INTO campaigns (id, name, status, template_id, from_name, from_email,
                                 settings, finished_at, pause_reason, created_at, updated_at)
         VALUES (1, 'old', 'done', 1, 'S', 's@example.com', '{"smtp_relay":null}', 100,
                 NULL, 0, 100),
                (2, 'live', 'running', 1, 'S', 's@example.com', '{"smtp_relay":"backup"}',
                 NULL, NULL, 0, 9000),
                (3, 'stuck', 'paused', 1, 'S', 's@example.com', '{"smtp_relay":"backup"}',
                 NULL, 'the relay refused the sender', 0, 9500),
                (4, 'other', 'done', 1, 'S', 's@example.com', '{"smtp_relay":"primary"}',
                 9800, NULL, 0, 9800)"#,
        "INSERT INTO deliveries (campaign_id, recipient_id, status, last_error, created_at,
                                 updated_at)
         VALUES (1, 1, 'sent', NULL, 0, 100),
                (1, 2, 'deferred', '421 busy', 0, 9990),
                (2, 1, 'sent', NULL, 0, 9900),
                (2, 2, 'deferred', '421 busy', 0, 9950),
                (2, 3, 'failed', '550 no such user', 0, 9960),
                (3, 1, 'deferred', 'Connection error: refused', 0, 9970),
                (3, 2, 'sent', NULL, 0, 5000),
                (4, 1, 'bounced', NULL, 0, 9999),
                (4, 2, 'unknown', NULL, 0, 9999),
                (4, 3, 'pending', NULL, 0, 9999)",
        "INSERT INTO api_keys (name, key_hash, created_at)
         VALUES ('crm', 'abc123', 5), ('mailcast-cli', 'internal:mailcast-cli', 6)",
        "INSERT INTO link_keys (id, secret, created_at) VALUES (1, 'aa', 10), (2, 'bb', 20)",
    ];

    async fn seeded() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&path).await.unwrap();
        for statement in SEED {
            store.execute_admin(statement).await;
        }
        (dir, store)
    }

    #[tokio::test]
    async fn keys_are_listed_without_hashes_and_scopes_are_marked() {
        let (_dir, store) = seeded().await;
        let listing = store.api_key_listing().await.unwrap();
        let named: Vec<(&str, bool)> = listing
            .iter()
            .map(|k| (k.name.as_str(), k.internal))
            .collect();
        assert_eq!(named, [("crm", false), ("mailcast-cli", true)]);
        let ids = store.stored_link_key_ids().await.unwrap();
        let ids: Vec<i64> = ids.iter().map(|k| k.id).collect();
        assert_eq!(ids, [2, 1]);
    }

    #[tokio::test]
    async fn the_ledger_tells_what_it_knows_about_sending() {
        let (_dir, store) = seeded().await;
        let relays = store.relays_in_use().await.unwrap();
        let relays: Vec<(&str, i64, i64)> = relays
            .iter()
            .map(|r| (r.name.as_str(), r.campaigns, r.live))
            .collect();
        assert_eq!(relays, [("backup", 2, 1), ("primary", 1, 0)]);

        // The old campaign's rows are left out; so is the paused one's old `sent`.
        let recent = store.outcomes_since(6400).await.unwrap();
        let expected = RecentOutcomes {
            sent: 1,
            deferred: 2,
            failed: 1,
            bounced: 1,
            unknown: 1,
        };
        assert_eq!(recent, expected);

        assert_eq!(store.deferred_count().await.unwrap(), 3);
        let reasons = store.deferral_reasons(1000, 5).await.unwrap();
        assert_eq!(reasons[0].error, "421 busy");
        assert_eq!(reasons[0].count, 2);
        assert_eq!(reasons.len(), 2);
        assert_eq!(store.deferral_reasons(1000, 1).await.unwrap().len(), 1);

        let paused = store.self_paused_campaigns(10).await.unwrap();
        assert_eq!(paused.len(), 1);
        assert_eq!(paused[0].name, "stuck");
        assert_eq!(paused[0].reason, "the relay refused the sender");
    }

    #[test]
    fn outcomes_are_tallied_by_status() {
        let rows = vec![
            ("sent".to_string(), 7),
            ("deferred".to_string(), 2),
            ("pending".to_string(), 100),
            ("unknown".to_string(), 1),
        ];
        let outcomes = tally(&rows);
        assert_eq!(
            outcomes,
            RecentOutcomes {
                sent: 7,
                deferred: 2,
                failed: 0,
                bounced: 0,
                unknown: 1
            }
        );
    }
}
