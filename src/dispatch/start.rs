use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{DeliverBatch, DispatchError, DispatchSettings, Dispatcher, JobQueue, StartCampaign};
use crate::domain::CampaignStatus;
use crate::experiment::Experiment;
use crate::schedule::LocalSendTime;
use crate::store::{Campaign, SqlFilter, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// The audience is frozen; `audience` deliveries were added to the ledger now.
    Started { audience: u64 },
    /// Already running (a retried job): delivery jobs were enqueued again.
    Resumed,
    /// Too late: `send_at` plus the grace period had passed.
    Expired,
    /// The campaign is no longer waiting to start (cancelled, paused, done).
    Skipped(CampaignStatus),
}

/// Renders a sample of the audience, then marks a draft campaign scheduled and
/// enqueues its start for `send_at` (now when unset or past).
pub async fn schedule_campaign(
    store: &Store,
    queue: &JobQueue,
    campaign_id: i64,
) -> Result<(), DispatchError> {
    let campaign = store.campaign(campaign_id).await?;
    if campaign.status == CampaignStatus::Draft {
        super::validate::validate_campaign(store, campaign_id).await?;
    }
    let moved = store
        .transition_campaign(
            campaign_id,
            &[CampaignStatus::Draft],
            CampaignStatus::Scheduled,
        )
        .await?;
    if !moved {
        return Err(DispatchError::Campaign {
            campaign: campaign_id,
            reason: format!("is {}, only a draft can be scheduled", campaign.status),
        });
    }
    push_start(queue, &campaign).await
}

/// Schedules a draft that has passed the check already (it was scheduled before with
/// the same template version).
pub(super) async fn reschedule_checked(
    store: &Store,
    queue: &JobQueue,
    campaign_id: i64,
) -> Result<(), DispatchError> {
    store
        .transition_campaign(
            campaign_id,
            &[CampaignStatus::Draft],
            CampaignStatus::Scheduled,
        )
        .await?;
    push_start(queue, &store.campaign(campaign_id).await?).await
}

/// Enqueues the campaign's start for `send_at` (now when unset or past). A second
/// start job for one campaign is harmless: it finds the campaign running.
pub(super) async fn push_start(queue: &JobQueue, campaign: &Campaign) -> Result<(), DispatchError> {
    let wait = campaign
        .send_at
        .map(|at| (at - crate::time::now()).max(0) as u64)
        .unwrap_or(0);
    queue
        .push_start(StartCampaign::start(campaign.id), Duration::from_secs(wait))
        .await
}

/// The `StartCampaign` job: freeze the audience inside the database, mark the
/// campaign running, enqueue the delivery jobs. Safe to run twice.
pub async fn start_campaign(
    dispatcher: &Arc<Dispatcher>,
    campaign_id: i64,
) -> Result<StartOutcome, DispatchError> {
    let store = &dispatcher.store;
    let campaign = store.campaign(campaign_id).await?;
    let outcome = match campaign.status {
        CampaignStatus::Scheduled => {
            if is_expired(&campaign, &dispatcher.settings) {
                store
                    .transition_campaign(
                        campaign_id,
                        &[CampaignStatus::Scheduled],
                        CampaignStatus::Expired,
                    )
                    .await?;
                tracing::warn!(
                    campaign_id,
                    "campaign start is past its grace period: expired"
                );
                return Ok(StartOutcome::Expired);
            }
            let filter = audience_filter(store, &campaign).await?;
            let now = dispatcher.settings.clock.now();
            let audience = match &campaign.settings.0.experiment {
                Some(experiment) => {
                    freeze_experiment(dispatcher, &campaign, experiment, &filter, now).await?
                }
                None => {
                    let send_times = send_times(store, &campaign, &dispatcher.settings).await?;
                    store
                        .freeze_audience_at(&campaign, &filter, send_times.as_ref(), now)
                        .await?
                }
            };
            store
                .transition_campaign(
                    campaign_id,
                    &[CampaignStatus::Scheduled],
                    CampaignStatus::Running,
                )
                .await?;
            tracing::info!(campaign_id, audience, "campaign started");
            StartOutcome::Started { audience }
        }
        CampaignStatus::Running => StartOutcome::Resumed,
        other => return Ok(StartOutcome::Skipped(other)),
    };
    for _ in 0..dispatcher.settings.jobs_per_campaign.max(1) {
        dispatcher
            .queue
            .push_deliver(DeliverBatch { campaign_id }, Duration::ZERO)
            .await?;
    }
    Ok(outcome)
}

/// Freezes an experiment's audience (each recipient's arm drawn from the campaign and
/// their id) and, for a test, enqueues its judge for the end of the wait.
async fn freeze_experiment(
    dispatcher: &Arc<Dispatcher>,
    campaign: &Campaign,
    experiment: &Experiment,
    filter: &SqlFilter,
    now: i64,
) -> Result<u64, DispatchError> {
    let send_times: Vec<Option<i64>> = experiment.variants.iter().map(|v| v.send_at).collect();
    let arm = |recipient| crate::experiment::assign::arm(experiment, campaign.id, recipient);
    let audience = dispatcher
        .store
        .freeze_experiment(campaign, filter, &send_times, now, arm)
        .await?;
    if experiment.picks_a_winner() {
        let wait = Duration::from_secs(experiment.wait_seconds.max(0) as u64);
        let job = StartCampaign::judge(campaign.id);
        dispatcher.queue.push_start(job, wait).await?;
    }
    Ok(audience)
}

fn is_expired(campaign: &Campaign, settings: &DispatchSettings) -> bool {
    let grace = settings.start_grace.as_secs() as i64;
    campaign
        .send_at
        .is_some_and(|at| settings.clock.now() > at + grace)
}

/// For a campaign sent at a local time: when it comes in each zone the recipients
/// name (`""` for those who name none).
async fn send_times(
    store: &Store,
    campaign: &Campaign,
    settings: &DispatchSettings,
) -> Result<Option<HashMap<String, i64>>, DispatchError> {
    let Some(text) = &campaign.settings.0.local_send_time else {
        return Ok(None);
    };
    let at: LocalSendTime = text.parse().map_err(|reason| DispatchError::Campaign {
        campaign: campaign.id,
        reason,
    })?;
    let zones = store.recipient_zones().await?;
    Ok(Some(
        zones
            .into_iter()
            .map(|zone| {
                let instant = at.for_recipient(Some(zone.as_str()), settings.default_zone);
                (zone, instant)
            })
            .collect(),
    ))
}

/// The campaign's segment as SQL; every consented recipient when it names none.
pub(super) async fn audience_filter(
    store: &Store,
    campaign: &Campaign,
) -> Result<SqlFilter, DispatchError> {
    let Some(segment_id) = campaign.segment_id else {
        return Ok(SqlFilter::all());
    };
    let segment = store.segment(segment_id).await?;
    crate::segment::compile_text(store, &segment.expression, crate::time::now())
        .await
        .map_err(|e| DispatchError::Segment {
            campaign: campaign.id,
            reason: format!("'{}': {e}", segment.name),
        })
}
