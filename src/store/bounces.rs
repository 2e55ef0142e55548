//! Bounces as received and what each did: the raw message is stored first (the sender
//! is told it was accepted only after that commit), then classified and applied to the
//! ledger, the suppression list and consents in one transaction that also marks it
//! processed, so a bounce is applied once however often it arrives or is retried.

use serde::Serialize;

use super::{Store, StoreError, on_pool};
use crate::bounce::BounceClass;
use crate::domain::EmailAddress;

/// How a suppression caused by a hard bounce reported after sending starts.
pub const HARD_BOUNCE_REASON: &str = "bounce: a bounce reported the mailbox as unreachable";
/// How a suppression caused by a spam complaint starts.
pub const COMPLAINT_REASON: &str = "complaint: the recipient reported a message as spam";
/// The consent source recorded when a complaint unsubscribes a recipient.
pub const COMPLAINT_SOURCE: &str = "complaint";

/// A message as it arrived, before anything is read from it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingBounce<'a> {
    pub raw: &'a [u8],
    pub envelope_from: Option<&'a str>,
    /// The RCPT TO addresses it came with.
    pub envelope_to: &'a [String],
    pub received_at: i64,
}

/// Whether [`Store::store_bounce`] stored a new message or found the same one stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRaw {
    pub id: i64,
    pub new: bool,
}

/// A stored message not yet processed (or to process again for display).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RawBounce {
    pub id: i64,
    pub raw: Vec<u8>,
    pub envelope_to: Option<String>,
}

/// The delivery a bounce was matched to, with the address it was sent to (None once
/// the recipient was erased).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BouncedDelivery {
    pub delivery_id: i64,
    pub campaign_id: i64,
    pub recipient_id: i64,
    pub email: Option<String>,
}

/// How a bounce was tied to its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The signed token of the return path it was sent to.
    ReturnPath,
    /// The Message-ID it quotes, confirmed by the address it reports.
    MessageId,
    /// The address a provider's webhook reported, without a Message-ID of ours: the
    /// latest message sent to that address.
    Address,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::ReturnPath => "return_path",
            MatchedBy::MessageId => "message_id",
            MatchedBy::Address => "address",
        }
    }
}

/// What was read from a stored bounce, and the delivery it concerns.
#[derive(Debug, Clone)]
pub struct BounceVerdict {
    pub class: BounceClass,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub delivery: Option<(BouncedDelivery, MatchedBy)>,
}

/// When soft bounces suppress an address: `limit` of the last `window` messages sent
/// to it bounced softly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBouncePolicy {
    pub limit: i64,
    pub window: i64,
}

impl Default for SoftBouncePolicy {
    fn default() -> Self {
        SoftBouncePolicy {
            limit: 3,
            window: 5,
        }
    }
}

/// One row of `bounces list` and `bounces show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BounceRecord {
    pub id: i64,
    pub digest: String,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub class: Option<String>,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub delivery_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub matched_by: Option<String>,
    pub action: Option<String>,
}

const RECORD: &str = "SELECT b.id, b.digest, b.envelope_from, b.envelope_to, b.received_at,
           b.processed_at, b.class, b.recipient, b.status, b.diagnostic, b.delivery_id,
           d.campaign_id, b.matched_by, b.action
    FROM bounces b LEFT JOIN deliveries d ON d.id = b.delivery_id";

/// How many of the last `$2` messages sent to recipient `$1` bounced softly (this one
/// included: its row says so already). The ledger has no index by recipient; its unique
/// (campaign, recipient) index answers one lookup per campaign, and campaigns are few.
const SOFT_BOUNCES: &str = "SELECT COUNT(*) FROM (
        SELECT d.id FROM campaigns c CROSS JOIN deliveries d
        WHERE d.campaign_id = c.id AND d.recipient_id = $1 AND d.sent_at IS NOT NULL
        ORDER BY d.sent_at DESC, d.id DESC LIMIT $2) recent
    WHERE EXISTS (SELECT 1 FROM bounces b WHERE b.delivery_id = recent.id AND b.class = 'soft')";

/// SHA-256 of the raw bytes, hex: what makes the same bounce twice one row.
pub fn bounce_digest(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(raw))
}

