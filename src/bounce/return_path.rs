//! Per-delivery return paths (VERP): every message's envelope sender is
//! `PREFIX+TOKEN@BOUNCE-DOMAIN`, where TOKEN is a signed [`Token::bounce`] naming the
//! campaign and recipient. A bounce sent there names its delivery whatever the DSN
//! quotes; a token not signed by the ring names nothing.

use crate::links::{KeyRing, Token, TokenKind};

/// The longest prefix accepted: with it and the token of any realistic delivery the
/// local part stays within RFC 5321's 64 octets.
pub const MAX_PREFIX_LEN: usize = 16;

pub const DEFAULT_PREFIX: &str = "bounces";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReturnPathError {
    #[error("bounce domain {0:?} is not a domain name")]
    Domain(String),
    #[error("bounce prefix {0:?} must be 1 to {MAX_PREFIX_LEN} letters, digits, '-', '_' or '.'")]
    Prefix(String),
}

/// Where bounces go: `PREFIX+TOKEN@DOMAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath {
    prefix: String,
    domain: String,
}

/// The (campaign, recipient) a bounce is about, as its return path or quoted
/// Message-ID names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryKey {
    pub campaign_id: i64,
    pub recipient_id: i64,
}

impl ReturnPath {
    pub fn new(prefix: &str, domain: &str) -> Result<ReturnPath, ReturnPathError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !labels_ok || !domain.contains('.') || domain.len() > 253 {
            return Err(ReturnPathError::Domain(domain));
        }
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && !prefix.starts_with('.')
            && !prefix.ends_with('.')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !prefix_ok {
            return Err(ReturnPathError::Prefix(prefix.to_string()));
        }
        Ok(ReturnPath {
            prefix: prefix.to_ascii_lowercase(),
            domain,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The envelope sender of the message to `recipient_id` in `campaign_id`.
    pub fn address(&self, keys: &KeyRing, campaign_id: i64, recipient_id: i64) -> String {
        let token = Token::bounce(campaign_id, recipient_id).sign_for_mailbox(keys);
        format!("{}+{token}@{}", self.prefix, self.domain)
    }

    /// True when `address` is at the bounce domain (any local part, any case).
    pub fn is_bounce_domain(&self, address: &str) -> bool {
        address.rsplit_once('@').is_some_and(|(_, domain)| {
            domain
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&self.domain)
        })
    }

    /// The delivery a return path names; None unless it is `PREFIX+TOKEN@DOMAIN` with a
    /// bounce token the ring signed.
    pub fn delivery(&self, keys: &KeyRing, address: &str) -> Option<DeliveryKey> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        if !self.is_bounce_domain(address) {
            return None;
        }
        let (local, _) = address.rsplit_once('@')?;
        let (prefix, token) = local.split_once('+')?;
        if !prefix.eq_ignore_ascii_case(&self.prefix) {
            return None;
        }
        let token = Token::verify_mailbox(keys, token).ok()?;
        (token.kind == TokenKind::Bounce).then_some(DeliveryKey {
            campaign_id: token.campaign_id,
            recipient_id: token.recipient_id,
        })
    }
}

/// The delivery a mailcast Message-ID (`<CAMPAIGN.RECIPIENT.mailcast@domain>`, angles
/// optional) names. Unsigned: whoever quotes it could have made it up, so a match by
/// Message-ID must be confirmed by the address the bounce reports.
pub fn delivery_of_message_id(message_id: &str) -> Option<DeliveryKey> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, _) = id.split_once('@')?;
    let mut parts = local.split('.');
    let campaign_id = parts.next()?.parse().ok()?;
    let recipient_id = parts.next()?.parse().ok()?;
    (parts.next()? == "mailcast" && parts.next().is_none()).then_some(DeliveryKey {
        campaign_id,
        recipient_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyRing {
        KeyRing::parse("3:00112233445566778899aabbccddeeff").unwrap()
    }

    #[test]
    fn an_address_names_its_delivery_back() {
        let path = ReturnPath::new("bounces", "Bounce.Shop.example.com").unwrap();
        let address = path.address(&keys(), 7, 123_456);
        assert!(address.starts_with("bounces+"), "{address}");
        assert!(address.ends_with("@bounce.shop.example.com"), "{address}");
        assert!(address.split('@').next().unwrap().len() <= 64);
        let expected = DeliveryKey {
            campaign_id: 7,
            recipient_id: 123_456,
        };
        assert_eq!(path.delivery(&keys(), &address), Some(expected));
        assert_eq!(
            path.delivery(&keys(), &format!("<{}>", address.to_uppercase())),
            Some(expected)
        );
    }

    #[test]
    fn forged_foreign_and_other_kinds_of_token_name_nothing() {
        let path = ReturnPath::new("bounces", "bounce.example.com").unwrap();
        let other_ring = KeyRing::parse("3:ffeeddccbbaa99887766554433221100").unwrap();
        let foreign = path.address(&other_ring, 7, 1);
        assert_eq!(path.delivery(&keys(), &foreign), None);
        let unsubscribe = Token::unsubscribe(7, 1).sign_for_mailbox(&keys());
        let wrong_kind = format!("bounces+{unsubscribe}@bounce.example.com");
        assert_eq!(path.delivery(&keys(), &wrong_kind), None);
        let good = path.address(&keys(), 7, 1);
        let other_domain = good.replace("bounce.example.com", "example.org");
        assert_eq!(path.delivery(&keys(), &other_domain), None);
        let other_prefix = good.replace("bounces+", "returns+");
        assert_eq!(path.delivery(&keys(), &other_prefix), None);
        for junk in [
            "",
            "@",
            "bounces+@bounce.example.com",
            "postmaster@bounce.example.com",
        ] {
            assert_eq!(path.delivery(&keys(), junk), None, "{junk}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            ReturnPath::new("bounces", "localhost"),
            Err(ReturnPathError::Domain("localhost".into()))
        );
        assert!(matches!(
            ReturnPath::new("has space", "b.example.com"),
            Err(ReturnPathError::Prefix(_))
        ));
        assert!(ReturnPath::new(&"x".repeat(17), "b.example.com").is_err());
        assert!(ReturnPath::new("", "b.example.com").is_err());
    }

    #[test]
    fn mailcast_message_ids_name_their_delivery() {
        assert_eq!(
            delivery_of_message_id("<7.42.mailcast@shop.example.com>"),
            Some(DeliveryKey {
                campaign_id: 7,
                recipient_id: 42
            })
        );
        for other in [
            "<7.42@x>",
            "<a.b.mailcast@x>",
            "<7.42.mailcast.x@y>",
            "",
            "7.42.mailcast",
        ] {
            assert_eq!(delivery_of_message_id(other), None, "{other}");
        }
    }
}
