//! A campaign's opens and clicks over time, for the dashboard's engagement chart.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

/// Recipients who opened, or clicked, within one time bucket: people and machines
/// (image proxies, link scanners) apart.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TimelineBucket {
    /// Start of the bucket, unix seconds: a multiple of the bucket size.
    pub bucket: i64,
    /// `open` or `click`.
    pub kind: String,
    pub human: i64,
    pub machine: i64,
}

/// Distinct recipients per bucket, kind and verdict, the way the campaign statistics
/// count unique opens and clicks. Both columns are integers on both engines, so `/`
/// truncates alike. `t.kind` in the WHERE clause lets the
/// `(campaign_id, kind, recipient_id)` index select the rows.
const TIMELINE: &str = "
    SELECT t.occurred_at / $2 * $2 AS bucket, t.kind,
           COUNT(DISTINCT CASE WHEN t.verdict = 'human' THEN t.recipient_id END) AS human,
           COUNT(DISTINCT CASE WHEN t.verdict = 'machine' THEN t.recipient_id END) AS machine
    FROM tracking_events t
    WHERE t.campaign_id = $1 AND t.kind IN ('open', 'click')
    GROUP BY bucket, t.kind
    ORDER BY bucket, t.kind";

impl Store {
    /// A campaign's opens and clicks in buckets of `bucket_seconds` (at least one
    /// second), oldest first, clicks before opens within a bucket. Each bucket counts
    /// distinct recipients, so a recipient active in two buckets counts in both, and
    /// one whose events were judged both ways counts as human and as machine. Buckets
    /// without events are left out.
    pub async fn engagement_timeline(
        &self,
        campaign_id: i64,
        bucket_seconds: i64,
    ) -> Result<Vec<TimelineBucket>, StoreError> {
        let bucket_seconds = bucket_seconds.max(1);
        Ok(on_pool!(self, pool => sqlx::query_as(TIMELINE)
            .bind(campaign_id)
            .bind(bucket_seconds)
            .fetch_all(pool)
            .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = "
        INSERT INTO tracking_events (kind, campaign_id, recipient_id, occurred_at, verdict)
        VALUES ('open', 1, 10, 3610, 'human'),
               ('open', 1, 10, 3620, 'human'),
               ('open', 1, 11, 3630, 'machine'),
               ('unsubscribe', 1, 10, 3640, 'human'),
               ('click', 1, 10, 7205, 'human'),
               ('click', 1, 11, 7206, 'human'),
               ('open', 1, 10, 7300, 'human'),
               ('open', 2, 12, 3615, 'human')";

    fn bucket(bucket: i64, kind: &str, human: i64, machine: i64) -> TimelineBucket {
        TimelineBucket {
            bucket,
            kind: kind.into(),
            human,
            machine,
        }
    }

    #[tokio::test]
    async fn counts_distinct_recipients_per_bucket_kind_and_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&path).await.unwrap();
        store.execute_admin(EVENTS).await;

        let timeline = store.engagement_timeline(1, 3600).await.unwrap();
        assert_eq!(
            timeline,
            [
                bucket(3600, "open", 1, 1),
                bucket(7200, "click", 2, 0),
                bucket(7200, "open", 1, 0),
            ]
        );

        let one_bucket = store.engagement_timeline(1, 86_400).await.unwrap();
        assert_eq!(
            one_bucket,
            [bucket(0, "click", 2, 0), bucket(0, "open", 1, 1)]
        );
        assert!(store.engagement_timeline(3, 3600).await.unwrap().is_empty());
    }
}
