//! Reads the dashboard's recipient pages need: pages of recipients by email prefix
//! (a range of keys in code point order) or newest first (by id), and bounded slices
//! of one recipient's history (the newest events and deliveries, opens and clicks
//! counted), so a recipient with a million events shows as fast as any other.

use serde::Serialize;

use super::{Engine, Store, StoreError, on_pool};

/// One line of the recipient list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RecipientLine {
    pub id: i64,
    pub email: String,
    /// The lower-cased address the list is searched and paged by.
    pub email_key: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub status: String,
    pub created_at: i64,
}

/// One event on a recipient's timeline, with the product it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TimelineEvent {
    pub kind: String,
    pub sku: Option<String>,
    pub product: Option<String>,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
}

/// One of a recipient's deliveries and the campaign it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RecipientDelivery {
    pub campaign_id: i64,
    /// None when the campaign is gone (PostgreSQL's ledger has no foreign keys).
    pub campaign: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A recipient's tracking events of one kind and verdict: how many, and the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TrackingTally {
    /// `open`, `click` or `unsubscribe`.
    pub kind: String,
    /// `human` or `machine`.
    pub verdict: String,
    pub count: i64,
    pub last_at: i64,
}

const LINE_COLUMNS: &str =
    "id, email, email_key, first_name, last_name, country, status, created_at";

/// Keys starting with `$2` from `$1` on (after it with `from_after`), below `$4` when
/// `bounded`, in key order. The range is exact in code point order only: SQLite's
/// BINARY, and PostgreSQL's "C", which its comparisons name because the database's
/// collation may order otherwise (in `en_US`, `liz@x` sorts above `li{`, the bound of
/// `liz`, and `user9@x` above `user:`, so the search would miss them). On SQLite the
/// range is one range of the unique index; PostgreSQL's unique index has the
/// database's collation, so there an index on `email_key COLLATE "C"` serves it.
/// `substr(…) = $2` keeps the filter exact whatever the range lets in.
fn prefix_page_sql(engine: Engine, from_after: bool, bounded: bool) -> String {
    let key = match engine {
        Engine::Sqlite => "email_key",
        Engine::Postgres => "email_key COLLATE \"C\"",
    };
    let lower = if from_after { ">" } else { ">=" };
    let (upper, limit) = if bounded {
        (format!(" AND {key} < $4"), "$5")
    } else {
        (String::new(), "$4")
    };
    format!(
        "SELECT {LINE_COLUMNS} FROM recipients
         WHERE {key} {lower} $1{upper} AND substr(email_key, 1, $3) = $2
         ORDER BY {key} LIMIT {limit}"
    )
}

/// The smallest string above every string that starts with `prefix`, in code point
/// order: the prefix with its last character one higher, after dropping trailing
/// `char::MAX`es. None when nothing is above (an empty prefix or only `char::MAX`).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value: surrogates are no chars and are skipped.
fn next_char(c: char) -> Option<char> {
    match c {
        char::MAX => None,
        '\u{D7FF}' => Some('\u{E000}'),
        _ => char::from_u32(c as u32 + 1),
    }
}

/// The newest events first, from the covering `(recipient_id, kind, occurred_at)`
/// index; only those rows are read whole.
const RECENT_EVENTS: &str = "
    SELECT e.kind, p.sku, p.name AS product, e.amount_cents, e.occurred_at
    FROM events e LEFT JOIN products p ON p.id = e.product_id
    WHERE e.id IN (SELECT id FROM events WHERE recipient_id = $1
                   ORDER BY occurred_at DESC, id DESC LIMIT $2)
    ORDER BY e.occurred_at DESC, e.id DESC";

const RECENT_DELIVERIES: &str = "
    SELECT d.campaign_id, c.name AS campaign, d.status, d.attempts, d.sent_at, d.last_error
    FROM deliveries d LEFT JOIN campaigns c ON c.id = d.campaign_id
    WHERE d.recipient_id = $1
    ORDER BY d.id DESC LIMIT $2";

/// From the `(recipient_id, kind, occurred_at, verdict)` index alone.
const TRACKING_TALLIES: &str = "
    SELECT kind, verdict, COUNT(*) AS count, MAX(occurred_at) AS last_at
    FROM tracking_events WHERE recipient_id = $1
    GROUP BY kind, verdict ORDER BY kind, verdict";

