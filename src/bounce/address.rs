//! Finding email addresses in free text and DSN fields.

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-=!#$&'*/?^`{|}~".contains(&b)
}

fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

/// Every address in `text`, in order, as written (without angle brackets or quotes).
pub(crate) fn all(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'@', &bytes[from..]).map(|i| i + from) {
        from = at + 1;
        let mut start = at;
        while start > 0 && is_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        while start < at && matches!(bytes[start], b'.' | b'\'' | b'`' | b'=') {
            start += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-' | b'_') {
            end -= 1;
        }
        if start == at || end == at + 1 || !text[at + 1..end].contains('.') {
            continue;
        }
        found.push(&text[start..end]);
        from = end.max(from);
    }
    found
}

/// The first address in `text`.
pub(crate) fn first(text: &str) -> Option<&str> {
    all(text).into_iter().next()
}

/// Addresses a mail system writes from or to, which are never the failed recipient.
pub(crate) fn is_system(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon"
            | "postmaster"
            | "post_master"
            | "mail-daemon"
            | "maildaemon"
            | "mdaemon"
            | "root"
            | "nobody"
    ) || local.starts_with("bounce")
        || local.starts_with("mailer-daemon")
        || local.starts_with("postmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_in_text() {
        assert_eq!(
            all("<a.b@example.com>: user unknown; see x@y.org."),
            vec!["a.b@example.com", "x@y.org"]
        );
        assert!(all("@ foo@ @bar.com a@b").is_empty());
    }
}
