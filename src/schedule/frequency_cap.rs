//! At most N marketing messages per recipient in a rolling window.

use std::fmt;
use std::str::FromStr;

/// What becomes of a delivery over the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WhenCapped {
    /// Not sent: the delivery ends `suppressed`, its reason naming the cap.
    Skip,
    /// Sent later, when the window has room for it again.
    Defer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max: i64,
    pub window_seconds: i64,
    /// Counts only messages of campaigns with the same topic.
    pub per_topic: bool,
    pub when_capped: WhenCapped,
}

impl FrequencyCap {
    /// Why a capped delivery was not sent now.
    pub fn reason(&self) -> String {
        let scope = if self.per_topic { " of this topic" } else { "" };
        format!(
            "capped: {} marketing messages{scope} in {} already",
            self.max,
            window_text(self.window_seconds)
        )
    }
}

impl FromStr for FrequencyCap {
    type Err = String;

    /// `N/WINDOW`: `3/7d`, `2/24h`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("frequency cap '{text}' is not N/WINDOW (3/7d or 2/24h, say)");
        let (max, window) = text.trim().split_once('/').ok_or_else(bad)?;
        let max: i64 = max.trim().parse().map_err(|_| bad())?;
        if max < 1 {
            return Err(format!(
                "frequency cap '{text}': at most {max} messages would send nothing; remove the cap to send freely"
            ));
        }
        let window = window.trim();
        let (number, unit) = window.split_at(window.len().saturating_sub(1));
        let number: i64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "d" => 86_400,
            "h" => 3_600,
            _ => return Err(bad()),
        };
        if number < 1 {
            return Err(format!(
                "frequency cap '{text}': the window must be longer than 0"
            ));
        }
        Ok(FrequencyCap {
            max,
            window_seconds: number * seconds,
            per_topic: false,
            when_capped: WhenCapped::Skip,
        })
    }
}

impl fmt::Display for FrequencyCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max, window_text(self.window_seconds))
    }
}

fn window_text(seconds: i64) -> String {
    if seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else {
        format!("{}h", seconds / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_read_and_print_the_same() {
        let cap: FrequencyCap = "3/7d".parse().unwrap();
        assert_eq!((cap.max, cap.window_seconds), (3, 7 * 86_400));
        assert_eq!(cap.to_string(), "3/7d");
        assert_eq!("2/24h".parse::<FrequencyCap>().unwrap().to_string(), "2/1d");
        assert!(cap.reason().contains("3 marketing messages in 7d"));
    }

    #[test]
    fn bad_caps_say_what_is_wrong() {
        for (text, needle) in [
            ("0/7d", "send nothing"),
            ("3", "not N/WINDOW"),
            ("3/7w", "not N/WINDOW"),
            ("x/7d", "not N/WINDOW"),
            ("3/0d", "longer than 0"),
        ] {
            let error = text.parse::<FrequencyCap>().unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
