use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;

use super::ledger_writer::Ticket;
use super::runtime::CampaignRuntime;
use super::{DispatchError, Dispatcher, JobLeases, SendResult};
use crate::domain::{CampaignStatus, EmailAddress};
use crate::render::RenderedMessage;
use crate::schedule::{WhenCapped, zone_of};
use crate::store::{Claim, ClaimedDelivery, DeliveryOutcome, ExpiredLeases, RefusedMailbox};

/// How a render failure starts in the ledger's `last_error`.
const RENDER_FAILURE: &str = "render: ";

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
    /// This process is stopping: what it held is sent and recorded or handed back, and
    /// the campaign goes on in whichever worker takes the job next.
    ShuttingDown,
}

/// The `DeliverBatch` job: claim, render, send and record until nothing is left.
///
/// While a batch is being sent, the next one is claimed and rendered, so the SMTP
/// sessions do not wait for the database; outcomes are recorded as they come, by the
/// process's ledger writer. A job holds at most two batches that are claimed but not
/// sent. When the process is stopping, the messages already handed to SMTP are finished
/// and recorded, the rest of the batch and the one claimed ahead are handed back, and
/// nothing more is claimed.
pub async fn deliver_campaign(
    dispatcher: &Arc<Dispatcher>,
    campaign_id: i64,
) -> Result<BatchEnd, DispatchError> {
    let runtime = runtime_for(dispatcher, campaign_id).await?;
    let leases = dispatcher.job_leases();
    let mut memory = JobMemory::default();
    let mut next = prepare_batch(dispatcher, &runtime, &leases, &mut memory).await?;
    loop {
        let batch = match next {
            Next::Batch(claimed_ahead) if dispatcher.is_stopping() => {
                release(dispatcher, &claimed_ahead).await;
                flush(dispatcher).await?;
                return Ok(BatchEnd::ShuttingDown);
            }
            Next::Batch(batch) => batch,
            Next::ShuttingDown => {
                flush(dispatcher).await?;
                return Ok(BatchEnd::ShuttingDown);
            }
            Next::Empty => {
                flush(dispatcher).await?;
                return finish(dispatcher, &runtime).await;
            }
            Next::Stopped(status) => {
                flush(dispatcher).await?;
                return Ok(BatchEnd::Stopped(status));
            }
        };
        let (outcomes, upcoming) = tokio::join!(
            send_batch(dispatcher, &runtime, batch),
            prepare_batch(dispatcher, &runtime, &leases, &mut memory),
        );
        let upcoming = upcoming.and_then(|upcoming| {
            dispatcher.ledger().check().map_err(DispatchError::Ledger)?;
            Ok(upcoming)
        });
        next = match upcoming {
            Ok(upcoming) => upcoming,
            Err(error) => {
                if let Err(also) = flush(dispatcher).await {
                    tracing::error!(error = %also, "cannot record outcomes after a failure");
                }
                return Err(error);
            }
        };
        if let Some(reason) = pause_reason(dispatcher, &runtime, &outcomes) {
            if let Next::Batch(unsent) = &next {
                release(dispatcher, unsent).await;
            }
            flush(dispatcher).await?;
            return pause(dispatcher, campaign_id, &reason).await;
        }
    }
}

/// Waits until every outcome this process queued is recorded.
async fn flush(dispatcher: &Dispatcher) -> Result<(), DispatchError> {
    dispatcher
        .ledger()
        .flush()
        .await
        .map_err(DispatchError::Ledger)
}

/// What a job carries from one batch to the next.
#[derive(Default)]
struct JobMemory {
    /// Tracked links already in the store.
    stored_links: HashSet<i64>,
    /// The highest delivery id claimed so far: where the next claim starts looking.
    claimed_up_to: i64,
}

/// What the next round of a job has to do.
enum Next {
    Batch(Vec<Prepared>),
    /// Nothing claimable now.
    Empty,
    /// The campaign is not running any more.
    Stopped(CampaignStatus),
    /// This process is stopping: nothing was claimed.
    ShuttingDown,
}

