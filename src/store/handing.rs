//! Which claimed deliveries were handed to SMTP. A delivery is marked before its message
//! body goes out, in the same commit as the outcomes recorded before it; when a lease
//! runs out, a marked delivery becomes `unknown` and an unmarked one goes back to be
//! sent later, exactly once.

use super::ledger::{OutcomeRow, RECORD_OUTCOMES_SQLITE, outcome_row};
use super::{Db, Store, StoreError, built, on_pool};
use crate::store::DeliveryOutcome;

// PostgreSQL records outcomes inside a function (migration 0007), so that nested loops
// are off for it; `mailcast_write_ledger` (migration 0014) adds the marks, all in one
// round trip and one commit.
const WRITE_LEDGER_POSTGRES: &str = "SELECT mailcast_write_ledger($1::jsonb, $2, $3, $4, $5) AS id";

const MARK_HANDED_SQLITE: &str = "
    UPDATE deliveries SET handed_at = $2
    WHERE id IN (SELECT value FROM json_each($1)) AND worker = $3 AND status = 'sending'
    RETURNING id";

impl Store {
    /// Records outcomes of deliveries this worker holds and marks `handing` as handed to
    /// SMTP, in one commit. Returns the deliveries of `handing` that were marked: those
    /// this worker still holds. Only those may be sent.
    pub async fn write_ledger(
        &self,
        worker: &str,
        outcomes: &[DeliveryOutcome],
        handing: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let (back, outcomes): (Vec<&DeliveryOutcome>, Vec<&DeliveryOutcome>) =
            outcomes.iter().partition(|o| o.hands_back());
        let back: Vec<i64> = back.iter().map(|o| o.delivery_id()).collect();
        self.release_claims(worker, &back).await?;
        if outcomes.is_empty() && handing.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::time::now();
        let rows: Vec<OutcomeRow> = outcomes.iter().map(|o| outcome_row(o, now)).collect();
        let json = serde_json::to_string(&rows).expect("outcomes serialise");
        match &self.db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                if !outcomes.is_empty() {
                    sqlx::query(RECORD_OUTCOMES_SQLITE)
                        .bind(&json)
                        .bind(worker)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                let mut marked = Vec::new();
                if !handing.is_empty() {
                    marked = sqlx::query_scalar(MARK_HANDED_SQLITE)
                        .bind(serde_json::to_string(handing).expect("ids serialise"))
                        .bind(now)
                        .bind(worker)
                        .fetch_all(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(marked)
            }
            Db::Postgres(pool) => {
                let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id()).collect();
                Ok(sqlx::query_scalar(WRITE_LEDGER_POSTGRES)
                    .bind(&json)
                    .bind(worker)
                    .bind(now)
                    .bind(&ids)
                    .bind(handing)
                    .fetch_all(pool)
                    .await?)
            }
        }
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

/// What [`Store::expire_leases`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredLeases {
    /// Handed to SMTP without a recorded reply.
    pub unknown: u64,
    /// Never handed: claimable again.
    pub returned: u64,
}
