//! From a received message to its effect: store it raw (durably, before the sender is
//! told it was accepted), then classify it, find the delivery it is about and apply it
//! through the store. Stored messages a stopped process left unprocessed are
//! processed by the next one.

use super::{Bounce, BounceClass, Report, ReturnPath, delivery_of_message_id};
use crate::domain::EmailAddress;
use crate::links::KeyRing;
use crate::store::{
    BounceVerdict, BouncedDelivery, IncomingBounce, MatchedBy, RawBounce, SoftBouncePolicy, Store,
    StoreError, StoredRaw,
};

/// How received bounces are read and applied.
#[derive(Debug, Clone)]
pub struct BounceSettings {
    /// The return paths messages were sent with; None matches by Message-ID only.
    pub return_path: Option<ReturnPath>,
    pub keys: KeyRing,
    pub soft: SoftBouncePolicy,
    pub pause: PauseThresholds,
}

/// A running campaign pauses itself when, once it has delivered `min_delivered`
/// messages, more than these shares of them came back as complaints or hard bounces
/// (Gmail and Yahoo ask bulk senders to stay under 0.3 % complaints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PauseThresholds {
    pub complaint_rate: f64,
    pub hard_rate: f64,
    pub min_delivered: i64,
}

impl Default for PauseThresholds {
    fn default() -> Self {
        PauseThresholds {
            complaint_rate: 0.003,
            hard_rate: 0.05,
            min_delivered: 1000,
        }
    }
}

/// Stores the message; it is durable when this returns.
pub async fn store(store: &Store, incoming: &IncomingBounce<'_>) -> Result<StoredRaw, StoreError> {
    store.store_bounce(incoming).await
}

/// Classifies and applies stored bounce `id`. Returns what it did; None when it was
/// processed already (or is not stored).
pub async fn process(
    store: &Store,
    settings: &BounceSettings,
    id: i64,
) -> Result<Option<String>, StoreError> {
    let Some(raw) = store.raw_bounce(id).await? else {
        return Ok(None);
    };
    let report = super::parse(&raw.raw);
    let delivery = find_delivery(store, settings, &raw, &report).await?;
    let bounce = chosen_bounce(&report.bounces, delivery.as_ref().map(|(d, _)| d));
    let verdict = BounceVerdict {
        class: bounce.map_or(BounceClass::NotABounce, |b| b.class),
        recipient: bounce.and_then(|b| b.recipient.clone()),
        status: bounce.and_then(|b| b.status.clone()),
        diagnostic: bounce.and_then(|b| b.diagnostic.clone()),
        delivery,
    };
    let action = store.apply_bounce(id, &verdict, settings.soft).await?;
    if let Some(action) = &action {
        tracing::info!(bounce = id, class = %verdict.class, %action, "bounce processed");
    }
    if let (Some((delivery, _)), BounceClass::Hard | BounceClass::Complaint) =
        (&verdict.delivery, verdict.class)
    {
        pause_if_over(store, settings.pause, delivery.campaign_id).await?;
    }
    Ok(action)
}

/// Pauses a running campaign whose complaint or hard-bounce rate is over its threshold,
/// saying why.
async fn pause_if_over(
    store: &Store,
    limits: PauseThresholds,
    campaign_id: i64,
) -> Result<(), StoreError> {
    let feedback = store.feedback(campaign_id).await?;
    if feedback.delivered < limits.min_delivered {
        return Ok(());
    }
    let over = |what: &str, count: i64, rate: f64, limit: f64| {
        (rate > limit).then(|| {
            format!(
                "{what} rate {:.2}% ({count} of {} delivered) is over {:.2}%",
                rate * 100.0,
                feedback.delivered,
                limit * 100.0
            )
        })
    };
    let reason = over(
        "complaint",
        feedback.complaints,
        feedback.complaint_rate(),
        limits.complaint_rate,
    )
    .or_else(|| {
        over(
            "hard bounce",
            feedback.hard,
            feedback.hard_rate(),
            limits.hard_rate,
        )
    });
    if let Some(reason) = reason
        && store.pause_campaign_because(campaign_id, &reason).await?
    {
        tracing::error!(campaign_id, %reason, "campaign paused by its bounces");
    }
    Ok(())
}

