//! The delivery ledger: one row per (campaign, recipient), moved through
//! pending → sending → sent | deferred | failed | suppressed | unknown; a sent (or
//! unknown) delivery that a hard bounce reports afterwards becomes bounced.

use serde::Serialize;

use super::{Db, Recipient, Store, StoreError, built, on_pool};
use crate::domain::DeliveryStatus;
use crate::schedule::FrequencyCap;

use super::audience::ineligible_reason_for;

/// A request to lease up to `limit` deliveries of one campaign to one worker.
#[derive(Debug, Clone)]
pub struct Claim {
    pub campaign_id: i64,
    pub worker: String,
    pub limit: i64,
    pub lease_seconds: i64,
    /// Pending deliveries are looked for above this id first (a job passes the highest
    /// id it claimed; 0 for none). PostgreSQL keeps the index entries of claimed rows
    /// until vacuum, so a claim from the campaign's first id steps over all of them.
    /// When too few are found there, the claim looks again from the start, so a
    /// delivery released or re-queued below the bound is still found.
    pub after_id: i64,
    /// Deferred deliveries whose time is at or before this are due (the dispatcher's
    /// clock; leases use the system's).
    pub due: i64,
    /// Marketing deliveries over this cap come back with `capped_until`; claims with a
    /// cap take turns, so two workers cannot both pass it for one recipient.
    pub cap: Option<FrequencyCap>,
}

#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    pub attempts: i64,
    /// When the delivery entered the ledger: retries give up a lifetime after this.
    pub queued_at: i64,
    pub recipient: Recipient,
    /// Set when consent or the suppression list no longer allow this message.
    pub ineligible: Option<String>,
    /// Set when the frequency cap does not allow this message now: when the window
    /// has room again.
    pub capped_until: Option<i64>,
    /// The experiment variant the recipient was assigned (None: no experiment).
    pub variant: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    delivery_id: i64,
    attempts: i64,
    queued_at: i64,
    ineligible: Option<String>,
    capped_until: Option<i64>,
    variant: Option<i64>,
    #[sqlx(flatten)]
    recipient: Recipient,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Sent {
        delivery_id: i64,
        message_id: String,
    },
    Deferred {
        delivery_id: i64,
        retry_at: i64,
        reason: String,
    },
    Failed {
        delivery_id: i64,
        reason: String,
    },
    Suppressed {
        delivery_id: i64,
        reason: String,
    },
    Unknown {
        delivery_id: i64,
        reason: String,
    },
    /// Handed back unsent, as it was before the claim (no attempt counted): the reply
    /// was about the sender or the message, not this recipient, and the campaign pauses.
    Released {
        delivery_id: i64,
        reason: String,
    },
    /// Handed back before any SMTP session carried it, as it was before the claim: this
    /// process is stopping, or the store would not mark it as handed.
    Withdrawn {
        delivery_id: i64,
    },
    /// Handed back unsent to wait until `until` (quiet hours, a frequency cap), no
    /// attempt counted.
    Held {
        delivery_id: i64,
        until: i64,
        reason: String,
    },
}

impl DeliveryOutcome {
    pub fn delivery_id(&self) -> i64 {
        outcome_columns(self).0
    }

