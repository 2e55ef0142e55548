//! A campaign's statistics with a breakdown per declared segment, as the API and
//! `mailcast stats` show them.

use crate::store::{CampaignStats, SqlFilter, Store, StoreError};

/// Segment membership is evaluated now, not as it was when the campaign was sent. A
/// declared segment that no longer compiles (deleted, changed) is left out and logged.
pub async fn campaign_statistics(
    store: &Store,
    campaign_id: i64,
) -> Result<CampaignStats, StoreError> {
    let campaign = store.campaign(campaign_id).await?;
    let now = crate::time::now();
    let mut segments: Vec<(String, SqlFilter)> = Vec::new();
    for name in &campaign.settings.declared_segments {
        match crate::segment::compile_named(store, name, now).await {
            Ok(filter) => segments.push((name.clone(), filter)),
            Err(error) => {
                tracing::warn!(campaign_id, segment = %name, %error, "declared segment left out of the statistics");
            }
        }
    }
    store.campaign_stats(campaign_id, &segments).await
}