impl Store {
    /// Stores a received message (committed when this returns). The same bytes stored
    /// before are not stored again: their row is returned with `new: false`.
    pub async fn store_bounce(
        &self,
        incoming: &IncomingBounce<'_>,
    ) -> Result<StoredRaw, StoreError> {
        let digest = bounce_digest(incoming.raw);
        let envelope_to = incoming.envelope_to.join(", ");
        let insert = "INSERT INTO bounces (digest, raw, envelope_from, envelope_to, received_at)
                      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING RETURNING id";
        let inserted: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(insert)
            .bind(&digest)
            .bind(incoming.raw)
            .bind(incoming.envelope_from)
            .bind(&envelope_to)
            .bind(incoming.received_at)
            .fetch_optional(pool)
            .await)?;
        if let Some((id,)) = inserted {
            return Ok(StoredRaw { id, new: true });
        }
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM bounces WHERE digest = $1")
            .bind(&digest)
            .fetch_one(pool)
            .await)?;
        Ok(StoredRaw { id, new: false })
    }

    /// Ids of stored messages not yet processed, oldest first.
    pub async fn unprocessed_bounces(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT id FROM bounces WHERE processed_at IS NULL ORDER BY id LIMIT $1";
        let rows: Vec<(i64,)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn raw_bounce(&self, id: i64) -> Result<Option<RawBounce>, StoreError> {
        let sql = "SELECT id, raw, envelope_to FROM bounces WHERE id = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// The delivery of `recipient_id` in `campaign_id`, if the ledger holds one.
    pub async fn bounced_delivery(
        &self,
        campaign_id: i64,
        recipient_id: i64,
    ) -> Result<Option<BouncedDelivery>, StoreError> {
        let sql = "SELECT d.id AS delivery_id, d.campaign_id, d.recipient_id, r.email
                   FROM deliveries d LEFT JOIN recipients r ON r.id = d.recipient_id
                   WHERE d.campaign_id = $1 AND d.recipient_id = $2";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(campaign_id)
            .bind(recipient_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// The latest delivery handed to the relay for `email` since `since` (unix seconds).
    pub async fn latest_delivery_to(
        &self,
        email: &EmailAddress,
        since: i64,
    ) -> Result<Option<BouncedDelivery>, StoreError> {
        let sql = "SELECT d.id AS delivery_id, d.campaign_id, d.recipient_id, r.email
                   FROM recipients r JOIN deliveries d ON d.recipient_id = r.id
                   WHERE r.email_key = $1 AND d.sent_at >= $2
                     AND d.status IN ('sent', 'unknown', 'bounced')
                   ORDER BY d.sent_at DESC, d.id DESC LIMIT 1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(email.key())
            .bind(since)
            .fetch_optional(pool)
            .await)?)
    }

    /// Records what was read from bounce `id` and applies it, once: hard bounces mark
    /// the delivery `bounced` and suppress the address; soft ones suppress it when the
    /// policy's count is reached; complaints suppress it and unsubscribe it from every
    /// topic. Returns what was done, or None when the bounce was processed already.
    pub async fn apply_bounce(
        &self,
        id: i64,
        verdict: &BounceVerdict,
        policy: SoftBouncePolicy,
    ) -> Result<Option<String>, StoreError> {
        let now = crate::time::now();
        let delivery = verdict.delivery.as_ref();
        let matched_by = delivery.map(|(_, by)| by.as_str());
        let delivery_id = delivery.map(|(d, _)| d.delivery_id);
        let claim = "UPDATE bounces SET processed_at = $2, class = $3, recipient = $4,
                         status = $5, diagnostic = $6, delivery_id = $7, matched_by = $8
                     WHERE id = $1 AND processed_at IS NULL";
        let action = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(claim)
                .bind(id)
                .bind(now)
                .bind(verdict.class.as_str())
                .bind(verdict.recipient.as_deref())
                .bind(verdict.status.as_deref())
                .bind(verdict.diagnostic.as_deref())
                .bind(delivery_id)
                .bind(matched_by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                None
            } else {
                let action = match delivery {
                    None => "nothing: no delivery of ours".to_string(),
                    Some((delivery, _)) => {
                        let effect = effect_of(verdict.class);
                        let counted = match effect {
                            Effect::CountSoft => {
                                let (n,): (i64,) = sqlx::query_as(SOFT_BOUNCES)
                                    .bind(delivery.recipient_id)
                                    .bind(policy.window)
                                    .fetch_one(&mut *tx)
                                    .await?;
                                n
                            }
                            _ => 0,
                        };
                        let (action, suppression) = decide(effect, counted, policy);
                        if effect == Effect::Bounce {
                            sqlx::query("UPDATE deliveries SET status = 'bounced', last_error = $2,
                                             updated_at = $3
                                         WHERE id = $1 AND status IN ('sent', 'unknown')")
                                .bind(delivery.delivery_id)
                                .bind(reply_of(verdict))
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        if effect == Effect::Complaint {
                            sqlx::query("UPDATE consents SET status = 'unsubscribed', source = $2,
                                             updated_at = $3
                                         WHERE recipient_id = $1 AND status = 'subscribed'")
                                .bind(delivery.recipient_id)
                                .bind(COMPLAINT_SOURCE)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        if let (Some(reason), Some(email)) = (suppression, address_of(delivery)) {
                            sqlx::query("INSERT INTO suppressions
                                             (email_hash, email, reason, created_at, campaign_id,
                                              delivery_id, smtp_reply)
                                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                                         ON CONFLICT (email_hash) DO NOTHING")
                                .bind(email.hash())
                                .bind(email.key())
                                .bind(reason)
                                .bind(now)
                                .bind(delivery.campaign_id)
                                .bind(delivery.delivery_id)
                                .bind(reply_of(verdict))
                                .execute(&mut *tx)
                                .await?;
                        }
                        action
                    }
                };
                sqlx::query("UPDATE bounces SET action = $2 WHERE id = $1")
                    .bind(id)
                    .bind(&action)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Some(action)
            }
        });
        Ok(action)
    }

    /// Received bounces, newest first, `limit` from `offset`.
    pub async fn received_bounces(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<BounceRecord>, StoreError> {
        let sql = format!("{RECORD} ORDER BY b.received_at DESC, b.id DESC LIMIT $1 OFFSET $2");
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await)?)
    }

    /// One received bounce and its raw message.
    pub async fn bounce(&self, id: i64) -> Result<Option<(BounceRecord, Vec<u8>)>, StoreError> {
        let sql = format!("{RECORD} WHERE b.id = $1");
        let record: Option<BounceRecord> = on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        let Some(record) = record else {
            return Ok(None);
        };
        let raw = self
            .raw_bounce(id)
            .await?
            .map(|r| r.raw)
            .unwrap_or_default();
        Ok(Some((record, raw)))
    }
}

/// What a bounce does to its delivery, before soft bounces are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Bounce,
    CountSoft,
    Complaint,
    Nothing,
}

fn effect_of(class: BounceClass) -> Effect {
    match class {
        BounceClass::Hard => Effect::Bounce,
        BounceClass::Soft => Effect::CountSoft,
        BounceClass::Complaint => Effect::Complaint,
        BounceClass::AutoReply | BounceClass::Delivered | BounceClass::NotABounce => {
            Effect::Nothing
        }
    }
}

/// The action in words and the suppression reason, if any.
fn decide(effect: Effect, soft_count: i64, policy: SoftBouncePolicy) -> (String, Option<String>) {
    match effect {
        Effect::Bounce => (
            "delivery bounced; address suppressed".into(),
            Some(HARD_BOUNCE_REASON.to_string()),
        ),
        Effect::Complaint => (
            "address suppressed and unsubscribed from every topic".into(),
            Some(COMPLAINT_REASON.to_string()),
        ),
        Effect::CountSoft if soft_count >= policy.limit => (
            format!(
                "soft bounce {soft_count} of the last {} messages; address suppressed",
                policy.window
            ),
            Some(format!(
                "bounce: {soft_count} soft bounces in the last {} messages",
                policy.window
            )),
        ),
        Effect::CountSoft => (
            format!(
                "soft bounce {soft_count} of the last {} messages (suppressed at {})",
                policy.window, policy.limit
            ),
            None,
        ),
        Effect::Nothing => ("nothing: not a failure".into(), None),
    }
}

fn address_of(delivery: &BouncedDelivery) -> Option<EmailAddress> {
    EmailAddress::parse(delivery.email.as_deref()?).ok()
}

/// `5.1.1 user unknown`: the status and the server's words, as the ledger and the
/// suppression list show them.
fn reply_of(verdict: &BounceVerdict) -> Option<String> {
    let parts: Vec<&str> = [verdict.status.as_deref(), verdict.diagnostic.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What received bounces said about one campaign's messages, against how many were
/// delivered: the figures a sender's reputation is judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct Feedback {
    /// Messages the relay accepted (`sent`, and `bounced` later).
    pub delivered: i64,
    pub hard: i64,
    pub soft: i64,
    pub complaints: i64,
}

impl Feedback {
    pub fn hard_rate(&self) -> f64 {
        rate(self.hard, self.delivered)
    }

    pub fn soft_rate(&self) -> f64 {
        rate(self.soft, self.delivered)
    }

    pub fn complaint_rate(&self) -> f64 {
        rate(self.complaints, self.delivered)
    }
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Deliveries counted once per class, whatever number of reports came for them;
/// `restrict` narrows both counts (`AND d.recipient_id IN …`, its parameters after `$1`).
/// Without `count_delivered`, `delivered` is 0 (for a caller that has the ledger's
/// counts already).
pub(super) fn feedback_sql(restrict: &str, count_delivered: bool) -> String {
    let delivered = match count_delivered {
        true => format!(
            "(SELECT COUNT(*) FROM deliveries d WHERE d.campaign_id = $1
               AND d.status IN ('sent', 'bounced'){restrict})"
        ),
        false => "CAST(0 AS BIGINT)".to_string(),
    };
    format!(
        "SELECT
            {delivered} AS delivered,
            COUNT(DISTINCT CASE WHEN b.class = 'hard' THEN b.delivery_id END) AS hard,
            COUNT(DISTINCT CASE WHEN b.class = 'soft' THEN b.delivery_id END) AS soft,
            COUNT(DISTINCT CASE WHEN b.class = 'complaint' THEN b.delivery_id END) AS complaints
         FROM bounces b JOIN deliveries d ON d.id = b.delivery_id
         WHERE d.campaign_id = $1{restrict}"
    )
}
