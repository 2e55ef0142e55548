//! Signed tracking tokens: `/o/{token}`, `/c/{token}`, `/u/{token}`, `/v/{token}`, and
//! the delivery token of a return path (`bounces+{token}@…`).
//!
//! Wire format (then URL-safe base64 without padding; lower-case base32 for return paths):
//!
//! ```text
//! key id (1) · kind (1) · campaign (varint) · recipient (varint) · [link (varint), clicks only]
//! · HMAC-SHA256(key, "mailcast/link/v1" · everything before), first 12 bytes (96 bits)
//! ```
//!
//! A token carries ids only: the click target is looked up in the campaign's link table,
//! so a token can never redirect anywhere the campaign did not link to.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::KeyRing;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in a token.
pub const MAC_LEN: usize = 12;
const DOMAIN: &[u8] = b"mailcast/link/v1";
/// key id + kind + three 10-byte varints + MAC.
const MAX_LEN: usize = 2 + 3 * 10 + MAC_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The open pixel: `/o/{token}`.
    Open,
    /// A tracked link: `/c/{token}`; the token's `link_id` names the target.
    Click,
    /// Unsubscribe and preferences: `/u/{token}` (GET shows a page, POST unsubscribes).
    Unsubscribe,
    /// "View in browser": `/v/{token}`.
    View,
    /// The delivery a bounce is about: the local part of the envelope sender.
    Bounce,
}

impl TokenKind {
    fn code(self) -> u8 {
        match self {
            TokenKind::Open => 1,
            TokenKind::Click => 2,
            TokenKind::Unsubscribe => 3,
            TokenKind::View => 4,
            TokenKind::Bounce => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(TokenKind::Open),
            2 => Some(TokenKind::Click),
            3 => Some(TokenKind::Unsubscribe),
            4 => Some(TokenKind::View),
            5 => Some(TokenKind::Bounce),
            _ => None,
        }
    }

    /// The path segment the HTTP side serves this kind under.
    pub fn path(self) -> &'static str {
        match self {
            TokenKind::Open => "o",
            TokenKind::Click => "c",
            TokenKind::Unsubscribe => "u",
            TokenKind::View => "v",
            TokenKind::Bounce => "b",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not valid base64")]
    Encoding,
    #[error("token is malformed")]
    Malformed,
    #[error("token was signed with unknown key id {0}")]
    UnknownKey(u8),
    #[error("token signature does not match")]
    BadSignature,
}

/// What a tracking link identifies. `link_id` is 0 for every kind but [`TokenKind::Click`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    pub kind: TokenKind,
    pub campaign_id: i64,
    pub recipient_id: i64,
    pub link_id: i64,
}

impl Token {
    pub fn open(campaign_id: i64, recipient_id: i64) -> Self {
        Self::new(TokenKind::Open, campaign_id, recipient_id, 0)
    }

    pub fn click(campaign_id: i64, recipient_id: i64, link_id: i64) -> Self {
        Self::new(TokenKind::Click, campaign_id, recipient_id, link_id)
    }

    pub fn unsubscribe(campaign_id: i64, recipient_id: i64) -> Self {
        Self::new(TokenKind::Unsubscribe, campaign_id, recipient_id, 0)
    }

    pub fn view(campaign_id: i64, recipient_id: i64) -> Self {
        Self::new(TokenKind::View, campaign_id, recipient_id, 0)
    }

    pub fn bounce(campaign_id: i64, recipient_id: i64) -> Self {
        Self::new(TokenKind::Bounce, campaign_id, recipient_id, 0)
    }

    fn new(kind: TokenKind, campaign_id: i64, recipient_id: i64, link_id: i64) -> Self {
        Self {
            kind,
            campaign_id,
            recipient_id,
            link_id,
        }
    }

    /// Signs with the ring's first key.
    pub fn sign(&self, keys: &KeyRing) -> String {
        let (bytes, len) = self.signed_bytes(keys);
        URL_SAFE_NO_PAD.encode(&bytes[..len])
    }

    /// Signs with the ring's first key, as lower-case base32: letters and digits only,
    /// and unchanged when a mail system folds the case of an address.
    pub fn sign_for_mailbox(&self, keys: &KeyRing) -> String {
        let (bytes, len) = self.signed_bytes(keys);
        super::base32::encode(&bytes[..len])
    }

    fn signed_bytes(&self, keys: &KeyRing) -> ([u8; MAX_LEN], usize) {
        let mut bytes = [0u8; MAX_LEN];
        let len = self.encode_payload(keys.signing_id(), &mut bytes);
        let mut mac = keys.signing_mac().clone();
        mac.update(&bytes[..len]);
        bytes[len..len + MAC_LEN].copy_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        (bytes, len + MAC_LEN)
    }

