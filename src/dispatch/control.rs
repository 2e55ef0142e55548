//! Pause, resume, cancel and re-queue: commands that take effect on every worker
//! through the store, which each delivery loop reads between claims.

use std::time::Duration;

use super::{DeliverBatch, DispatchError, JobQueue};
use crate::domain::{CampaignStatus, DeliveryStatus};
use crate::store::Store;

use CampaignStatus::{Cancelled, Done, Draft, Paused, Running, Scheduled};

pub async fn pause_campaign(store: &Store, campaign_id: i64) -> Result<(), DispatchError> {
    move_campaign(store, campaign_id, &[Scheduled, Running], Paused).await
}

pub async fn cancel_campaign(store: &Store, campaign_id: i64) -> Result<(), DispatchError> {
    move_campaign(
        store,
        campaign_id,
        &[Draft, Scheduled, Running, Paused],
        Cancelled,
    )
    .await
}

/// A paused campaign goes on where it stopped; one paused before it started waits
/// for its start again.
pub async fn resume_campaign(
    store: &Store,
    queue: &JobQueue,
    campaign_id: i64,
    slots: usize,
) -> Result<(), DispatchError> {
    let campaign = store.campaign(campaign_id).await?;
    if campaign.started_at.is_none() {
        // Paused before it started: it starts at its send time, not now.
        move_campaign(store, campaign_id, &[Paused], Scheduled).await?;
        return super::start::push_start(queue, &campaign).await;
    }
    move_campaign(store, campaign_id, &[Paused], Running).await?;
    push_deliveries(queue, campaign_id, slots).await
}

/// Puts the campaign's `failed` or `unknown` deliveries back to `pending` (their
/// Message-ID stays the same) and delivers them. Returns how many were re-queued.
pub async fn requeue_deliveries(
    store: &Store,
    queue: &JobQueue,
    campaign_id: i64,
    from: DeliveryStatus,
    slots: usize,
) -> Result<u64, DispatchError> {
    if !matches!(from, DeliveryStatus::Failed | DeliveryStatus::Unknown) {
        return Err(DispatchError::Campaign {
            campaign: campaign_id,
            reason: format!("only failed or unknown deliveries can be re-queued, not {from}"),
        });
    }
    let count = store.requeue_deliveries(campaign_id, from).await?;
    if count > 0 {
        store
            .transition_campaign(campaign_id, &[Done], Running)
            .await?;
        push_deliveries(queue, campaign_id, slots).await?;
    }
    Ok(count)
}

async fn push_deliveries(
    queue: &JobQueue,
    campaign_id: i64,
    slots: usize,
) -> Result<(), DispatchError> {
    for _ in 0..slots.max(1) {
        queue
            .push_deliver(DeliverBatch { campaign_id }, Duration::ZERO)
            .await?;
    }
    Ok(())
}

async fn move_campaign(
    store: &Store,
    campaign_id: i64,
    from: &[CampaignStatus],
    to: CampaignStatus,
) -> Result<(), DispatchError> {
    if store.transition_campaign(campaign_id, from, to).await? {
        return Ok(());
    }
    let campaign = store.campaign(campaign_id).await?;
    let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    Err(DispatchError::Campaign {
        campaign: campaign_id,
        reason: format!(
            "is {}; only a campaign that is {} can become {to}",
            campaign.status,
            allowed.join(" or ")
        ),
    })
}
