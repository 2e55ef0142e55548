use std::fmt;

use sha2::{Digest, Sha256};

/// A syntactically valid address. `key()` is the lower-cased form recipients are
/// unique by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid email address '{address}': {reason}")]
pub struct EmailError {
    pub address: String,
    pub reason: &'static str,
}

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, EmailError> {
        let address = text.trim();
        let fail = |reason| {
            Err(EmailError {
                address: address.to_string(),
                reason,
            })
        };
        if address.is_empty() {
            return fail("it is empty");
        }
        if address.len() > 254 {
            return fail("it is longer than 254 characters");
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it contains white space or a control character");
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return fail("it has no '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return fail("the part before '@' is empty or longer than 64 characters");
        }
        if local.contains(['<', '>', ',', ';', ':', '"', '(', ')', '[', ']', '\\', '@']) {
            return fail("the part before '@' contains a character that needs quoting");
        }
        if !valid_domain(domain) {
            return fail("the domain is not a valid host name");
        }
        Ok(EmailAddress(address.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// SHA-256 of the key, hex: how the suppression list remembers an address.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.key().as_bytes()))
    }
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_keys_them_lower_case() {
        let address = EmailAddress::parse(" Anna.Schmidt+news@Example.COM ").unwrap();
        assert_eq!(address.as_str(), "Anna.Schmidt+news@Example.COM");
        assert_eq!(address.key(), "anna.schmidt+news@example.com");
        assert_eq!(address.domain(), "Example.COM");
    }

    #[test]
    fn refuses_malformed_addresses_with_a_reason() {
        for (bad, reason) in [
            ("", "empty"),
            ("no-at-sign", "no '@'"),
            ("a@b", "domain"),
            ("a b@example.com", "white space"),
            ("a@exa mple.com", "white space"),
            ("<x>@example.com", "quoting"),
            ("a@-example.com", "domain"),
            ("a@example.com\r\nBcc: x@y.z", "white space"),
        ] {
            let error = EmailAddress::parse(bad).unwrap_err();
            assert!(error.to_string().contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn hash_ignores_case() {
        let a = EmailAddress::parse("A@Example.com").unwrap();
        let b = EmailAddress::parse("a@example.COM").unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
    }
}