impl Store {
    /// Up to `limit` recipients whose `email_key` starts with `prefix` (already in key
    /// form: lower-cased), in key order, after the key `after` when given.
    pub async fn recipients_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecipientLine>, StoreError> {
        let after = after.filter(|after| *after >= prefix);
        let upper = prefix_upper_bound(prefix);
        let sql = prefix_page_sql(self.engine(), after.is_some(), upper.is_some());
        let prefix_chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        Ok(on_pool!(self, pool => {
            let query = sqlx::query_as(super::built(&sql))
                .bind(after.unwrap_or(prefix))
                .bind(prefix)
                .bind(prefix_chars);
            let query = match &upper {
                Some(upper) => query.bind(upper.as_str()),
                None => query,
            };
            query.bind(limit).fetch_all(pool).await
        })?)
    }

    /// Up to `limit` recipients, newest (highest id) first, older than `before`.
    pub async fn newest_recipients(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RecipientLine>, StoreError> {
        let sql = format!(
            "SELECT {LINE_COLUMNS} FROM recipients WHERE id < $1 ORDER BY id DESC LIMIT $2"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// The recipient's `limit` newest events, newest first.
    pub async fn recipient_recent_events(
        &self,
        recipient_id: i64,
        limit: i64,
    ) -> Result<Vec<TimelineEvent>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(RECENT_EVENTS)
            .bind(recipient_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// How many events the recipient has.
    pub async fn recipient_event_count(&self, recipient_id: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM events WHERE recipient_id = $1";
        self.count_for_recipient(sql, recipient_id).await
    }

    /// The recipient's `limit` newest deliveries (by when they were added), newest first.
    pub async fn recipient_recent_deliveries(
        &self,
        recipient_id: i64,
        limit: i64,
    ) -> Result<Vec<RecipientDelivery>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(RECENT_DELIVERIES)
            .bind(recipient_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// How many deliveries the recipient has.
    pub async fn recipient_delivery_count(&self, recipient_id: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM deliveries WHERE recipient_id = $1";
        self.count_for_recipient(sql, recipient_id).await
    }

    /// The one number `sql` (a `COUNT(*)` with the recipient's id as `$1`) answers.
    async fn count_for_recipient(
        &self,
        sql: &'static str,
        recipient_id: i64,
    ) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(recipient_id)
            .fetch_one(pool)
            .await)?;
        Ok(count)
    }

    /// The recipient's opens, clicks and unsubscribes per kind and verdict.
    pub async fn recipient_tracking_tallies(
        &self,
        recipient_id: i64,
    ) -> Result<Vec<TrackingTally>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(TRACKING_TALLIES)
            .bind(recipient_id)
            .fetch_all(pool)
            .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    #[test]
    fn the_upper_bound_raises_the_last_character() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a@").as_deref(), Some("aA"));
        assert_eq!(
            prefix_upper_bound("jos\u{e9}").as_deref(),
            Some("jos\u{ea}")
        );
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}").as_deref(),
            Some("x\u{E000}")
        );
    }

    #[test]
    fn the_upper_bound_carries_past_the_highest_character() {
        let max = char::MAX;
        assert_eq!(prefix_upper_bound(&format!("a{max}")).as_deref(), Some("b"));
        assert_eq!(
            prefix_upper_bound(&format!("ab{max}{max}")).as_deref(),
            Some("ac")
        );
        assert_eq!(prefix_upper_bound(&format!("{max}{max}")), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    #[test]
    fn every_string_with_the_prefix_lies_below_the_bound() {
        let prefix = "ann";
        let upper = prefix_upper_bound(prefix).unwrap();
        for key in ["ann", "anna@example.com", "ann\u{10FFFF}", "ann~"] {
            assert!(key >= prefix && key < upper.as_str(), "{key}");
        }
        for key in ["anm", "ano", "anO", "an"] {
            assert!(!(key >= prefix && key < upper.as_str()), "{key}");
        }
    }

    const PEOPLE: &str = "
        INSERT INTO recipients (id, email, email_key, email_hash, first_name, status,
                                created_at, updated_at)
        VALUES (1, 'Anna@example.com', 'anna@example.com', 'h1', 'Anna', 'active', 10, 10),
               (2, 'ann@example.com', 'ann@example.com', 'h2', NULL, 'active', 20, 20),
               (3, 'annabel@example.com', 'annabel@example.com', 'h3', NULL, 'active', 30, 30),
               (4, 'anm@example.com', 'anm@example.com', 'h4', NULL, 'active', 40, 40),
               (5, 'bob@example.com', 'bob@example.com', 'h5', NULL, 'unsubscribed', 50, 50)";

    fn keys(lines: &[RecipientLine]) -> Vec<&str> {
        lines.iter().map(|l| l.email_key.as_str()).collect()
    }

    async fn store_with_people() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&path).await.unwrap();
        store.execute_admin(PEOPLE).await;
        (dir, store)
    }

