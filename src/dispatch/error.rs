use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("campaign {campaign}: {reason}")]
    Campaign { campaign: i64, reason: String },
    #[error("cannot record delivery outcomes: {0}")]
    Ledger(String),
    #[error("cannot enqueue job: {0}")]
    Queue(String),
    #[error("campaign {campaign} template: {source}")]
    Render {
        campaign: i64,
        source: crate::render::RenderError,
    },
    #[error("campaign {campaign} does not render for {} sampled recipients:\n  {}", errors.len(), errors.join("\n  "))]
    Invalid { campaign: i64, errors: Vec<String> },
    #[error("segment of campaign {campaign}: {reason}")]
    Segment { campaign: i64, reason: String },
}
