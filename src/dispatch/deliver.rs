use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

use super::{DispatchError, Dispatcher, SendResult};
use crate::domain::{CampaignStatus, EmailAddress};
use crate::render::{CampaignRenderer, RecipientContext, RenderSpec, RenderedMessage, LinkSettings};
use crate::store::{Claim, ClaimedDelivery, DeliveryOutcome, SqlFilter};

/// Why a `DeliverBatch` job stopped looping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every delivery has a final state; the campaign is done.
    Finished,
    /// Nothing claimable now; deferred deliveries are due at this time.
    RetryAt(i64),
    /// Other workers still hold leases; they finish the campaign.
    OthersInFlight,
    /// The campaign was paused or cancelled, or is not running.
    Stopped(CampaignStatus),
}

/// The `DeliverBatch` job: claim, render, send and record until nothing is left.
pub async fn deliver_campaign(
    dispatcher: &Arc<Dispatcher>,
    campaign_id: i64,
) -> Result<BatchEnd, DispatchError> {
    let runtime = runtime_for(dispatcher, campaign_id).await?;
    let mut stored_links = HashSet::new();
    loop {
        let status = dispatcher.store.campaign(campaign_id).await?.status()?;
        if status != CampaignStatus::Running {
            return Ok(BatchEnd::Stopped(status));
        }
        dispatcher.store.expire_leases().await?;
        let claimed = dispatcher.store.claim(&claim(dispatcher, campaign_id)).await?;
        if claimed.is_empty() {
            return finish(dispatcher, campaign_id).await;
        }
        let outcomes = deliver_claimed(dispatcher, &runtime, claimed, &mut stored_links).await?;
        dispatcher
            .store
            .record_outcomes(&dispatcher.settings.worker_name, &outcomes)
            .await?;
    }
}

fn claim(dispatcher: &Dispatcher, campaign_id: i64) -> Claim {
    Claim {
        campaign_id,
        worker: dispatcher.settings.worker_name.clone(),
        limit: dispatcher.settings.batch_size,
        lease_seconds: dispatcher.settings.lease.as_secs() as i64,
    }
}

async fn finish(dispatcher: &Dispatcher, campaign_id: i64) -> Result<BatchEnd, DispatchError> {
    let store = &dispatcher.store;
    let counts = store.ledger_counts(campaign_id).await?;
    if counts.settled() {
        let finished_here = store
            .transition_campaign(campaign_id, &[CampaignStatus::Running], CampaignStatus::Done)
            .await?;
        if finished_here {
            tracing::info!(campaign_id, sent = counts.sent, failed = counts.failed, "campaign done");
        }
        return Ok(BatchEnd::Finished);
    }
    if counts.sending > 0 {
        return Ok(BatchEnd::OthersInFlight);
    }
    let at = store
        .next_retry_at(campaign_id)
        .await?
        .unwrap_or_else(crate::time::now);
    Ok(BatchEnd::RetryAt(at))
}

/// The campaign's compiled templates, built once per process and shared by all jobs.
async fn runtime_for(
    dispatcher: &Dispatcher,
    campaign_id: i64,
) -> Result<Arc<CampaignRuntime>, DispatchError> {
    if let Some(runtime) = dispatcher.cached_runtime(campaign_id) {
        return Ok(runtime);
    }
    let store = &dispatcher.store;
    let campaign = store.campaign(campaign_id).await?;
    let template = store.template(campaign.template_id).await?;
    let spec = RenderSpec {
        campaign_id,
        campaign_name: campaign.name.clone(),
        marketing: campaign.kind == "marketing",
        template,
        from_name: campaign.from_name.clone(),
        from_email: campaign.from_email.clone(),
        reply_to: campaign.reply_to.clone(),
        settings: campaign.settings.0.clone(),
        links: link_settings(dispatcher, &campaign.from_email),
    };
    let renderer = CampaignRenderer::new(spec).map_err(|source| DispatchError::Render {
        campaign: campaign_id,
        source,
    })?;
    let names = &campaign.settings.0.declared_segments;
    let declared_segments = crate::segment::compile_declared(store, names, crate::time::now())
        .await
        .map_err(|e| DispatchError::Segment {
            campaign: campaign_id,
            reason: e.to_string(),
        })?;
    let runtime = Arc::new(CampaignRuntime {
        id: campaign_id,
        renderer,
        envelope_from: campaign.from_email.clone(),
        declared_segments,
        relay: campaign.settings.0.smtp_relay.clone(),
    });
    dispatcher.cache_runtime(campaign_id, runtime.clone());
    Ok(runtime)
}

/// A rendered message and the ledger facts its outcome depends on.
struct Outgoing {
    delivery_id: i64,
    attempts: i64,
    queued_at: i64,
    message: RenderedMessage,
}

/// Message-ID, List-Id and the unsubscribe mailbox use the sender's domain.
fn link_settings(dispatcher: &Dispatcher, from_email: &str) -> LinkSettings {
    let mut links = LinkSettings::new(
        dispatcher.settings.base_url.clone(),
        dispatcher.settings.keyring.clone(),
    );
    if let Ok(address) = EmailAddress::parse(from_email) {
        links.list_id_domain = address.domain().to_lowercase();
    }
    links
}

/// One prepared delivery: either a message to send or an outcome decided already.
enum Prepared {
    Send(Box<Outgoing>),
    Decided(DeliveryOutcome),
}