    pub fn status(&self) -> DeliveryStatus {
        match self {
            DeliveryOutcome::Sent { .. } => DeliveryStatus::Sent,
            DeliveryOutcome::Deferred { .. } | DeliveryOutcome::Held { .. } => {
                DeliveryStatus::Deferred
            }
            DeliveryOutcome::Failed { .. } => DeliveryStatus::Failed,
            DeliveryOutcome::Suppressed { .. } => DeliveryStatus::Suppressed,
            DeliveryOutcome::Unknown { .. } => DeliveryStatus::Unknown,
            DeliveryOutcome::Released { .. } | DeliveryOutcome::Withdrawn { .. } => {
                DeliveryStatus::Pending
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub suppressed: i64,
    pub unknown: i64,
    /// Sent, and reported afterwards by a hard bounce.
    pub bounced: i64,
}

impl LedgerCounts {
    pub fn total(&self) -> i64 {
        self.pending
            + self.sending
            + self.sent
            + self.deferred
            + self.failed
            + self.suppressed
            + self.unknown
            + self.bounced
    }

    /// Nothing left that a worker would still try.
    pub fn settled(&self) -> bool {
        self.pending == 0 && self.sending == 0 && self.deferred == 0
    }
}

/// A delivery that needs a person's attention, for reports.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryReport {
    pub email: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

// Both claims take due retries first, then pending deliveries, each branch read in
// index order (SQLite's `deliveries_claim` ends with the rowid; PostgreSQL's has `id`
// as its last column since migration 0005), so a claim costs the same whatever the
// number of pending deliveries. Pending deliveries never have a `next_attempt_at`; the
// pending branch says so, which lets `id > $6` bound the index scan.
const CLAIM_SQLITE: &str = "
    UPDATE deliveries
    SET status = 'sending', lease_until = $3 + $4, worker = $2, handed_at = NULL,
        attempts = attempts + 1, updated_at = $3
    WHERE id IN (
        SELECT id FROM (
            SELECT id FROM deliveries
            WHERE campaign_id = $1 AND status = 'deferred' AND next_attempt_at <= $7
            ORDER BY next_attempt_at, id LIMIT $5)
        UNION ALL
        SELECT id FROM (
            SELECT id FROM deliveries
            WHERE campaign_id = $1 AND status = 'pending' AND next_attempt_at IS NULL
              AND id > $6
            ORDER BY next_attempt_at, id LIMIT $5)
        LIMIT $5)
    RETURNING id";

// PostgreSQL claims and returns the claimed rows with their recipients in one
// statement (`claimed_select`): the data-modifying CTE hands on the rows it updated.
const CLAIM_POSTGRES: &str = "
    WITH claimed AS (
        UPDATE deliveries d
        SET status = 'sending', lease_until = $3 + $4, worker = $2, handed_at = NULL,
            attempts = d.attempts + 1, updated_at = $3
        FROM (
            SELECT id FROM (
                SELECT id FROM deliveries
                WHERE campaign_id = $1 AND status = 'deferred' AND next_attempt_at <= $7
                ORDER BY next_attempt_at, id LIMIT $5
                FOR UPDATE SKIP LOCKED) due
            UNION ALL
            SELECT id FROM (
                SELECT id FROM deliveries
                WHERE campaign_id = $1 AND status = 'pending' AND next_attempt_at IS NULL
                  AND id > $6
                ORDER BY next_attempt_at, id LIMIT $5
                FOR UPDATE SKIP LOCKED) fresh
            LIMIT $5) picked
        WHERE d.id = picked.id
        RETURNING d.id, d.attempts, d.created_at, d.recipient_id, d.campaign_id, d.variant)";

/// The claim statements' parameters, $1 to $7.
macro_rules! bind_claim {
    ($query:expr, $claim:expr, $limit:expr, $after_id:expr) => {
        $query
            .bind($claim.campaign_id)
            .bind(&$claim.worker)
            .bind(crate::time::now())
            .bind($claim.lease_seconds)
            .bind($limit)
            .bind($after_id)
            .bind($claim.due)
    };
}

/// The cap's parameters for [`claimed_select`]: most messages (0: no cap), window,
/// now, per topic (0 or 1).
macro_rules! bind_cap {
    ($query:expr, $cap:expr) => {{
        let cap: Option<&FrequencyCap> = $cap;
        $query
            .bind(cap.map_or(0, |c| c.max))
            .bind(cap.map_or(0, |c| c.window_seconds))
            .bind(crate::time::now())
            .bind(cap.map_or(0_i64, |c| i64::from(c.per_topic)))
    }};
}

/// One row of [`Store::write_ledger`]: an outcome, or a mark.
#[derive(Serialize)]
pub(super) struct OutcomeRow<'a> {
    pub(super) id: i64,
    /// None for a mark: the delivery was handed to SMTP (`Store::write_ledger`).
    pub(super) status: Option<&'a str>,
    pub(super) message_id: Option<&'a str>,
    pub(super) last_error: Option<&'a str>,
    pub(super) next_attempt_at: Option<i64>,
    pub(super) sent_at: Option<i64>,
    /// A mark's record of what the message was rendered with.
    pub(super) rendered_with: Option<&'a str>,
}

impl<'a> OutcomeRow<'a> {
    pub(super) fn mark(id: i64, rendered_with: &'a str) -> Self {
        OutcomeRow {
            id,
            rendered_with: Some(rendered_with),
            status: None,
            message_id: None,
            last_error: None,
            next_attempt_at: None,
            sent_at: None,
        }
    }
}

/// The claimed deliveries `d` (from `rows`, chosen by `filter`) with their recipients,
/// eligibility and frequency cap (its parameters from `$cap`, see [`bind_cap`]), in id
/// order.
fn claimed_select(rows: &str, filter: &str, cap: usize) -> String {
    format!(
        "SELECT d.id AS delivery_id, d.attempts, d.created_at AS queued_at, {} AS ineligible,
                {} AS capped_until, d.variant,
                r.id, r.email, r.first_name, r.last_name, r.country, r.city, r.attributes,
                r.locale, r.timezone, r.status, r.created_at
         FROM {rows}
         JOIN recipients r ON r.id = d.recipient_id
         JOIN campaigns c ON c.id = d.campaign_id
         {filter}
         ORDER BY d.id",
        ineligible_reason_for("c.topic_id", "c.kind"),
        capped_until(cap)
    )
}

/// When a marketing delivery is over the cap: the time the oldest message counted
/// leaves the window. Counted: the recipient's other marketing deliveries handed to
/// SMTP (or claimed) within the window, of any campaign or of the same topic.
fn capped_until(first: usize) -> String {
    let (max, window, now, per_topic) = (first, first + 1, first + 2, first + 3);
    format!(
        "CASE WHEN c.kind = 'marketing' AND ${max} > 0 THEN (
            SELECT CASE WHEN COUNT(*) >= ${max}
                        THEN MIN(COALESCE(d2.handed_at, d2.updated_at)) + ${window} END
            FROM deliveries d2 JOIN campaigns c2 ON c2.id = d2.campaign_id
            WHERE d2.recipient_id = d.recipient_id AND d2.id <> d.id
              AND c2.kind = 'marketing'
              AND d2.status IN ('sent', 'bounced', 'unknown', 'sending')
              AND COALESCE(d2.handed_at, d2.updated_at) > ${now} - ${window}
              AND (${per_topic} = 0 OR c2.topic_id IS NOT DISTINCT FROM c.topic_id))
         END"
    )
}

/// SQLite's claim: the update, then the rows it claimed with their recipients.
async fn sqlite_claim(
    conn: &mut sqlx::SqliteConnection,
    store: &Store,
    claim: &Claim,
    limit: i64,
    after_id: i64,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let ids: Vec<i64> = bind_claim!(sqlx::query_scalar(CLAIM_SQLITE), claim, limit, after_id)
        .fetch_all(&mut *conn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filter = format!("WHERE d.id IN ({})", store.json_ints(1));
    let sql = claimed_select("deliveries d", &filter, 2);
    let query =
        sqlx::query_as(built(&sql)).bind(serde_json::to_string(&ids).expect("ids serialise"));
    Ok(bind_cap!(query, claim.cap.as_ref())
        .fetch_all(&mut *conn)
        .await?)
}

/// PostgreSQL advisory lock key: claims with a frequency cap take turns.
const CAP_LOCK: i64 = 0x6361_7073; // "caps"

impl Store {
    /// Leases claimable deliveries to a worker and returns them with their recipients.
    pub async fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut claimed = self.claim_up_to(claim, claim.limit, claim.after_id).await?;
        let short = claim.limit - claimed.len() as i64;
        if short > 0 && claim.after_id > 0 {
            claimed.extend(self.claim_up_to(claim, short, 0).await?);
        }
        Ok(claimed)
    }

    async fn claim_up_to(
        &self,
        claim: &Claim,
        limit: i64,
        after_id: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let cap = claim.cap.as_ref();
        let rows: Vec<ClaimedRow> = match &self.db {
            Db::Sqlite(pool) => {
                // With a cap, one transaction: the claim's write lock keeps other claims
                // out until the cap was counted.
                let mut conn = pool.acquire().await?;
                if cap.is_some() {
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                }
                let claimed = sqlite_claim(&mut conn, self, claim, limit, after_id).await;
                if cap.is_some() {
                    let end = if claimed.is_ok() {
                        "COMMIT"
                    } else {
                        "ROLLBACK"
                    };
                    sqlx::query(end).execute(&mut *conn).await?;
                }
                claimed?
            }
            Db::Postgres(pool) => {
                let sql = format!("{CLAIM_POSTGRES} {}", claimed_select("claimed d", "", 8));
                let query = bind_cap!(
                    bind_claim!(sqlx::query_as(built(&sql)), claim, limit, after_id),
                    cap
                );
                if cap.is_none() {
                    query.fetch_all(pool).await?
                } else {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(CAP_LOCK)
                        .execute(&mut *tx)
                        .await?;
                    let rows = query.fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    rows
                }
            }
        };
        Ok(rows
            .into_iter()
            .map(|row| ClaimedDelivery {
                delivery_id: row.delivery_id,
                attempts: row.attempts,
                queued_at: row.queued_at,
                recipient: row.recipient,
                ineligible: row.ineligible,
                capped_until: row.capped_until,
                variant: row.variant,
            })
            .collect())
    }

    /// Records outcomes of deliveries this worker holds, in one statement (handed-back
    /// deliveries in a second one).
    pub async fn record_outcomes(
        &self,
        worker: &str,
        outcomes: &[DeliveryOutcome],
    ) -> Result<(), StoreError> {
        self.write_ledger(worker, outcomes, &[]).await.map(|_| ())
    }

    /// Hands back deliveries this worker claimed but never sent: they become claimable
    /// again as they were (a due retry stays `deferred`), without counting an attempt.
    pub async fn release_claims(&self, worker: &str, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE deliveries
             SET status = CASE WHEN next_attempt_at IS NULL THEN 'pending' ELSE 'deferred' END,
                 attempts = attempts - 1, lease_until = NULL, worker = NULL, updated_at = $3
             WHERE id IN ({}) AND worker = $2 AND status = 'sending'",
            self.json_ints(1)
        );
        let json = serde_json::to_string(ids).expect("ids serialise");
        let released = on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(&json)
            .bind(worker)
            .bind(crate::time::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(released)
    }

    /// Extends the leases of the given deliveries `worker` still holds to
    /// `lease_seconds` from now, in one statement: a live worker's deliveries never
    /// expire, however long a slow relay takes. Returns how many were extended.
    pub async fn renew_leases(
        &self,
        worker: &str,
        ids: &[i64],
        lease_seconds: i64,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = match self.db {
            Db::Sqlite(_) => format!(
                "UPDATE deliveries SET lease_until = $2 + $3
                 WHERE id IN ({}) AND worker = $4 AND status = 'sending'",
                self.json_ints(1)
            ),
            // Rows the worker is recording or handing back at this moment are locked
            // by that statement: skipped rather than waited for (their lease no longer
            // matters), so a renewal never waits on a row lock nor joins a deadlock.
            Db::Postgres(_) => format!(
                "UPDATE deliveries SET lease_until = $2 + $3
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE id IN ({}) AND worker = $4 AND status = 'sending'
                     FOR UPDATE SKIP LOCKED)",
                self.json_ints(1)
            ),
        };
        let json = serde_json::to_string(ids).expect("ids serialise");
        let renewed = on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(&json)
            .bind(crate::time::now())
            .bind(lease_seconds)
            .bind(worker)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(renewed)
    }

