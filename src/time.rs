//! Times are unix seconds everywhere in the store; these helpers convert at the edges.

use chrono::{DateTime, Utc};

pub fn now() -> i64 {
    Utc::now().timestamp()
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
