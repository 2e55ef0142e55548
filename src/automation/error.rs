use crate::automation::definition::DefinitionErrors;
use crate::dispatch::DispatchError;
use crate::segment::SegmentError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Definition(#[from] DefinitionErrors),
    #[error("automation version {version}: stored definition unreadable: {reason}")]
    Stored { version: i64, reason: String },
    #[error("step {step} `if`: {source}")]
    Condition { step: usize, source: SegmentError },
    #[error("automation trigger `enters_segment`: {0}")]
    Segment(SegmentError),
    #[error("step {step} `send`: {reason}")]
    Send { step: usize, reason: String },
    #[error(transparent)]
    Queue(#[from] DispatchError),
}
