//! Before a campaign is scheduled: render it for a sample of its audience and refuse
//! with every error found. Moving a campaign to a newer template version passes the
//! same check.

use super::{CampaignRuntime, DispatchError, JobQueue};
use crate::domain::CampaignStatus;
use crate::links::KeyRing;
use crate::render::RenderError;
use crate::store::Store;

/// Recipients rendered before a campaign may be scheduled.
pub const VALIDATION_SAMPLE: i64 = 25;

pub async fn validate_campaign(store: &Store, campaign_id: i64) -> Result<(), DispatchError> {
    // Links are not sent anywhere here, so any base URL and key do.
    let runtime = CampaignRuntime::load(
        store,
        "http://localhost",
        &KeyRing::development(),
        None,
        campaign_id,
        crate::time::now(),
    )
    .await?;
    let campaign = store.campaign(campaign_id).await?;
    let filter = super::start::audience_filter(store, &campaign).await?;
    let sample = store.sample_segment(&filter, VALIDATION_SAMPLE).await?;
    let contexts = runtime.contexts(store, sample, crate::time::now()).await?;
    let mut errors = Vec::new();
    'variants: for variant in 0..runtime.variant_count() {
        let variant = Some(variant as i64).filter(|_| runtime.variant_count() > 1);
        let label = match variant {
            Some(v) => format!(
                "variant {}: ",
                crate::experiment::Experiment::label(v as usize)
            ),
            None => String::new(),
        };
        for context in &contexts {
            let Err(error) = runtime.renderer_for(variant).render(context) else {
                continue;
            };
            let limit_crossed = matches!(error, RenderError::Limit { .. });
            errors.push(format!(
                "{label}recipient {}: {error}",
                context.recipient.email
            ));
            // A template that runs away does so for everyone: one sample proves it, and
            // each further one could cost the whole time limit.
            if limit_crossed {
                break 'variants;
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(DispatchError::Invalid {
        campaign: campaign_id,
        errors,
    })
}

/// What [`retemplate_campaign`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retemplated {
    /// The campaign already renders the newest version.
    Unchanged {
        version: i64,
    },
    Moved {
        from: i64,
        to: i64,
    },
}

/// Moves a draft or scheduled campaign to the newest version of its template. A
/// scheduled campaign is checked with the new version first, as `schedule` does; when
/// the check fails it stays scheduled with the version it had.
///
/// Running and paused campaigns keep their version: workers hold the compiled
/// template of a campaign they have started.
pub async fn retemplate_campaign(
    store: &Store,
    queue: &JobQueue,
    campaign_id: i64,
) -> Result<Retemplated, DispatchError> {
    let campaign = store.campaign(campaign_id).await?;
    let current = store.template_version(campaign.template_id).await?;
    let newest = store.newest_template_version(campaign.template_id).await?;
    if newest.id == current.id {
        return Ok(Retemplated::Unchanged {
            version: current.version,
        });
    }
    let moved = Retemplated::Moved {
        from: current.version,
        to: newest.version,
    };
    let draft = [CampaignStatus::Draft];
    if store
        .set_campaign_template(campaign_id, newest.id, &draft)
        .await?
    {
        return Ok(moved);
    }
    // Back to a draft while it is checked, so no start can pick up a half-made change.
    let scheduled = [CampaignStatus::Scheduled];
    if !store
        .transition_campaign(campaign_id, &scheduled, CampaignStatus::Draft)
        .await?
    {
        let status = store.campaign(campaign_id).await?.status;
        return Err(DispatchError::Campaign {
            campaign: campaign_id,
            reason: format!(
                "is {status}: only a draft or scheduled campaign can move to another \
                 template version (workers keep the version a campaign started with)"
            ),
        });
    }
    store
        .set_campaign_template(campaign_id, newest.id, &draft)
        .await?;
    if let Err(error) = super::schedule_campaign(store, queue, campaign_id).await {
        store
            .set_campaign_template(campaign_id, current.id, &draft)
            .await?;
        super::start::reschedule_checked(store, queue, campaign_id).await?;
        return Err(error);
    }
    Ok(moved)
}
