//! Local times of day in a recipient's zone, on either side of a daylight-saving change.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use super::definition::LocalTime;
use crate::schedule::{instant_of, local_time_at};

/// The first instant after `after` at which clocks in `zone` show `at`.
pub fn next_local_time(after: i64, at: &LocalTime, zone: Tz) -> i64 {
    let mut date = local_time_at(after, zone).date();
    loop {
        let candidate = instant_of(date.and_time(at.naive()), zone);
        if candidate > after {
            return candidate;
        }
        date = date.succ_opt().expect("a date before the end of time");
    }
}

/// When `month_day` (`MM-DD`) at `at` comes in `zone` in the year of `near` (or the
/// year after or before, whichever is nearest to `near`). 29 February falls on the
/// 28th in other years.
pub fn occurrence_near(near: i64, month_day: &str, at: &LocalTime, zone: Tz) -> Option<i64> {
    let (month, day) = month_day.split_once('-')?;
    let (month, day): (u32, u32) = (month.parse().ok()?, day.parse().ok()?);
    let year = local_time_at(near, zone).year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| {
            let date = NaiveDate::from_ymd_opt(y, month, day)
                .or_else(|| NaiveDate::from_ymd_opt(y, month, day - 1))?;
            Some(instant_of(date.and_time(at.naive()), zone))
        })
        .min_by_key(|instant| (instant - near).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nine() -> LocalTime {
        LocalTime { hour: 9, minute: 0 }
    }

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn nine_local_is_nine_on_both_sides_of_a_daylight_saving_change() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Summer time ends in Berlin on 2026-10-25 at 03:00 local.
        let saturday = next_local_time(utc("2026-10-24T05:00:00Z"), &nine(), berlin);
        assert_eq!(saturday, utc("2026-10-24T07:00:00Z"), "09:00 CEST");
        let sunday = next_local_time(saturday, &nine(), berlin);
        assert_eq!(
            sunday,
            utc("2026-10-25T08:00:00Z"),
            "09:00 CET, 25 hours later"
        );
        let new_york: Tz = "America/New_York".parse().unwrap();
        // Daylight time begins in New York on 2026-03-08 at 02:00 local.
        let before = next_local_time(utc("2026-03-07T12:00:00Z"), &nine(), new_york);
        assert_eq!(before, utc("2026-03-07T14:00:00Z"), "09:00 EST");
        let after = next_local_time(before, &nine(), new_york);
        assert_eq!(
            after,
            utc("2026-03-08T13:00:00Z"),
            "09:00 EDT, 23 hours later"
        );
    }

    #[test]
    fn a_time_of_day_already_passed_today_comes_tomorrow() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let at = next_local_time(utc("2026-12-07T01:00:00Z"), &nine(), tokyo);
        assert_eq!(at, utc("2026-12-08T00:00:00Z"));
    }

    #[test]
    fn a_birthday_comes_at_nine_local_in_the_nearest_year() {
        let zone: Tz = "America/Los_Angeles".parse().unwrap();
        let near = utc("2026-12-07T12:00:00Z");
        let at = occurrence_near(near, "12-08", &nine(), zone).unwrap();
        assert_eq!(at, utc("2026-12-08T17:00:00Z"));
        let leap = occurrence_near(utc("2027-02-27T12:00:00Z"), "02-29", &nine(), zone).unwrap();
        assert_eq!(leap, utc("2027-02-28T17:00:00Z"));
        assert_eq!(occurrence_near(near, "13-45", &nine(), zone), None);
    }
}
