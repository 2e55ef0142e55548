//! A daily window of local time in which marketing messages wait.

use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveTime};
use chrono_tz::Tz;

use super::{instant_of, local_time_at};

/// From `start` to `end` local time, across midnight when `end` is earlier
/// (`21:00-08:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// When it is quiet at `now` in `zone`: the instant the window ends there.
    pub fn held_until(&self, now: i64, zone: Tz) -> Option<i64> {
        let local = local_time_at(now, zone);
        let time = local.time();
        let across_midnight = self.end < self.start;
        let inside = if across_midnight {
            time >= self.start || time < self.end
        } else {
            time >= self.start && time < self.end
        };
        if !inside {
            return None;
        }
        let end_day = if across_midnight && time >= self.start {
            local.date() + Duration::days(1)
        } else {
            local.date()
        };
        Some(instant_of(end_day.and_time(self.end), zone))
    }
}

impl FromStr for QuietHours {
    type Err = String;

    /// `HH:MM-HH:MM` (an en dash works too).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("quiet hours '{text}' are not HH:MM-HH:MM (21:00-08:00, say)");
        let (start, end) = text.trim().split_once(['-', '–']).ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let hours = QuietHours {
            start: time(start)?,
            end: time(end)?,
        };
        if hours.start == hours.end {
            return Err(format!(
                "quiet hours '{text}' start and end at the same time"
            ));
        }
        Ok(hours)
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn utc(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn a_night_window_holds_until_the_morning_in_the_recipients_zone() {
        let quiet: QuietHours = "21:00-08:00".parse().unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        // 22:30 in Berlin (UTC+1 in December): held until 08:00 Berlin the next day.
        assert_eq!(
            quiet.held_until(utc("2026-12-07T21:30"), berlin),
            Some(utc("2026-12-08T07:00"))
        );
        // 06:00 in Berlin: held until 08:00 the same day.
        assert_eq!(
            quiet.held_until(utc("2026-12-08T05:00"), berlin),
            Some(utc("2026-12-08T07:00"))
        );
        assert_eq!(quiet.held_until(utc("2026-12-08T07:00"), berlin), None);
        assert_eq!(quiet.held_until(utc("2026-12-08T19:59"), berlin), None);
    }

    #[test]
    fn a_daytime_window_works_too() {
        let quiet: QuietHours = "12:00–14:00".parse().unwrap();
        assert_eq!(
            quiet.held_until(utc("2026-12-08T13:00"), chrono_tz::UTC),
            Some(utc("2026-12-08T14:00"))
        );
        assert_eq!(quiet.to_string(), "12:00-14:00");
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (text, needle) in [
            ("21-08", "not HH:MM-HH:MM"),
            ("21:00", "not HH:MM-HH:MM"),
            ("25:00-08:00", "not HH:MM-HH:MM"),
            ("08:00-08:00", "same time"),
        ] {
            let error = text.parse::<QuietHours>().unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