    #[tokio::test]
    async fn a_prefix_finds_its_keys_in_order_page_by_page() {
        let (_dir, store) = store_with_people().await;
        let all = store.recipients_by_prefix("ann", None, 10).await.unwrap();
        let expected = ["ann@example.com", "anna@example.com", "annabel@example.com"];
        assert_eq!(keys(&all), expected);

        let first = store.recipients_by_prefix("ann", None, 2).await.unwrap();
        assert_eq!(keys(&first), expected[..2]);
        let rest = store
            .recipients_by_prefix("ann", Some("anna@example.com"), 2)
            .await
            .unwrap();
        assert_eq!(keys(&rest), expected[2..]);
        // A key before the prefix (a tampered link) starts from the prefix.
        let tampered = store
            .recipients_by_prefix("ann", Some("a"), 10)
            .await
            .unwrap();
        assert_eq!(keys(&tampered), expected);
        assert!(
            store
                .recipients_by_prefix("zed", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_newest_come_first_page_by_page() {
        let (_dir, store) = store_with_people().await;
        let first = store.newest_recipients(None, 2).await.unwrap();
        assert_eq!(first.iter().map(|l| l.id).collect::<Vec<_>>(), [5, 4]);
        let next = store.newest_recipients(Some(4), 2).await.unwrap();
        assert_eq!(next.iter().map(|l| l.id).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(next[1].first_name, None);
    }

    #[tokio::test]
    async fn the_prefix_search_reads_one_range_of_the_unique_index() {
        let (_dir, store) = store_with_people().await;
        let Db::Sqlite(pool) = store.db() else {
            unreachable!("a file path opens SQLite")
        };
        for (from_after, bounded) in [(false, true), (true, true), (false, false)] {
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                prefix_page_sql(Engine::Sqlite, from_after, bounded)
            );
            let query = sqlx::query_as::<_, (i64, i64, i64, String)>(crate::store::built(&sql))
                .bind("ann")
                .bind("ann")
                .bind(3i32);
            let query = if bounded { query.bind("ano") } else { query };
            let plan = query.bind(50i64).fetch_all(pool).await.unwrap();
            let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            assert!(
                details
                    .iter()
                    .any(|d| d.contains("USING INDEX sqlite_autoindex_recipients")
                        && d.contains("email_key>")),
                "{details:?}"
            );
            assert!(
                !details.iter().any(|d| d.contains("TEMP B-TREE")),
                "{details:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_profile_reads_the_newest_slice_of_history() {
        let (_dir, store) = store_with_people().await;
        store
            .execute_admin(
                "INSERT INTO products (id, sku, name, url, price_cents, currency, category,
                                       created_at, updated_at)
                 VALUES (7, 'SKU-7', 'Teapot', 'https://shop.example.com/7', 1200, 'EUR', 'tea',
                         0, 0)",
            )
            .await;
        store
            .execute_admin(
                "INSERT INTO events (recipient_id, kind, product_id, amount_cents, occurred_at)
                 VALUES (1, 'view', 7, NULL, 100), (1, 'purchase', 7, 1200, 300),
                        (1, 'view', NULL, NULL, 200), (2, 'view', NULL, NULL, 400)",
            )
            .await;
        store
            .execute_admin(
                "INSERT INTO tracking_events (kind, campaign_id, recipient_id, occurred_at, verdict)
                 VALUES ('open', 1, 1, 10, 'machine'), ('open', 1, 1, 20, 'human'),
                        ('open', 1, 1, 30, 'human'), ('click', 1, 1, 25, 'human')",
            )
            .await;

        let events = store.recipient_recent_events(1, 2).await.unwrap();
        let times: Vec<i64> = events.iter().map(|e| e.occurred_at).collect();
        assert_eq!(times, [300, 200]);
        assert_eq!(events[0].product.as_deref(), Some("Teapot"));
        assert_eq!(events[0].amount_cents, Some(1200));
        assert_eq!(store.recipient_event_count(1).await.unwrap(), 3);
        assert_eq!(store.recipient_delivery_count(1).await.unwrap(), 0);
        assert!(
            store
                .recipient_recent_deliveries(1, 50)
                .await
                .unwrap()
                .is_empty()
        );

        let tallies = store.recipient_tracking_tallies(1).await.unwrap();
        let seen: Vec<(&str, &str, i64, i64)> = tallies
            .iter()
            .map(|t| (t.kind.as_str(), t.verdict.as_str(), t.count, t.last_at))
            .collect();
        assert_eq!(
            seen,
            [
                ("click", "human", 1, 25),
                ("open", "human", 2, 30),
                ("open", "machine", 1, 10)
            ]
        );
    }
}
