//! A campaign sent at the same wall time in every recipient's own zone.

use std::fmt;
use std::str::FromStr;

use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::{instant_of, zone_of};

/// The first zone to reach a wall time is 14 hours ahead of UTC.
const EARLIEST_OFFSET_SECONDS: i32 = 14 * 3600;

/// A wall time (`2026-12-08T09:00`), without a zone: each recipient gets it in theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSendTime(pub NaiveDateTime);

impl LocalSendTime {
    /// When this wall time comes for a recipient whose `timezone` is given.
    pub fn for_recipient(&self, timezone: Option<&str>, default: Tz) -> i64 {
        instant_of(self.0, zone_of(timezone, default))
    }

    /// When it first comes anywhere: the campaign starts (and freezes its audience)
    /// then.
    pub fn earliest(&self) -> i64 {
        let earliest = FixedOffset::east_opt(EARLIEST_OFFSET_SECONDS).expect("a valid offset");
        earliest
            .from_local_datetime(&self.0)
            .single()
            .map_or_else(|| self.0.and_utc().timestamp(), |t| t.timestamp())
    }
}

impl FromStr for LocalSendTime {
    type Err = String;

    /// `YYYY-MM-DDTHH:MM[:SS]`, no offset.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(LocalSendTime)
            .ok_or_else(|| {
                format!("local send time '{text}' is not YYYY-MM-DDTHH:MM without an offset (2026-12-08T09:00, say)")
            })
    }
}

impl fmt::Display for LocalSendTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_recipient_gets_the_wall_time_in_their_zone_earliest_first() {
        let at: LocalSendTime = "2026-12-08T09:00".parse().unwrap();
        let utc = |t: &str| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
                .unwrap()
                .and_utc()
                .timestamp()
        };
        assert_eq!(at.earliest(), utc("2026-12-07T19:00"));
        let default = chrono_tz::UTC;
        assert_eq!(
            at.for_recipient(Some("Europe/Berlin"), default),
            utc("2026-12-08T08:00")
        );
        assert_eq!(at.for_recipient(None, default), utc("2026-12-08T09:00"));
        assert!(at.for_recipient(Some("Pacific/Kiritimati"), default) >= at.earliest());
        assert_eq!(at.to_string(), "2026-12-08T09:00");
    }

    #[test]
    fn a_time_with_an_offset_is_refused() {
        let error = "2026-12-08T09:00Z".parse::<LocalSendTime>().unwrap_err();
        assert!(error.contains("without an offset"), "{error}");
    }
}
