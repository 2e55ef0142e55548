//! The small texts of the format: durations, local times, entry rules, names.

use super::types::{EntryRule, LocalTime};
use crate::segment::ast::MAX_DURATION_SECONDS;

const UNITS: [(&str, i64); 4] = [("min", 60), ("h", 3_600), ("d", 86_400), ("w", 604_800)];

/// `30min`, `4h`, `1d`, `2w`: seconds, more than zero and at most 200 years.
pub fn duration(text: &str) -> Result<i64, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (amount, unit) = text.split_at(digits);
    let unit_seconds = UNITS.iter().find(|(name, _)| *name == unit).map(|u| u.1);
    let (Ok(amount), Some(unit_seconds)) = (amount.parse::<i64>(), unit_seconds) else {
        return Err(format!(
            "`{text}` is not a duration: write digits and a unit, min, h, d or w (30min, 4h, 1d, 2w)"
        ));
    };
    match amount.checked_mul(unit_seconds) {
        Some(0) => Err(format!("`{text}` is not longer than zero")),
        Some(seconds) if seconds <= MAX_DURATION_SECONDS => Ok(seconds),
        _ => Err(format!("`{text}` is longer than 200 years")),
    }
}

/// `HH:MM`, 24-hour.
pub fn local_time(text: &str) -> Result<LocalTime, String> {
    let fail = || {
        Err(format!(
            "`{text}` is not a time of day: write HH:MM, 24-hour (09:00, 17:30)"
        ))
    };
    let Some((hour, minute)) = text.split_once(':') else {
        return fail();
    };
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hour) || !two_digits(minute) {
        return fail();
    }
    let (hour, minute) = (hour.parse().unwrap_or(99), minute.parse().unwrap_or(99));
    if hour > 23 || minute > 59 {
        return fail();
    }
    Ok(LocalTime { hour, minute })
}

/// `once`, `every time` or `once per <duration>`.
pub fn entry_rule(text: &str) -> Result<EntryRule, String> {
    match text {
        "once" => Ok(EntryRule::Once),
        "every time" => Ok(EntryRule::EveryTime),
        _ => match text.strip_prefix("once per ") {
            Some(period) => duration(period.trim()).map(|seconds| EntryRule::OncePer { seconds }),
            None => Err(format!(
                "`{text}` is not an entry rule: write \"once\", \"every time\" or \"once per 7d\""
            )),
        },
    }
}

/// Automation names: lower-case letters, digits, `-`, `_` and `.`.
pub fn name(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if text.is_empty() {
        return Err("the name is empty".into());
    }
    match text.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!(
            "`{text}` has the character `{c}`; a name is made of a-z, 0-9, `-`, `_` and `.`"
        )),
        None => Ok(text.to_string()),
    }
}

/// `welcomed`, `profile.welcomed`: identifiers (letters, digits, `_`, not starting
/// with a digit) joined by dots, as in the segment language's `attr.` paths.
pub fn attribute_path(text: &str) -> Result<String, String> {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if text.split('.').all(identifier) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not an attribute name: letters, digits and `_`, parts joined by `.`"
        ))
    }
}