/// Claims the next batch and renders it, unless the campaign has stopped running.
async fn prepare_batch(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    leases: &JobLeases<'_>,
    memory: &mut JobMemory,
) -> Result<Next, DispatchError> {
    if dispatcher.is_stopping() {
        return Ok(Next::ShuttingDown);
    }
    let store = &dispatcher.store;
    let status = store.campaign(runtime.id).await?.status;
    if status != CampaignStatus::Running {
        return Ok(Next::Stopped(status));
    }
    if dispatcher.lease_check_due() {
        let expired = store.expire_leases().await?;
        if expired != ExpiredLeases::default() {
            tracing::warn!(
                unknown = expired.unknown,
                handed_back = expired.returned,
                "leases of a stopped worker ran out: deliveries it had handed to SMTP are unknown, the others will be sent"
            );
        }
    }
    let claimed = store
        .claim(&claim(dispatcher, runtime.id, memory.claimed_up_to))
        .await?;
    if claimed.is_empty() {
        return Ok(Next::Empty);
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.delivery_id).collect();
    leases.hold(&ids);
    memory.claimed_up_to = memory
        .claimed_up_to
        .max(ids.iter().copied().max().unwrap_or(0));
    let prepared = async {
        let prepared = prepare_claimed(dispatcher, runtime, claimed).await?;
        store_new_links(dispatcher, runtime.id, &prepared, &mut memory.stored_links).await?;
        Ok(prepared)
    };
    match prepared.await {
        Ok(prepared) => Ok(Next::Batch(prepared)),
        Err(error) => {
            release_ids(dispatcher, &ids).await;
            Err(error)
        }
    }
}

/// Gives claimed but unsent deliveries back to the ledger as they were.
async fn release(dispatcher: &Dispatcher, batch: &[Prepared]) {
    let ids: Vec<i64> = batch.iter().map(Prepared::delivery_id).collect();
    release_ids(dispatcher, &ids).await;
}

async fn release_ids(dispatcher: &Dispatcher, ids: &[i64]) {
    if let Err(error) = dispatcher
        .store
        .release_claims(&dispatcher.settings.worker_name, ids)
        .await
    {
        tracing::error!(%error, "cannot release claimed deliveries: their leases will expire");
    }
    dispatcher.let_go(ids.iter().copied());
}

/// Pauses the campaign, saying why: its deliveries not yet sent stay as they are, so
/// `resume` sends them.
async fn pause(
    dispatcher: &Dispatcher,
    campaign_id: i64,
    reason: &str,
) -> Result<BatchEnd, DispatchError> {
    dispatcher
        .store
        .pause_campaign_because(campaign_id, reason)
        .await?;
    tracing::error!(campaign_id, reason, "campaign paused");
    Ok(BatchEnd::Stopped(CampaignStatus::Paused))
}

/// Why the campaign must pause after these outcomes, if it must: a relay refused the
/// sender or the message (every recipient would be refused alike), or too many
/// messages fail to render.
fn pause_reason(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    outcomes: &[DeliveryOutcome],
) -> Option<String> {
    let refused = outcomes.iter().find_map(|o| match o {
        DeliveryOutcome::Released { reason, .. } => Some(reason),
        _ => None,
    });
    if let Some(reply) = refused {
        return Some(format!(
            "the SMTP server refused the sender or the message, not a recipient: {reply}"
        ));
    }
    too_many_render_failures(dispatcher, runtime, outcomes)
        .then(|| "too many messages fail to render".to_string())
}

fn too_many_render_failures(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    outcomes: &[DeliveryOutcome],
) -> bool {
    let rendered = outcomes
        .iter()
        .filter(|o| !matches!(o, DeliveryOutcome::Suppressed { .. }))
        .count() as u64;
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, DeliveryOutcome::Failed { reason, .. } if reason.starts_with(RENDER_FAILURE)))
        .count() as u64;
    runtime
        .note_renders(rendered, failed)
        .is_some_and(|rate| rate > dispatcher.settings.max_render_failure_rate)
}

fn claim(dispatcher: &Dispatcher, campaign_id: i64, after_id: i64) -> Claim {
    Claim {
        campaign_id,
        worker: dispatcher.settings.worker_name.clone(),
        limit: dispatcher.settings.batch_size,
        lease_seconds: dispatcher.settings.lease.as_secs() as i64,
        after_id,
        due: dispatcher.settings.clock.now(),
        cap: dispatcher.settings.frequency_cap,
    }
}

async fn finish(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
) -> Result<BatchEnd, DispatchError> {
    let (store, campaign_id) = (&dispatcher.store, runtime.id);
    // Asked before the ledger is counted: the judgement and the rest's deliveries are
    // written together, so a test judged after this has its rest in the count.
    let awaits_winner = runtime.tests && awaits_winner(store, campaign_id).await?;
    let counts = store.ledger_counts(campaign_id).await?;
    if counts.settled() && (runtime.standing || awaits_winner) {
        return Ok(BatchEnd::Finished);
    }
    if counts.settled() {
        let finished_here = store
            .transition_campaign(
                campaign_id,
                &[CampaignStatus::Running],
                CampaignStatus::Done,
            )
            .await?;
        if finished_here {
            tracing::info!(
                campaign_id,
                sent = counts.sent,
                failed = counts.failed,
                "campaign done"
            );
        }
        return Ok(BatchEnd::Finished);
    }
    if counts.sending > 0 {
        return Ok(BatchEnd::OthersInFlight);
    }
    let at = store
        .next_retry_at(campaign_id)
        .await?
        .unwrap_or_else(|| dispatcher.settings.clock.now());
    Ok(BatchEnd::RetryAt(at))
}

