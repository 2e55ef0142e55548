//! When and how often people are mailed: local send times, quiet hours and frequency
//! caps. The rules are parsed and evaluated here; the ledger applies them when a
//! campaign's audience is frozen (local times) and when deliveries are claimed (quiet
//! hours, caps).

mod frequency_cap;
mod local_time;
mod quiet_hours;
mod zones;

pub use frequency_cap::{FrequencyCap, WhenCapped};
pub use local_time::LocalSendTime;
pub use quiet_hours::QuietHours;
pub use zones::{instant_of, local_time_at, parse_zone, zone_of};

/// The zone of recipients who have none, unless the worker is told another.
pub const DEFAULT_ZONE: chrono_tz::Tz = chrono_tz::UTC;