/// Processes every stored bounce left unprocessed; returns how many it applied.
pub async fn process_unprocessed(
    store: &Store,
    settings: &BounceSettings,
) -> Result<usize, StoreError> {
    let mut applied = 0;
    loop {
        let ids = store.unprocessed_bounces(100).await?;
        if ids.is_empty() {
            return Ok(applied);
        }
        for id in ids {
            if process(store, settings, id).await?.is_some() {
                applied += 1;
            }
        }
    }
}

/// How far back a webhook event without our Message-ID is matched by its address.
const ADDRESS_MATCH_WINDOW: i64 = 30 * 24 * 3600;

/// The delivery a bounce is about: by the signed return path it was sent to (the
/// envelope recipient, or the address its headers say it was delivered to), else by
/// the mailcast Message-ID it quotes, when the address it reports is that delivery's.
/// A provider's webhook event that quotes no Message-ID of ours (Postmark's never do)
/// is about the latest message sent to the address it reports: the provider
/// authenticated itself, so its word for the address is taken.
async fn find_delivery(
    store: &Store,
    settings: &BounceSettings,
    raw: &RawBounce,
    report: &Report,
) -> Result<Option<(BouncedDelivery, MatchedBy)>, StoreError> {
    if let Some(path) = &settings.return_path {
        let envelope = raw.envelope_to.as_deref().unwrap_or("");
        let addresses = envelope
            .split(',')
            .map(str::trim)
            .chain(report.return_path.as_deref());
        for address in addresses {
            if let Some(key) = path.delivery(&settings.keys, address)
                && let Some(found) = store
                    .bounced_delivery(key.campaign_id, key.recipient_id)
                    .await?
            {
                return Ok(Some((found, MatchedBy::ReturnPath)));
            }
        }
    }
    let Some(key) = report
        .original
        .message_id
        .as_deref()
        .and_then(delivery_of_message_id)
    else {
        return match report.webhook {
            Some(_) => latest_to_reported(store, report).await,
            None => Ok(None),
        };
    };
    let Some(found) = store
        .bounced_delivery(key.campaign_id, key.recipient_id)
        .await?
    else {
        return Ok(None);
    };
    let reported = report
        .bounces
        .iter()
        .any(|b| same_address(b.recipient.as_deref(), found.email.as_deref()));
    Ok(reported.then_some((found, MatchedBy::MessageId)))
}

/// The latest delivery sent to an address the report names, within the window.
async fn latest_to_reported(
    store: &Store,
    report: &Report,
) -> Result<Option<(BouncedDelivery, MatchedBy)>, StoreError> {
    let since = crate::time::now() - ADDRESS_MATCH_WINDOW;
    let addresses = report
        .bounces
        .iter()
        .filter_map(|b| EmailAddress::parse(b.recipient.as_deref()?).ok());
    for address in addresses {
        if let Some(found) = store.latest_delivery_to(&address, since).await? {
            return Ok(Some((found, MatchedBy::Address)));
        }
    }
    Ok(None)
}

/// The bounce about the delivery's address when the message reports several; else the
/// gravest it reports.
fn chosen_bounce<'a>(
    bounces: &'a [Bounce],
    delivery: Option<&BouncedDelivery>,
) -> Option<&'a Bounce> {
    let email = delivery.and_then(|d| d.email.as_deref());
    bounces
        .iter()
        .find(|b| email.is_some() && same_address(b.recipient.as_deref(), email))
        .or_else(|| bounces.iter().min_by_key(|b| gravity(b.class)))
}

fn gravity(class: BounceClass) -> u8 {
    match class {
        BounceClass::Complaint => 0,
        BounceClass::Hard => 1,
        BounceClass::Soft => 2,
        BounceClass::AutoReply => 3,
        BounceClass::Delivered => 4,
        BounceClass::NotABounce => 5,
    }
}

fn same_address(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.map(EmailAddress::parse), b.map(EmailAddress::parse)) {
        (Some(Ok(a)), Some(Ok(b))) => a.key() == b.key(),
        _ => false,
    }
}