/// A test whose winner has not gone out yet: the judge job sends the rest and
/// delivering goes on then.
async fn awaits_winner(
    store: &crate::store::Store,
    campaign_id: i64,
) -> Result<bool, DispatchError> {
    Ok(store.judgement(campaign_id).await?.is_none())
}

/// The campaign's compiled templates, built once per process and shared by all jobs.
async fn runtime_for(
    dispatcher: &Dispatcher,
    campaign_id: i64,
) -> Result<Arc<CampaignRuntime>, DispatchError> {
    let settings = &dispatcher.settings;
    let now = settings.clock.now();
    if let Some(runtime) = dispatcher.cached_runtime(campaign_id)
        && runtime.fresh()
    {
        return Ok(runtime);
    }
    let runtime = CampaignRuntime::load(
        &dispatcher.store,
        &settings.base_url,
        &settings.keyring,
        settings.dkim.as_ref(),
        campaign_id,
        now,
    )
    .await?;
    let runtime = Arc::new(runtime);
    dispatcher.cache_runtime(campaign_id, runtime.clone());
    Ok(runtime)
}

/// A rendered message and the ledger facts its outcome depends on.
struct Outgoing {
    delivery_id: i64,
    recipient_id: i64,
    attempts: i64,
    queued_at: i64,
    message: RenderedMessage,
    /// What the message was rendered with, stored when it is handed to SMTP.
    rendered_with: String,
}

/// One prepared delivery: either a message to send or an outcome decided already.
enum Prepared {
    Send(Box<Outgoing>),
    Decided(DeliveryOutcome),
}

impl Prepared {
    fn delivery_id(&self) -> i64 {
        match self {
            Prepared::Send(outgoing) => outgoing.delivery_id,
            Prepared::Decided(outcome) => outcome.delivery_id(),
        }
    }
}

/// Decides what it can (consent, render failures) and renders the rest.
async fn prepare_claimed(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    claimed: Vec<ClaimedDelivery>,
) -> Result<Vec<Prepared>, DispatchError> {
    let (decided, eligible): (Vec<_>, Vec<_>) =
        claimed.into_iter().partition(|d| d.ineligible.is_some());
    let mut prepared: Vec<Prepared> = decided.into_iter().map(suppressed).collect();
    let (waiting, eligible): (Vec<_>, Vec<_>) = eligible
        .into_iter()
        .map(|d| (waits(dispatcher, runtime, &d), d))
        .partition(|(outcome, _)| outcome.is_some());
    prepared.extend(
        waiting
            .into_iter()
            .filter_map(|(o, _)| o.map(Prepared::Decided)),
    );
    let eligible: Vec<ClaimedDelivery> = eligible.into_iter().map(|(_, d)| d).collect();
    let facts: Vec<(i64, i64, i64, Option<i64>)> = eligible
        .iter()
        .map(|d| (d.delivery_id, d.attempts, d.queued_at, d.variant))
        .collect();
    let recipients = eligible.into_iter().map(|d| d.recipient).collect();
    let now = dispatcher.settings.clock.now();
    let contexts = runtime.contexts(&dispatcher.store, recipients, now).await?;
    for ((delivery_id, attempts, queued_at, variant), context) in facts.into_iter().zip(contexts) {
        prepared.push(match runtime.renderer_for(variant).render(&context) {
            Ok(message) => Prepared::Send(Box::new(Outgoing {
                delivery_id,
                recipient_id: context.recipient.id,
                attempts,
                queued_at,
                message,
                rendered_with: runtime.rendered_with(&context, variant).encode(),
            })),
            Err(error) => Prepared::Decided(DeliveryOutcome::Failed {
                delivery_id,
                reason: format!("{RENDER_FAILURE}{error}"),
            }),
        });
    }
    Ok(prepared)
}