    /// Checks the signature under whichever listed key signed the token.
    pub fn verify(keys: &KeyRing, token: &str) -> Result<Token, TokenError> {
        if token.len() > MAX_LEN * 4 / 3 + 4 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Encoding)?;
        Self::verify_bytes(keys, &bytes)
    }

    /// [`Token::verify`] for a token made by [`Token::sign_for_mailbox`], in any case.
    pub fn verify_mailbox(keys: &KeyRing, token: &str) -> Result<Token, TokenError> {
        if token.len() > MAX_LEN * 8 / 5 + 2 {
            return Err(TokenError::Malformed);
        }
        let bytes = super::base32::decode(token).ok_or(TokenError::Encoding)?;
        Self::verify_bytes(keys, &bytes)
    }

    fn verify_bytes(keys: &KeyRing, bytes: &[u8]) -> Result<Token, TokenError> {
        if bytes.len() < 2 + 2 + MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = keys
            .mac(payload[0])
            .ok_or(TokenError::UnknownKey(payload[0]))?
            .clone();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        decode_payload(payload).ok_or(TokenError::Malformed)
    }

    /// The URL path for this token under `base_url` (no trailing slash expected).
    pub fn url(&self, base_url: &str, keys: &KeyRing) -> String {
        format!("{base_url}/{}/{}", self.kind.path(), self.sign(keys))
    }

    fn encode_payload(&self, key_id: u8, out: &mut [u8; MAX_LEN]) -> usize {
        out[0] = key_id;
        out[1] = self.kind.code();
        let mut len = 2;
        len += put_varint(self.campaign_id as u64, &mut out[len..]);
        len += put_varint(self.recipient_id as u64, &mut out[len..]);
        if self.kind == TokenKind::Click {
            len += put_varint(self.link_id as u64, &mut out[len..]);
        }
        len
    }
}

/// HMAC under `secret` with the token domain absorbed, ready for a payload.
pub(crate) fn keyed_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(DOMAIN);
    mac
}

fn decode_payload(payload: &[u8]) -> Option<Token> {
    let kind = TokenKind::from_code(payload[1])?;
    let mut rest = &payload[2..];
    let campaign_id = take_varint(&mut rest)? as i64;
    let recipient_id = take_varint(&mut rest)? as i64;
    let link_id = match kind {
        TokenKind::Click => take_varint(&mut rest)? as i64,
        _ => 0,
    };
    rest.is_empty()
        .then_some(Token::new(kind, campaign_id, recipient_id, link_id))
}

fn put_varint(mut value: u64, out: &mut [u8]) -> usize {
    let mut i = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(spec).expect("valid ring")
    }

    const NEW: &str = "2:00112233445566778899aabbccddeeff";
    const OLD: &str = "1:ffeeddccbbaa99887766554433221100";

    #[test]
    fn every_kind_round_trips() {
        let keys = ring(NEW);
        for token in [
            Token::open(7, 123_456),
            Token::click(7, 123_456, 0xffff_ffff_ffff),
            Token::unsubscribe(i64::MAX, 1),
            Token::view(1, 0),
        ] {
            assert_eq!(Token::verify(&keys, &token.sign(&keys)), Ok(token));
        }
    }

    #[test]
    fn tokens_are_compact_and_url_safe() {
        let token = Token::click(12_345, 9_876_543, 0xffff_ffff_ffff).sign(&ring(NEW));
        assert!(token.len() <= 40, "{token} is {} chars", token.len());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn mailbox_tokens_are_short_lower_case_and_survive_case_folding() {
        let keys = ring(NEW);
        let token = Token::bounce(12_345, 9_876_543);
        let text = token.sign_for_mailbox(&keys);
        assert!(text.len() <= 36, "{text} is {} chars", text.len());
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(Token::verify_mailbox(&keys, &text), Ok(token));
        assert_eq!(
            Token::verify_mailbox(&keys, &text.to_ascii_uppercase()),
            Ok(token)
        );
    }

    #[test]
    fn a_tampered_mailbox_token_is_refused() {
        let keys = ring(NEW);
        let text = Token::bounce(1, 2).sign_for_mailbox(&keys);
        let mut chars: Vec<char> = text.chars().collect();
        chars[5] = if chars[5] == 'a' { 'b' } else { 'a' };
        let forged: String = chars.into_iter().collect();
        assert!(Token::verify_mailbox(&keys, &forged).is_err());
        for junk in ["", "!", "bounces", &"a".repeat(300)] {
            assert!(Token::verify_mailbox(&keys, junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let keys = ring(NEW);
        let token = Token::click(1, 2, 3).sign(&keys);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[3] ^= 1; // the recipient id
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(Token::verify(&keys, &forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_token_signed_with_a_retired_key_still_verifies() {
        let before_rotation = ring(OLD);
        let token = Token::unsubscribe(5, 6).sign(&before_rotation);
        let after_rotation = ring(&format!("{NEW},{OLD}"));
        assert_eq!(
            Token::verify(&after_rotation, &token),
            Ok(Token::unsubscribe(5, 6))
        );
    }

    #[test]
    fn a_token_from_an_unknown_key_is_refused() {
        let token = Token::open(5, 6).sign(&ring(OLD));
        assert_eq!(
            Token::verify(&ring(NEW), &token),
            Err(TokenError::UnknownKey(1))
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let keys = ring(NEW);
        for junk in [
            "",
            "a",
            "!!!!",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            &"A".repeat(500),
        ] {
            assert!(Token::verify(&keys, junk).is_err(), "{junk}");
        }
    }
}
