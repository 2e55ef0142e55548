//! Times are unix seconds everywhere in the store; these helpers convert at the edges.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// What time it is for a part that takes its time from settings: the system's, or a
/// manual clock that its owner sets and moves (tests, replays).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock standing at `at` (unix seconds) until moved; clones share it.
    pub fn manual(at: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(at))),
        }
    }

    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => now(),
        }
    }

    /// Moves a manual clock on by `seconds`.
    ///
    /// # Panics
    /// On the system clock, which no one moves.
    pub fn advance(&self, seconds: i64) {
        let at = self
            .manual
            .as_ref()
            .expect("only a manual clock can be moved");
        at.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// Parses an RFC 3339 time or a plain unix-seconds integer.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| format!("'{text}' is not an RFC 3339 time or unix seconds"))
}

pub fn format_timestamp(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let clock = Clock::manual(1_000);
        let seen_by_another_part = clock.clone();
        assert_eq!(clock.now(), 1_000);
        clock.advance(90);
        assert_eq!(seen_by_another_part.now(), 1_090);
        assert!((Clock::system().now() - now()).abs() <= 1);
    }

    #[test]
    fn parses_rfc3339_and_unix_seconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:01:00Z"), Ok(60));
        assert_eq!(parse_timestamp(" 1700000000 "), Ok(1_700_000_000));
        assert!(
            parse_timestamp("yesterday")
                .unwrap_err()
                .contains("yesterday")
        );
    }
}
