//! Tracking events (opens, clicks, unsubscribes) as the HTTP side records them, and
//! the look-ups its machine-traffic verdicts need.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::types::Json;

use super::{CampaignSettings, Db, Store, StoreError, built, on_pool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingKind {
    Open,
    Click,
    Unsubscribe,
}

impl TrackingKind {
    pub const ALL: [TrackingKind; 3] = [
        TrackingKind::Open,
        TrackingKind::Click,
        TrackingKind::Unsubscribe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrackingKind::Open => "open",
            TrackingKind::Click => "click",
            TrackingKind::Unsubscribe => "unsubscribe",
        }
    }
}

/// Whether a person or a machine (image proxy, scanner, link checker) caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Human,
    Machine,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::Machine => "machine",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrackingEvent {
    pub kind: TrackingKind,
    pub campaign_id: i64,
    pub recipient_id: i64,
    pub link_id: Option<i64>,
    pub occurred_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub verdict: Verdict,
    /// Why the verdict is `machine`; None for human events.
    pub reason: Option<String>,
}

/// A stored tracking event.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TrackingEvent {
    pub id: i64,
    pub kind: String,
    pub campaign_id: i64,
    pub recipient_id: i64,
    pub link_id: Option<i64>,
    pub occurred_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub verdict: String,
    pub reason: Option<String>,
}

/// A click already stored, for spotting a burst over several links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredClick {
    pub campaign_id: i64,
    pub recipient_id: i64,
    pub link_id: Option<i64>,
    pub occurred_at: i64,
    pub verdict: Verdict,
}

impl StoredClick {
    pub fn of(event: &NewTrackingEvent) -> StoredClick {
        StoredClick {
            campaign_id: event.campaign_id,
            recipient_id: event.recipient_id,
            link_id: event.link_id,
            occurred_at: event.occurred_at,
            verdict: event.verdict,
        }
    }
}

const COLUMNS: usize = 9;
/// Rows per INSERT statement: 9 columns × 1000 rows stays far below both engines'
/// limits on bound parameters.
pub const MAX_ROWS_PER_INSERT: usize = 1000;

