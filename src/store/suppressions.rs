//! The suppression list: addresses never mailed again, each with what put it there.
//! Keyed by the SHA-256 of the lower-cased address (`EmailAddress::hash`), so an erased
//! recipient stays suppressed after the address itself is gone.

use serde::Serialize;

use super::{Store, StoreError, on_pool};
use crate::domain::EmailAddress;

/// How a suppression caused by a refused mailbox starts: campaign statistics count
/// these as bounces.
pub const BOUNCE_REASON: &str = "bounce: the receiving server refused the mailbox";

/// One entry of the suppression list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Suppression {
    /// None once the recipient was erased: only the hash remains.
    pub email: Option<String>,
    pub email_hash: String,
    pub reason: String,
    pub created_at: i64,
    /// The campaign whose delivery got the refusal, for bounces.
    pub campaign_id: Option<i64>,
    /// That campaign's name, while it exists.
    pub campaign: Option<String>,
    pub delivery_id: Option<i64>,
    /// The receiving server's reply that refused the mailbox.
    pub smtp_reply: Option<String>,
}

/// The delivery whose RCPT TO a server refused because the mailbox does not exist.
#[derive(Debug, Clone, Copy)]
pub struct RefusedMailbox<'a> {
    pub campaign_id: i64,
    pub delivery_id: i64,
    pub reply: &'a str,
}

const SELECT: &str = "SELECT s.email, s.email_hash, s.reason, s.created_at, s.campaign_id,
           c.name AS campaign, s.delivery_id, s.smtp_reply
    FROM suppressions s LEFT JOIN campaigns c ON c.id = s.campaign_id";

impl Store {
    /// Suppresses `email` for `reason`; an address already suppressed keeps its cause.
    pub async fn suppress(&self, email: &EmailAddress, reason: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO suppressions (email_hash, email, reason, created_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (email_hash) DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(email.hash())
            .bind(email.key())
            .bind(reason)
            .bind(crate::time::now())
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Suppresses `email` because a server refused its mailbox, remembering which
    /// delivery got which reply.
    pub async fn suppress_refused_mailbox(
        &self,
        email: &EmailAddress,
        cause: RefusedMailbox<'_>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO suppressions
                       (email_hash, email, reason, created_at, campaign_id, delivery_id, smtp_reply)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (email_hash) DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(email.hash())
            .bind(email.key())
            .bind(BOUNCE_REASON)
            .bind(crate::time::now())
            .bind(cause.campaign_id)
            .bind(cause.delivery_id)
            .bind(cause.reply)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn is_suppressed(&self, email: &EmailAddress) -> Result<bool, StoreError> {
        Ok(self.suppression(email).await?.is_some())
    }

    /// The suppression of `email`, with its cause; None when it is not suppressed.
    pub async fn suppression(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Suppression>, StoreError> {
        let sql = format!("{SELECT} WHERE s.email_hash = $1");
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(email.hash())
            .fetch_optional(pool)
            .await)?)
    }

    /// Suppressions newest first, `limit` from `offset`.
    pub async fn suppressions(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Suppression>, StoreError> {
        let sql =
            format!("{SELECT} ORDER BY s.created_at DESC, s.email_hash DESC LIMIT $1 OFFSET $2");
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await)?)
    }

    /// Takes `email` off the list, so later campaigns may mail it again. Returns what
    /// was removed; None when it was not suppressed.
    pub async fn remove_suppression(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Suppression>, StoreError> {
        let Some(suppression) = self.suppression(email).await? else {
            return Ok(None);
        };
        let removed = on_pool!(self, pool => sqlx::query(
            "DELETE FROM suppressions WHERE email_hash = $1")
            .bind(email.hash())
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok((removed > 0).then_some(suppression))
    }
}
