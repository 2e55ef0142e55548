//! Signed tracking links, shared by rendering (which signs) and the HTTP side (which
//! verifies). See DESIGN.md, "Signed links".

mod base32;
mod keyring;
mod token;

pub use keyring::{
    DEVELOPMENT_KEY_ID, GENERATED_KEY_ID, INSECURE_DEVELOPMENT_KEY, KEYS_ENV, KeyRing,
    KeyRingError, LoadKeysError, MIN_SECRET_LEN,
};
pub use token::{MAC_LEN, Token, TokenError, TokenKind};

use sha2::{Digest, Sha256};

/// Appends the UTM parameters (key, value) that `url` does not set already, in the
/// parsed URL's normal form; without parameters, or when `url` does not parse, it is
/// left as it is.
pub fn with_utm<'a>(url: &str, utm: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let utm: Vec<_> = utm.into_iter().collect();
    if utm.is_empty() {
        return url.to_string();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let missing: Vec<_> = utm
        .into_iter()
        .filter(|(k, _)| !present.contains(k))
        .collect();
    if !missing.is_empty() {
        let mut query = parsed.query_pairs_mut();
        for (key, value) in missing {
            query.append_pair(key, value);
        }
    }
    parsed.into()
}

/// The link id of the hidden honeypot link. Real link ids are 48-bit hashes of their
/// URL ([`link_id`]), so this one never names a real target.
pub const HONEYPOT_LINK_ID: i64 = 1 << 48;

/// The click token of a message's honeypot link. The renderer places it in every HTML
/// part as `<a href="{base_url}/c/{token}" style="display:none" aria-hidden="true"
/// tabindex="-1"></a>`: invisible and skipped by screen readers, so only machines that
/// follow every link in a message ever request it.
pub fn honeypot_token(campaign_id: i64, recipient_id: i64) -> Token {
    Token::click(campaign_id, recipient_id, HONEYPOT_LINK_ID)
}

/// The id of a tracked target URL within a campaign: the first 6 bytes of its SHA-256,
/// big-endian, so always non-negative. Derived rather than allocated, so that workers on
/// many machines agree on it without a database round trip (`links(campaign_id,
/// link_id, url)`). 48 bits make a collision within one campaign's few links negligible.
pub fn link_id(url: &str) -> i64 {
    let digest = Sha256::digest(url.as_bytes());
    digest[..6]
        .iter()
        .fold(0i64, |id, &byte| (id << 8) | i64::from(byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_id_is_stable_non_negative_and_48_bits() {
        let id = link_id("https://shop.example/sale?utm_source=mailcast");
        assert_eq!(id, link_id("https://shop.example/sale?utm_source=mailcast"));
        assert!((0..1 << 48).contains(&id));
        assert_ne!(id, link_id("https://shop.example/sale"));
    }

    #[test]
    fn link_id_matches_the_documented_derivation() {
        // SHA-256("") = e3b0c44298fc1c14…
        assert_eq!(link_id(""), 0xe3b0_c442_98fc);
    }
}
