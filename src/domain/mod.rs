//! Types the core works with, parsed once at the edge.

mod email;
mod status;

pub use email::{EmailAddress, EmailError};
pub use status::{CampaignKind, CampaignStatus, DeliveryStatus, UnknownStatus};