/// Sends a batch, queuing each outcome for the ledger as soon as it is known.
async fn send_batch(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    prepared: Vec<Prepared>,
) -> Vec<DeliveryOutcome> {
    let ledger = dispatcher.ledger();
    let concurrency = prepared.len().max(1);
    futures::stream::iter(prepared)
        .map(|item| async move {
            match item {
                Prepared::Decided(outcome) => {
                    ledger.record(outcome.clone());
                    outcome
                }
                Prepared::Send(outgoing) => {
                    let ticket = ledger.ticket(
                        outgoing.delivery_id,
                        &outgoing.rendered_with,
                        &dispatcher.stopping,
                    );
                    let outcome = send(dispatcher, runtime, &outgoing, &ticket).await;
                    ticket.settle(outcome.clone());
                    outcome
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// What becomes of a delivery that may not go now: over the frequency cap (skipped
/// or held until the window has room), or quiet hours in the recipient's zone (held
/// until they end).
fn waits(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    delivery: &ClaimedDelivery,
) -> Option<DeliveryOutcome> {
    let settings = &dispatcher.settings;
    let delivery_id = delivery.delivery_id;
    if let (Some(until), Some(cap)) = (delivery.capped_until, settings.frequency_cap) {
        let reason = cap.reason();
        return Some(match cap.when_capped {
            WhenCapped::Skip => DeliveryOutcome::Suppressed {
                delivery_id,
                reason,
            },
            WhenCapped::Defer => DeliveryOutcome::Held {
                delivery_id,
                until,
                reason,
            },
        });
    }
    let quiet = runtime.quiet_hours(settings.quiet_hours)?;
    let zone = zone_of(
        delivery.recipient.timezone.as_deref(),
        settings.default_zone,
    );
    let until = quiet.held_until(settings.clock.now(), zone)?;
    Some(DeliveryOutcome::Held {
        delivery_id,
        until,
        reason: format!("quiet hours {quiet} in {zone}"),
    })
}

/// Consent or the suppression list no longer allow this message.
fn suppressed(delivery: ClaimedDelivery) -> Prepared {
    Prepared::Decided(DeliveryOutcome::Suppressed {
        delivery_id: delivery.delivery_id,
        reason: delivery.ineligible.unwrap_or_default(),
    })
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
        dispatcher.store.store_links(campaign_id, &fresh).await?;
    }
    Ok(())
}

async fn send(
    dispatcher: &Dispatcher,
    runtime: &CampaignRuntime,
    outgoing: &Outgoing,
    ticket: &Ticket<'_>,
) -> DeliveryOutcome {
    let Outgoing {
        delivery_id,
        recipient_id,
        attempts,
        queued_at,
        message,
        ..
    } = outgoing;
    let delivery_id = *delivery_id;
    let stem = file_stem(&message.message_id);
    let return_path = dispatcher
        .settings
        .return_path
        .as_ref()
        .map(|path| path.address(&dispatcher.settings.keyring, runtime.id, *recipient_id));
    let result = dispatcher
        .transport
        .send(&super::Outgoing {
            from: return_path.as_deref().unwrap_or(&runtime.envelope_from),
            to: &message.to,
            raw: &message.raw,
            file_stem: &stem,
            relay: runtime.relay.as_deref(),
            hand_over: ticket,
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
                let cause = RefusedMailbox {
                    campaign_id: runtime.id,
                    delivery_id,
                    reply: &reason,
                };
                suppress_bad_mailbox(dispatcher, &message.to, cause).await;
            }
            DeliveryOutcome::Failed {
                delivery_id,
                reason,
            }
        }
        // Not this recipient's doing: handed back, and the campaign pauses.
        SendResult::Refused(reason) => DeliveryOutcome::Released {
            delivery_id,
            reason,
        },
        SendResult::Unknown(reason) => DeliveryOutcome::Unknown {
            delivery_id,
            reason,
        },
        SendResult::NotHanded(reason) => {
            tracing::debug!(delivery_id, %reason, "not handed to SMTP, handed back");
            DeliveryOutcome::Withdrawn { delivery_id }
        }
    }
}

fn deferred(
    dispatcher: &Dispatcher,
    delivery_id: i64,
    attempts: i64,
    queued_at: i64,
    reason: String,
) -> DeliveryOutcome {
    let now = dispatcher.settings.clock.now();
    match dispatcher
        .settings
        .retry
        .next_attempt(attempts, queued_at, now)
    {
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

async fn suppress_bad_mailbox(dispatcher: &Dispatcher, to: &str, cause: RefusedMailbox<'_>) {
    let Ok(address) = EmailAddress::parse(to) else {
        return;
    };
    if let Err(error) = dispatcher
        .store
        .suppress_refused_mailbox(&address, cause)
        .await
    {
        tracing::error!(%error, "cannot add a bounced address to the suppression list");
    }
}

/// A file name from a Message-ID: `<a.b@host>` → `a.b@host`.
fn file_stem(message_id: &str) -> String {
    message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
