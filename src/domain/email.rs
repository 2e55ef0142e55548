use std::fmt;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A syntactically valid address in one spelling: the local part in Unicode NFC (its
/// case kept, for delivery), the domain as lower-case IDNA A-labels. Every spelling of
/// the same mailbox (`user@exämple.com`, `user@xn--exmple-cua.com`, NFC or NFD
/// `josé@…`, upper or lower case) parses to the same `key()` and `hash()`, which is
/// what recipients are unique by and what the suppression list remembers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid email address '{address}': {reason}")]
pub struct EmailError {
    /// The address as given, with invisible characters written as `<U+XXXX>`.
    pub address: String,
    pub reason: String,
}

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, EmailError> {
        let address = text.trim();
        let fail = |reason: &str| {
            Err(EmailError {
                address: visible(address),
                reason: reason.to_string(),
            })
        };
        if address.is_empty() {
            return fail("it is empty");
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it contains white space or a control character");
        }
        if let Some(c) = address.chars().find(|&c| is_format(c)) {
            let reason = format!(
                "it contains the invisible formatting character U+{:04X} \
                 (bidi control, zero-width or other format character)",
                c as u32
            );
            return fail(&reason);
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return fail("it has no '@'");
        };
        let local: String = local.nfc().collect();
        if local.is_empty() || local.len() > 64 {
            return fail("the part before '@' is empty or longer than 64 characters");
        }
        if local.contains(['<', '>', ',', ';', ':', '"', '(', ')', '[', ']', '\\', '@']) {
            return fail("the part before '@' contains a character that needs quoting");
        }
        let Some(domain) = ascii_domain(domain) else {
            return fail("the domain is not a valid host name");
        };
        let normal = format!("{local}@{domain}");
        if normal.len() > 254 {
            return fail("it is longer than 254 characters");
        }
        Ok(EmailAddress(normal))
    }

    /// The address to deliver to: NFC local part, A-label domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form recipients are unique by: the local part lower-cased (and NFC again,
    /// as lower-casing can leave a string unnormalised), the A-label domain.
    pub fn key(&self) -> String {
        let (local, domain) = self.parts();
        let local: String = local.to_lowercase().nfc().collect();
        format!("{local}@{domain}")
    }

    /// The domain as lower-case IDNA A-labels (`xn--…`).
    pub fn domain(&self) -> &str {
        self.parts().1
    }

    /// SHA-256 of the key, hex: how the suppression list remembers an address.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.key().as_bytes()))
    }

    fn parts(&self) -> (&str, &str) {
        self.0
            .rsplit_once('@')
            .expect("a parsed address has an '@'")
    }
}

/// Unicode general category Cf: bidi controls (U+202E), zero-width characters
/// (U+200B, U+200D, U+FEFF), soft hyphens and the like. They change how an address
/// looks, or do not show at all, so addresses differing only in them would look alike.
fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// The address for an error message: invisible and control characters spelled out.
fn visible(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_control() || is_format(c) {
                format!("<U+{:04X}>", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The domain as lower-case IDNA A-labels (UTS #46 mapping, which also folds case,
/// full-width dots and compatibility forms); None unless every label is a valid host
/// name label.
fn ascii_domain(domain: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii(domain).ok()?;
    valid_domain(&ascii).then_some(ascii)
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
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
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
        assert_eq!(address.as_str(), "Anna.Schmidt+news@example.com");
        assert_eq!(address.key(), "anna.schmidt+news@example.com");
        assert_eq!(address.domain(), "example.com");
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
            ("a\0b@example.com", "control character"),
            ("a@xn--zz.com", "domain"),
            ("a@exa_mple.com", "domain"),
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

    #[test]
    fn every_spelling_of_a_mailbox_has_one_key_and_hash() {
        let spellings = [
            [
                "user@exämple.com",
                "user@xn--exmple-cua.com",
                "USER@EXÄMPLE.COM",
            ],
            [
                "jos\u{e9}@example.com",
                "jose\u{301}@example.com",
                "JOS\u{c9}@Example.com",
            ],
            [
                "a@example.com",
                "a@example\u{3002}com",
                "a@ｅｘａｍｐｌｅ.com",
            ],
        ];
        for group in spellings {
            let first = EmailAddress::parse(group[0]).unwrap();
            for other in &group[1..] {
                let other = EmailAddress::parse(other).unwrap();
                assert_eq!(first.key(), other.key(), "{first} / {other}");
                assert_eq!(first.hash(), other.hash(), "{first} / {other}");
            }
        }
        let unicode = EmailAddress::parse("Jose\u{301}@Exämple.com").unwrap();
        assert_eq!(unicode.as_str(), "Jos\u{e9}@xn--exmple-cua.com");
        assert_eq!(unicode.domain(), "xn--exmple-cua.com");
    }

    #[test]
    fn refuses_invisible_format_characters_and_names_them() {
        for (bad, code) in [
            ("user\u{202E}moc@example.com", "U+202E"),
            ("us\u{200B}er@example.com", "U+200B"),
            ("user\u{200D}@example.com", "U+200D"),
            ("\u{FEFF}user@example.com", "U+FEFF"),
            ("user@exa\u{AD}mple.com", "U+00AD"),
        ] {
            let error = EmailAddress::parse(bad).unwrap_err().to_string();
            assert!(error.contains(code), "{bad:?}: {error}");
            assert!(error.contains("invisible"), "{bad:?}: {error}");
            assert!(
                !error.contains(bad),
                "the message shows the character: {error}"
            );
        }
    }
}