impl Store {
    /// Appends events in one transaction: on SQLite one multi-row INSERT per
    /// [`MAX_ROWS_PER_INSERT`] rows, on PostgreSQL one INSERT of arrays. Events of
    /// recipients who no longer exist are dropped. Returns how many rows were written.
    pub async fn insert_tracking_events(
        &self,
        events: &[NewTrackingEvent],
    ) -> Result<u64, StoreError> {
        match &self.db {
            Db::Sqlite(pool) => {
                let mut written = 0;
                let mut tx = pool.begin().await?;
                for chunk in events.chunks(MAX_ROWS_PER_INSERT) {
                    let sql = insert_sql(chunk.len());
                    let mut query = sqlx::query(built(&sql));
                    for e in chunk {
                        query = query
                            .bind(e.kind.as_str())
                            .bind(e.campaign_id)
                            .bind(e.recipient_id)
                            .bind(e.link_id)
                            .bind(e.occurred_at)
                            .bind(e.ip.as_deref())
                            .bind(e.user_agent.as_deref())
                            .bind(e.verdict.as_str())
                            .bind(e.reason.as_deref());
                    }
                    written += query.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(written)
            }
            // One statement whatever the number of rows: atomic without a transaction
            // around it.
            Db::Postgres(pool) => Ok(columns(events)
                .bind(sqlx::query(INSERT_POSTGRES))
                .execute(pool)
                .await?
                .rows_affected()),
        }
    }

    /// A campaign's stored link target and the campaign's settings (UTM parameters).
    pub async fn link_target(
        &self,
        campaign_id: i64,
        link_id: i64,
    ) -> Result<Option<(String, CampaignSettings)>, StoreError> {
        let sql = "SELECT l.url, c.settings FROM links l JOIN campaigns c ON c.id = l.campaign_id
                   WHERE l.campaign_id = $1 AND l.link_id = $2";
        let row: Option<(String, Json<CampaignSettings>)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).bind(link_id).fetch_optional(pool).await)?;
        Ok(row.map(|(url, settings)| (url, settings.0)))
    }

    /// When each (campaign, recipient) pair's message was sent, for the pairs that
    /// have a sent delivery.
    pub async fn sent_times(
        &self,
        pairs: &[(i64, i64)],
    ) -> Result<HashMap<(i64, i64), i64>, StoreError> {
        if pairs.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT d.campaign_id, d.recipient_id, d.sent_at FROM deliveries d
             JOIN {} ON d.campaign_id = p.campaign_id AND d.recipient_id = p.recipient_id
             WHERE d.sent_at IS NOT NULL",
            self.pair_table()
        );
        let rows: Vec<(i64, i64, i64)> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(built(&sql))
                    .bind(pairs_json(pairs))
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                let (campaigns, recipients) = pair_arrays(pairs);
                sqlx::query_as(built(&sql))
                    .persistent(false)
                    .bind(campaigns)
                    .bind(recipients)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(c, r, at)| ((c, r), at)).collect())
    }

    /// Re-labels stored human clicks as machine clicks, with a reason. A click is named
    /// by its message, link and time: clicks alike in all four get the same verdict
    /// anyway. Returns how many changed.
    pub async fn mark_machine(
        &self,
        clicks: &[StoredClick],
        reason: &str,
    ) -> Result<u64, StoreError> {
        if clicks.is_empty() {
            return Ok(0);
        }
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                let keys: Vec<(i64, i64, Option<i64>, i64)> = clicks
                    .iter()
                    .map(|c| (c.campaign_id, c.recipient_id, c.link_id, c.occurred_at))
                    .collect();
                let json = serde_json::to_string(&keys).expect("clicks serialise");
                sqlx::query(MARK_MACHINE_SQLITE)
                    .bind(json)
                    .bind(reason)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(pool) => sqlx::query(MARK_MACHINE_POSTGRES)
                .persistent(false)
                .bind(clicks.iter().map(|c| c.campaign_id).collect::<Vec<_>>())
                .bind(clicks.iter().map(|c| c.recipient_id).collect::<Vec<_>>())
                .bind(clicks.iter().map(|c| c.link_id).collect::<Vec<_>>())
                .bind(clicks.iter().map(|c| c.occurred_at).collect::<Vec<_>>())
                .bind(reason)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    /// A campaign's events, oldest first.
    pub async fn tracking_events(
        &self,
        campaign_id: i64,
    ) -> Result<Vec<TrackingEvent>, StoreError> {
        let sql = "SELECT id, kind, campaign_id, recipient_id, link_id, occurred_at, ip,
                          user_agent, verdict, reason
                   FROM tracking_events WHERE campaign_id = $1 ORDER BY id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await)?)
    }

    /// Every stored event of one kind, all campaigns.
    pub async fn count_tracking_events(&self, kind: TrackingKind) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM tracking_events WHERE kind = $1")
            .bind(kind.as_str()).fetch_one(pool).await)?;
        Ok(n)
    }
}

const MARK_MACHINE_SQLITE: &str = "
    UPDATE tracking_events SET verdict = 'machine', reason = ?2
    WHERE id IN (
        SELECT t.id FROM json_each(?1) j
        JOIN tracking_events t
          ON t.campaign_id = json_extract(j.value, '$[0]') AND t.kind = 'click'
         AND t.recipient_id = json_extract(j.value, '$[1]')
        WHERE t.link_id IS json_extract(j.value, '$[2]')
          AND t.occurred_at = json_extract(j.value, '$[3]') AND t.verdict = 'human')";

