//! Before a campaign is scheduled: render it for a sample of its audience and refuse
//! with every error found.

use super::{CampaignRuntime, DispatchError};
use crate::links::KeyRing;
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
    )
    .await?;
    let campaign = store.campaign(campaign_id).await?;
    let filter = super::start::audience_filter(store, &campaign).await?;
    let sample = store.sample_segment(&filter, VALIDATION_SAMPLE).await?;
    let contexts = runtime.contexts(store, sample).await?;
    let errors: Vec<String> = contexts
        .iter()
        .filter_map(|context| {
            runtime
                .renderer
                .render(context)
                .err()
                .map(|e| format!("recipient {}: {e}", context.recipient.email))
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(DispatchError::Invalid {
        campaign: campaign_id,
        errors,
    })
}
