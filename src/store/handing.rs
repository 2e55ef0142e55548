//! Which claimed deliveries were handed to SMTP. A delivery is marked before its message
//! body goes out, in the same commit as the outcomes recorded before it; when a lease
//! runs out, a marked delivery becomes `unknown` and an unmarked one goes back to be
//! sent later, exactly once.

use super::ledger::{OutcomeRow, outcome_row};
use super::{Db, Engine, Store, StoreError, built, on_pool};
use crate::store::DeliveryOutcome;

// One statement records outcomes and marks deliveries as handed, so a group costs one
// round trip and one commit. A row without a status is a mark: it sets `handed_at` on a
// delivery this worker holds in `sending` and changes nothing else. The guards of an
// outcome are those of a single-row update: only rows this worker holds, and only while
// sending (or expired to unknown meanwhile). `+status` (SQLite) and `status || ''`
// (PostgreSQL) keep the planner on primary-key lookups: just after a campaign starts,
// the statistics see almost no `sending` rows, and a scan of them would look cheaper.
const WRITE_LEDGER_SQLITE: &str = "
    WITH v AS MATERIALIZED (
        SELECT value ->> 'id' AS id, value ->> 'status' AS status,
               value ->> 'message_id' AS message_id, value ->> 'last_error' AS last_error,
               value ->> 'next_attempt_at' AS next_attempt_at, value ->> 'sent_at' AS sent_at,
               value ->> 'rendered_with' AS rendered_with
        FROM json_each($1))
    UPDATE deliveries
    SET status = COALESCE(v.status, deliveries.status),
        message_id = COALESCE(v.message_id, deliveries.message_id),
        last_error = IIF(v.status IS NULL, deliveries.last_error, v.last_error),
        next_attempt_at = IIF(v.status IS NULL, deliveries.next_attempt_at, v.next_attempt_at),
        sent_at = IIF(v.status IS NULL, deliveries.sent_at, v.sent_at),
        lease_until = IIF(v.status IS NULL, deliveries.lease_until, NULL),
        handed_at = IIF(v.status IS NULL, $3, deliveries.handed_at),
        rendered_with = IIF(v.status IS NULL, v.rendered_with, deliveries.rendered_with),
        updated_at = $3
    FROM v
    WHERE deliveries.id = v.id AND deliveries.worker = $2
      AND IIF(v.status IS NULL, +deliveries.status = 'sending',
              +deliveries.status IN ('sending', 'unknown'))
    RETURNING deliveries.id";

const WRITE_LEDGER_POSTGRES: &str = "
    UPDATE deliveries d
    SET status = COALESCE(v.status, d.status),
        message_id = COALESCE(v.message_id, d.message_id),
        last_error = CASE WHEN v.status IS NULL THEN d.last_error ELSE v.last_error END,
        next_attempt_at = CASE WHEN v.status IS NULL THEN d.next_attempt_at
                               ELSE v.next_attempt_at END,
        sent_at = CASE WHEN v.status IS NULL THEN d.sent_at ELSE v.sent_at END,
        lease_until = CASE WHEN v.status IS NULL THEN d.lease_until END,
        handed_at = CASE WHEN v.status IS NULL THEN $8 ELSE d.handed_at END,
        rendered_with = CASE WHEN v.status IS NULL THEN v.rendered_with
                             ELSE d.rendered_with END,
        updated_at = $8
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                $9::text[])
         AS v(id, status, message_id, last_error, next_attempt_at, sent_at, rendered_with)
    WHERE d.id = v.id AND d.worker = $7
      AND CASE WHEN v.status IS NULL THEN (d.status || '') = 'sending'
               ELSE (d.status || '') IN ('sending', 'unknown') END
    RETURNING d.id";

