//! Recipients' time zones: wall times to instants and back, with a default zone for
//! recipients who have none (or name no zone).

use chrono::{Duration, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// An IANA zone name such as `Europe/Berlin`.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| format!("unknown time zone '{name}' (an IANA name such as Europe/Berlin)"))
}

/// The zone a recipient's `timezone` names, or `default` when it names none.
pub fn zone_of(timezone: Option<&str>, default: Tz) -> Tz {
    timezone
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(default)
}

/// The instant (unix seconds) when clocks in `zone` show `wall`. A wall time that a
/// daylight-saving change skips is taken as that much after the change (02:30 on a
/// night whose 02:00 becomes 03:00 is 03:30); one that happens twice, as the first.
pub fn instant_of(wall: NaiveDateTime, zone: Tz) -> i64 {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(at) => at.timestamp(),
        LocalResult::Ambiguous(first, _) => first.timestamp(),
        LocalResult::None => {
            let before = zone
                .offset_from_utc_datetime(&(wall - Duration::days(1)))
                .fix()
                .local_minus_utc();
            wall.and_utc().timestamp() - i64::from(before)
        }
    }
}

/// What clocks in `zone` show at `instant`.
pub fn local_time_at(instant: i64, zone: Tz) -> NaiveDateTime {
    let utc = chrono::DateTime::from_timestamp(instant, 0).unwrap_or_default();
    utc.with_timezone(&zone).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn utc(text: &str) -> i64 {
        wall(text).and_utc().timestamp()
    }

    #[test]
    fn nine_in_the_morning_follows_daylight_saving() {
        let la = parse_zone("America/Los_Angeles").unwrap();
        // 2026-03-08: Los Angeles moves from UTC−8 to UTC−7 at 02:00.
        assert_eq!(
            instant_of(wall("2026-03-07T09:00"), la),
            utc("2026-03-07T17:00")
        );
        assert_eq!(
            instant_of(wall("2026-03-08T09:00"), la),
            utc("2026-03-08T16:00")
        );
        let auckland = parse_zone("Pacific/Auckland").unwrap();
        assert_eq!(
            instant_of(wall("2026-03-08T09:00"), auckland),
            utc("2026-03-07T20:00")
        );
        assert_eq!(
            local_time_at(utc("2026-03-08T16:00"), la),
            wall("2026-03-08T09:00")
        );
    }

    #[test]
    fn skipped_and_repeated_wall_times_have_one_instant() {
        let la = parse_zone("America/Los_Angeles").unwrap();
        assert_eq!(
            instant_of(wall("2026-03-08T02:30"), la),
            utc("2026-03-08T10:30")
        );
        // 2026-11-01 01:30 happens twice; the first is in daylight time (UTC−7).
        assert_eq!(
            instant_of(wall("2026-11-01T01:30"), la),
            utc("2026-11-01T08:30")
        );
    }

    #[test]
    fn recipients_without_a_zone_get_the_default() {
        let berlin = parse_zone("Europe/Berlin").unwrap();
        assert_eq!(zone_of(None, berlin), berlin);
        assert_eq!(zone_of(Some("Mars/Olympus"), berlin), berlin);
        assert_eq!(zone_of(Some("Asia/Tokyo"), berlin), chrono_tz::Asia::Tokyo);
        let error = parse_zone("Mars/Olympus").unwrap_err();
        assert!(error.contains("Mars/Olympus"), "{error}");
    }
}