    pub async fn ledger_counts(&self, campaign_id: i64) -> Result<LedgerCounts, StoreError> {
        let sql = "SELECT status, COUNT(*) FROM deliveries WHERE campaign_id = $1 GROUP BY status";
        let rows: Vec<(String, i64)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await)?;
        let mut counts = LedgerCounts::default();
        for (status, n) in rows {
            let slot = match status.parse::<DeliveryStatus>() {
                Ok(DeliveryStatus::Pending) => &mut counts.pending,
                Ok(DeliveryStatus::Sending) => &mut counts.sending,
                Ok(DeliveryStatus::Sent) => &mut counts.sent,
                Ok(DeliveryStatus::Deferred) => &mut counts.deferred,
                Ok(DeliveryStatus::Failed) => &mut counts.failed,
                Ok(DeliveryStatus::Suppressed) => &mut counts.suppressed,
                Ok(DeliveryStatus::Unknown) => &mut counts.unknown,
                Ok(DeliveryStatus::Bounced) => &mut counts.bounced,
                Err(e) => return Err(StoreError::Invalid(e.to_string())),
            };
            *slot = n;
        }
        Ok(counts)
    }

    /// The earliest retry time among the campaign's deferred deliveries.
    pub async fn next_retry_at(&self, campaign_id: i64) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(next_attempt_at) FROM deliveries
                   WHERE campaign_id = $1 AND status = 'deferred'";
        let (at,): (Option<i64>,) = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).fetch_one(pool).await)?;
        Ok(at)
    }

    /// Deliveries of a campaign in the given states, with the recipient's address.
    pub async fn deliveries_in(
        &self,
        campaign_id: i64,
        statuses: &[DeliveryStatus],
    ) -> Result<Vec<DeliveryReport>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        // The states as literals (names of our own enum, never input), so that
        // PostgreSQL can use its partial index of failed and unknown deliveries.
        let names: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT r.email, d.status, d.attempts, d.last_error
             FROM deliveries d JOIN recipients r ON r.id = d.recipient_id
             WHERE d.campaign_id = $1 AND d.status IN ({})
             ORDER BY r.email",
            names.join(", ")
        );
        Ok(on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(campaign_id).fetch_all(pool).await)?)
    }
}