/// A running campaign as one worker process holds it.
pub(super) struct CampaignRuntime {
    id: i64,
    renderer: CampaignRenderer,
    envelope_from: String,
    /// The segments the template may branch on, compiled once.
    declared_segments: Vec<(String, SqlFilter)>,
    /// The SMTP relay the campaign asks for first.
    relay: Option<String>,
}

async fn deliver_claimed(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    claimed: Vec<ClaimedDelivery>,
    stored_links: &mut HashSet<i64>,
) -> Result<Vec<DeliveryOutcome>, DispatchError> {
    let mut segments = segment_names(dispatcher, runtime, &claimed).await?;
    let prepared: Vec<Prepared> = claimed
        .into_iter()
        .map(|delivery| {
            let names = segments.remove(&delivery.recipient.id).unwrap_or_default();
            prepare(&runtime.renderer, delivery, names)
        })
        .collect();
    store_new_links(dispatcher, runtime.id, &prepared, stored_links).await?;
    let concurrency = dispatcher.settings.batch_size.max(1) as usize;
    let outcomes = futures::stream::iter(prepared)
        .map(|item| async move {
            match item {
                Prepared::Decided(outcome) => outcome,
                Prepared::Send(outgoing) => send(dispatcher, runtime, &outgoing).await,
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Ok(outcomes)
}

/// Which declared segments each claimed recipient is in: one query per segment.
async fn segment_names(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    claimed: &[ClaimedDelivery],
) -> Result<HashMap<i64, Vec<String>>, DispatchError> {
    if runtime.declared_segments.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.recipient.id).collect();
    Ok(dispatcher
        .store
        .recipient_segment_names(&ids, &runtime.declared_segments)
        .await?)
}

fn prepare(renderer: &CampaignRenderer, delivery: ClaimedDelivery, segments: Vec<String>) -> Prepared {
    let delivery_id = delivery.delivery_id;
    if let Some(reason) = delivery.ineligible {
        return Prepared::Decided(DeliveryOutcome::Suppressed {
            delivery_id,
            reason,
        });
    }
    let context = RecipientContext {
        recipient: delivery.recipient,
        segments,
        recommendations: Vec::new(),
        cart: Vec::new(),
    };
    match renderer.render(&context) {
        Ok(message) => Prepared::Send(Box::new(Outgoing {
            delivery_id,
            attempts: delivery.attempts,
            queued_at: delivery.queued_at,
            message,
        })),
        Err(error) => Prepared::Decided(DeliveryOutcome::Failed {
            delivery_id,
            reason: format!("render: {error}"),
        }),
    }
}

/// Tracked links must be in the store before a recipient can click them.
async fn store_new_links(
    dispatcher: &Dispatcher,
    campaign_id: i64,
    prepared: &[Prepared],
    stored: &mut HashSet<i64>,
) -> Result<(), DispatchError> {
    let mut fresh = Vec::new();
    for item in prepared {
        if let Prepared::Send(outgoing) = item {
            for (link_id, url) in &outgoing.message.links {
                if stored.insert(*link_id) {
                    fresh.push((*link_id, url.clone()));
                }
            }
        }
    }
    if !fresh.is_empty() {
        dispatcher
            .store
            .store_links(campaign_id, &fresh)
            .await?;
    }
    Ok(())
}

async fn send(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    outgoing: &Outgoing,
) -> DeliveryOutcome {
    let Outgoing {
        delivery_id,
        attempts,
        queued_at,
        message,
    } = outgoing;
    let delivery_id = *delivery_id;
    let stem = file_stem(&message.message_id);
    let result = dispatcher
        .transport
        .send(&super::Outgoing {
            from: &runtime.envelope_from,
            to: &message.to,
            raw: &message.raw,
            file_stem: &stem,
            relay: runtime.relay.as_deref(),
        })
        .await;
    match result {
        SendResult::Accepted => DeliveryOutcome::Sent {
            delivery_id,
            message_id: message.message_id.clone(),
        },
        SendResult::Deferred(reason) => {
            deferred(dispatcher, delivery_id, *attempts, *queued_at, reason)
        }
        SendResult::Rejected {
            reason,
            bad_mailbox,
        } => {
            if bad_mailbox {
                suppress_bad_mailbox(dispatcher, &message.to, &reason).await;
            }
            DeliveryOutcome::Failed {
                delivery_id,
                reason,
            }
        }
        SendResult::Unknown(reason) => DeliveryOutcome::Unknown {
            delivery_id,
            reason,
        },
    }
}

fn deferred(
    dispatcher: &Dispatcher,
    delivery_id: i64,
    attempts: i64,
    queued_at: i64,
    reason: String,
) -> DeliveryOutcome {
    let now = crate::time::now();
    match dispatcher.settings.retry.next_attempt(attempts, queued_at, now) {
        Some(retry_at) => DeliveryOutcome::Deferred {
            delivery_id,
            retry_at,
            reason,
        },
        None => DeliveryOutcome::Failed {
            delivery_id,
            reason: format!("gave up after {attempts} attempts: {reason}"),
        },
    }
}

async fn suppress_bad_mailbox(dispatcher: &Dispatcher, to: &str, reason: &str) {
    let Ok(address) = EmailAddress::parse(to) else {
        return;
    };
    if let Err(error) = dispatcher.store.suppress(&address, &format!("bounce: {reason}")).await {
        tracing::error!(%error, "cannot add a bounced address to the suppression list");
    }
}

/// A file name from a Message-ID: `<a.b@host>` → `a.b@host`.
fn file_stem(message_id: &str) -> String {
    message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "@.-_".contains(c) { c } else { '_' })
        .collect()
}
