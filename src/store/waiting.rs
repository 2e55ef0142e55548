//! Deliveries that wait or were skipped because of when and how often people are
//! mailed (see `schedule`), counted by why.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

/// A campaign's deliveries that wait (`deferred`, not yet tried) or were skipped by
/// the frequency cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Waiting {
    /// Until their local send time.
    pub local_time: i64,
    /// Until quiet hours end in the recipient's zone.
    pub quiet_hours: i64,
    /// Until the frequency cap's window has room.
    pub capped_deferred: i64,
    /// Not sent: over the frequency cap (`suppressed`).
    pub capped_skipped: i64,
}

// Held deliveries carry their reason in `last_error` (`DeliveryOutcome::Held`); one not
// yet tried at all waits for its local send time.
pub(super) const WAITING: &str = "
    SELECT
        COUNT(CASE WHEN status = 'deferred' AND attempts = 0 AND last_error IS NULL
                   THEN 1 END) AS local_time,
        COUNT(CASE WHEN status = 'deferred' AND last_error LIKE 'quiet hours%' THEN 1 END)
            AS quiet_hours,
        COUNT(CASE WHEN status = 'deferred' AND last_error LIKE 'capped:%' THEN 1 END)
            AS capped_deferred,
        COUNT(CASE WHEN status = 'suppressed' AND last_error LIKE 'capped:%' THEN 1 END)
            AS capped_skipped
    FROM deliveries d WHERE d.status IN ('deferred', 'suppressed')";

impl Store {
    /// As [`Store::waiting`], over every campaign (`/metrics`).
    pub async fn waiting_totals(&self) -> Result<Waiting, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(WAITING).fetch_one(pool).await)?)
    }
}