pub(super) fn outcome_row(outcome: &DeliveryOutcome, now: i64) -> OutcomeRow<'_> {
    let (id, message_id, last_error, next_attempt_at) = outcome_columns(outcome);
    OutcomeRow {
        id,
        status: Some(outcome.status().as_str()),
        message_id,
        last_error,
        next_attempt_at,
        sent_at: matches!(outcome, DeliveryOutcome::Sent { .. }).then_some(now),
        rendered_with: None,
    }
}

fn outcome_columns(outcome: &DeliveryOutcome) -> (i64, Option<&str>, Option<&str>, Option<i64>) {
    match outcome {
        DeliveryOutcome::Sent {
            delivery_id,
            message_id,
        } => (*delivery_id, Some(message_id), None, None),
        DeliveryOutcome::Deferred {
            delivery_id,
            retry_at,
            reason,
        }
        | DeliveryOutcome::Held {
            delivery_id,
            until: retry_at,
            reason,
        } => (*delivery_id, None, Some(reason), Some(*retry_at)),
        DeliveryOutcome::Failed {
            delivery_id,
            reason,
        }
        | DeliveryOutcome::Suppressed {
            delivery_id,
            reason,
        }
        | DeliveryOutcome::Unknown {
            delivery_id,
            reason,
        }
        | DeliveryOutcome::Released {
            delivery_id,
            reason,
        } => (*delivery_id, None, Some(reason), None),
        DeliveryOutcome::Withdrawn { delivery_id } => (*delivery_id, None, None, None),
    }
}