const MARK_MACHINE_POSTGRES: &str = "
    UPDATE tracking_events t SET verdict = 'machine', reason = $5
    FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
         AS p(campaign_id, recipient_id, link_id, occurred_at)
    WHERE t.campaign_id = p.campaign_id AND t.kind = 'click'
      AND t.recipient_id = p.recipient_id AND t.link_id IS NOT DISTINCT FROM p.link_id
      AND t.occurred_at = p.occurred_at AND t.verdict = 'human'";

/// `INSERT … SELECT … FROM (VALUES (?, …), (?, …))` for `rows` rows. Anonymous
/// placeholders: binding numbered ones makes SQLite look each number up in a list,
/// which turns a 9000-parameter statement quadratic (a 1000-row batch took ~150 ms
/// instead of ~10). Only events of recipients who still exist are stored: an erased
/// person's old links must leave no IP address or user agent behind.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; COLUMNS].join(", "));
    let mut sql = String::from(
        "INSERT INTO tracking_events (kind, campaign_id, recipient_id, link_id, occurred_at,
                                      ip, user_agent, verdict, reason)
         SELECT * FROM (VALUES ",
    );
    sql.push_str(&vec![row; rows].join(", "));
    sql.push_str(") AS v WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.id = v.column3)");
    sql
}

/// One statement with nine array parameters, however many rows: PostgreSQL parses
/// and plans it once, instead of a statement with nine parameters per row. Events of
/// recipients who no longer exist (erased) are not stored.
const INSERT_POSTGRES: &str = "
    INSERT INTO tracking_events (kind, campaign_id, recipient_id, link_id, occurred_at,
                                 ip, user_agent, verdict, reason)
    SELECT kind, campaign_id, recipient_id, link_id, occurred_at, ip, user_agent, verdict, reason
    FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                $6::text[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY
         AS e(kind, campaign_id, recipient_id, link_id, occurred_at,
              ip, user_agent, verdict, reason, n)
    WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.id = e.recipient_id)
    ORDER BY e.n";

/// The events as one array per column.
struct Columns<'a> {
    kinds: Vec<&'static str>,
    campaigns: Vec<i64>,
    recipients: Vec<i64>,
    links: Vec<Option<i64>>,
    times: Vec<i64>,
    ips: Vec<Option<&'a str>>,
    agents: Vec<Option<&'a str>>,
    verdicts: Vec<&'static str>,
    reasons: Vec<Option<&'a str>>,
}

fn columns(events: &[NewTrackingEvent]) -> Columns<'_> {
    Columns {
        kinds: events.iter().map(|e| e.kind.as_str()).collect(),
        campaigns: events.iter().map(|e| e.campaign_id).collect(),
        recipients: events.iter().map(|e| e.recipient_id).collect(),
        links: events.iter().map(|e| e.link_id).collect(),
        times: events.iter().map(|e| e.occurred_at).collect(),
        ips: events.iter().map(|e| e.ip.as_deref()).collect(),
        agents: events.iter().map(|e| e.user_agent.as_deref()).collect(),
        verdicts: events.iter().map(|e| e.verdict.as_str()).collect(),
        reasons: events.iter().map(|e| e.reason.as_deref()).collect(),
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl<'a> Columns<'a> {
    fn bind<'q>(self, query: PgQuery<'q>) -> PgQuery<'q>
    where
        'a: 'q,
    {
        query
            .bind(self.kinds)
            .bind(self.campaigns)
            .bind(self.recipients)
            .bind(self.links)
            .bind(self.times)
            .bind(self.ips)
            .bind(self.agents)
            .bind(self.verdicts)
            .bind(self.reasons)
    }
}

fn pairs_json(pairs: &[(i64, i64)]) -> String {
    serde_json::to_string(pairs).expect("pairs serialise")
}

fn pair_arrays(pairs: &[(i64, i64)]) -> (Vec<i64>, Vec<i64>) {
    pairs.iter().copied().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_statement_has_a_placeholder_per_value() {
        let sql = insert_sql(2);
        assert!(
            sql.contains("(?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?)) AS v"),
            "{sql}"
        );
    }
}