impl Store {
    /// Records outcomes of deliveries this worker holds and marks `handing` as handed to
    /// SMTP with what each was rendered with, in one statement. Returns the deliveries
    /// of `handing` that were marked: those this worker still holds. Only those may be
    /// sent.
    pub async fn write_ledger(
        &self,
        worker: &str,
        outcomes: &[DeliveryOutcome],
        handing: &[Handing],
    ) -> Result<Vec<i64>, StoreError> {
        let (back, outcomes): (Vec<&DeliveryOutcome>, Vec<&DeliveryOutcome>) =
            outcomes.iter().partition(|o| o.hands_back());
        let (held, back): (Vec<&DeliveryOutcome>, Vec<&DeliveryOutcome>) = back
            .into_iter()
            .partition(|o| matches!(o, DeliveryOutcome::Held { .. }));
        let back: Vec<i64> = back.iter().map(|o| o.delivery_id()).collect();
        self.release_claims(worker, &back).await?;
        self.hold_claims(worker, &held).await?;
        if outcomes.is_empty() && handing.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::time::now();
        let rows: Vec<OutcomeRow> = outcomes
            .iter()
            .map(|o| outcome_row(o, now))
            .chain(
                handing
                    .iter()
                    .map(|h| OutcomeRow::mark(h.delivery_id, &h.rendered_with)),
            )
            .collect();
        let changed: Vec<i64> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(WRITE_LEDGER_SQLITE)
                    .bind(serde_json::to_string(&rows).expect("ledger rows serialise"))
                    .bind(worker)
                    .bind(now)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                let column = |f: &dyn Fn(&OutcomeRow) -> Option<String>| -> Vec<Option<String>> {
                    rows.iter().map(f).collect()
                };
                sqlx::query_scalar(WRITE_LEDGER_POSTGRES)
                    .bind(rows.iter().map(|r| r.id).collect::<Vec<i64>>())
                    .bind(column(&|r| r.status.map(str::to_string)))
                    .bind(column(&|r| r.message_id.map(str::to_string)))
                    .bind(column(&|r| r.last_error.map(str::to_string)))
                    .bind(rows.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.sent_at).collect::<Vec<_>>())
                    .bind(worker)
                    .bind(now)
                    .bind(column(&|r| r.rendered_with.map(str::to_string)))
                    .fetch_all(pool)
                    .await?
            }
        };
        // Outcomes and marks never name the same delivery in one call: a delivery is
        // marked before it is sent, and its outcome comes after the mark was answered.
        let handing: std::collections::HashSet<i64> =
            handing.iter().map(|h| h.delivery_id).collect();
        Ok(changed
            .into_iter()
            .filter(|id| handing.contains(id))
            .collect())
    }

    /// Hands back deliveries this worker claimed that must wait (`Held`): `deferred`
    /// until their time, with the reason, no attempt counted.
    async fn hold_claims(&self, worker: &str, held: &[&DeliveryOutcome]) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = held
            .iter()
            .map(|o| {
                let row = outcome_row(o, 0);
                serde_json::json!({"id": row.id, "until": row.next_attempt_at, "reason": row.last_error})
            })
            .collect();
        let rows = serde_json::Value::from(rows).to_string();
        let values = match self.engine() {
            Engine::Sqlite => {
                "(SELECT value ->> 'id' AS id, value ->> 'until' AS until,
                                       value ->> 'reason' AS reason FROM json_each($1))"
            }
            Engine::Postgres => {
                "jsonb_to_recordset($1::jsonb) AS v(id bigint, until bigint, reason text)"
            }
        };
        let alias = if self.engine() == Engine::Sqlite {
            " v"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE deliveries
             SET status = 'deferred', next_attempt_at = v.until, last_error = v.reason,
                 attempts = attempts - 1, lease_until = NULL, worker = NULL, updated_at = $3
             FROM {values}{alias}
             WHERE deliveries.id = v.id AND deliveries.worker = $2
               AND deliveries.status = 'sending'"
        );
        on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(&rows)
            .bind(worker)
            .bind(crate::time::now())
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Deliveries whose lease ran out while `sending`: those handed to SMTP may or may
    /// not have reached the server and become `unknown`, never silently re-sent; those
    /// never handed go back as they were before the claim. Returns how many became
    /// unknown and how many went back.
    pub async fn expire_leases(&self) -> Result<ExpiredLeases, StoreError> {
        let unknown = "UPDATE deliveries
                   SET status = 'unknown', lease_until = NULL, updated_at = $1,
                       last_error = 'worker stopped while sending (lease expired)'
                   WHERE status = 'sending' AND lease_until < $1 AND handed_at IS NOT NULL";
        let back = "UPDATE deliveries
                   SET status = CASE WHEN next_attempt_at IS NULL THEN 'pending' ELSE 'deferred' END,
                       attempts = attempts - 1, lease_until = NULL, worker = NULL, updated_at = $1
                   WHERE status = 'sending' AND lease_until < $1 AND handed_at IS NULL";
        let now = crate::time::now();
        let mut expired = ExpiredLeases::default();
        for (sql, count) in [
            (unknown, &mut expired.unknown),
            (back, &mut expired.returned),
        ] {
            *count = on_pool!(self, pool => sqlx::query(built(sql))
                .bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(expired)
    }
}

/// A delivery about to be handed to SMTP, and what its message was rendered with
/// (see [`crate::render::RenderedWith`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handing {
    pub delivery_id: i64,
    pub rendered_with: String,
}

/// What [`Store::expire_leases`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredLeases {
    /// Handed to SMTP without a recorded reply.
    pub unknown: u64,
    /// Never handed: claimable again.
    pub returned: u64,
}