impl DeliveryOutcome {
    /// The delivery goes back to the ledger as it was before its claim.
    pub fn hands_back(&self) -> bool {
        matches!(
            self,
            DeliveryOutcome::Released { .. }
                | DeliveryOutcome::Withdrawn { .. }
                | DeliveryOutcome::Held { .. }
        )
    }
}

impl Store {
    /// Adds tracked links of a campaign; links already stored are left alone.
    pub async fn store_links(
        &self,
        campaign_id: i64,
        links: &[(i64, String)],
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO links (campaign_id, link_id, url) VALUES ($1, $2, $3)
                   ON CONFLICT (campaign_id, link_id) DO NOTHING";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (link_id, url) in links {
                sqlx::query(sql).bind(campaign_id).bind(link_id).bind(url).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn link_url(
        &self,
        campaign_id: i64,
        link_id: i64,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT url FROM links WHERE campaign_id = $1 AND link_id = $2";
        let row: Option<(String,)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).bind(link_id).fetch_optional(pool).await)?;
        Ok(row.map(|(url,)| url))
    }
}

impl Store {
    /// Moves a campaign's deliveries in state `from` back to `pending`.
    pub async fn requeue_deliveries(
        &self,
        campaign_id: i64,
        from: DeliveryStatus,
    ) -> Result<u64, StoreError> {
        let sql = "UPDATE deliveries
                   SET status = 'pending', lease_until = NULL, next_attempt_at = NULL,
                       updated_at = $3
                   WHERE campaign_id = $1 AND status = $2";
        let moved = on_pool!(self, pool => sqlx::query(sql)
            .bind(campaign_id)
            .bind(from.as_str())
            .bind(crate::time::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(moved)
    }
}

impl Store {
    /// How many of a campaign's deliveries each worker sent.
    pub async fn sent_by_worker(&self, campaign_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT worker, COUNT(*) FROM deliveries
                   WHERE campaign_id = $1 AND status = 'sent' GROUP BY worker ORDER BY worker";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await)?)
    }
}
