//! Mailgun's webhooks: one event per request, `{"signature": {"timestamp", "token",
//! "signature"}, "event-data": {…}}`, the signature being hex HMAC-SHA256 of timestamp
//! and token under the account's webhook signing key. The signature does not cover the
//! event, so a token is good for one event: the same token again must bring the same
//! event (a retry of the request), or it is refused as a replay.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    Hooks, MAX_SKEW, Received, WebhookSettingError, bad_event, fresh, json_body, not_configured,
};
use crate::bounce::{WebhookEvent, WebhookProvider};
use crate::http::error::HttpError;

/// Mailgun's HTTP webhook signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct MailgunKey(Vec<u8>);

impl MailgunKey {
    pub fn new(key: &str) -> Result<MailgunKey, WebhookSettingError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(WebhookSettingError::new("Mailgun signing key", "is empty"));
        }
        Ok(MailgunKey(key.as_bytes().to_vec()))
    }

    fn signed(&self, signature: &Signature) -> bool {
        let Ok(presented) = hex::decode(signature.signature.trim()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return false;
        };
        mac.update(signature.timestamp.as_bytes());
        mac.update(signature.token.as_bytes());
        mac.verify_slice(&presented).is_ok()
    }
}

impl fmt::Debug for MailgunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailgunKey(…)")
    }
}

/// The `signature` object, its timestamp as Mailgun wrote it (a string or a number).
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

impl Signature {
    fn of(body: &Value) -> Result<Signature, HttpError> {
        let unsigned = |what: &str| HttpError::Unauthorized(format!("no {what}: not signed"));
        let signed = body
            .get("signature")
            .filter(|s| s.is_object())
            .ok_or_else(|| unsigned("signature"))?;
        let field = |name: &str| match signed.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(unsigned(&format!("signature.{name}"))),
        };
        Ok(Signature {
            timestamp: field("timestamp")?,
            token: field("token")?,
            signature: field("signature")?,
        })
    }
}

pub(super) async fn receive(
    State(hooks): State<Arc<Hooks>>,
    body: Bytes,
) -> Result<Json<Received>, HttpError> {
    let key = hooks
        .settings
        .mailgun
        .as_ref()
        .ok_or_else(|| not_configured("Mailgun"))?;
    let body = json_body(&body)?;
    let signature = Signature::of(&body)?;
    let now = hooks.clock.now();
    let at = fresh(&signature.timestamp, now)?;
    if !key.signed(&signature) {
        return Err(HttpError::Forbidden(
            "the signature does not match: not from Mailgun, or changed on the way".into(),
        ));
    }
    let data = body
        .get("event-data")
        .ok_or_else(|| HttpError::BadRequest("event-data: is missing".into()))?;
    let event = WebhookEvent::new(WebhookProvider::Mailgun, data.clone())
        .map_err(|e| bad_event(e.at("event-data")))?;
    hooks.tokens.take(&signature.token, at, now, data)?;
    hooks.apply_one(event).await
}

/// Tokens seen within [`MAX_SKEW`], each with the digest of the event it came with.
#[derive(Default)]
pub(super) struct Tokens {
    seen: Mutex<HashMap<String, (i64, [u8; 32])>>,
}

/// Tokens remembered at most; older ones are forgotten first, and they are refused by
/// their timestamp anyway.
const TOKENS_KEPT: usize = 100_000;

impl Tokens {
    /// Takes `token` (timestamped `at`) for `event`: a token not seen before, or seen
    /// with the same event, is taken; one seen with another event is a replay.
    fn take(&self, token: &str, at: i64, now: i64, event: &Value) -> Result<(), HttpError> {
        let digest: [u8; 32] = Sha256::digest(event.to_string().as_bytes()).into();
        let mut seen = self.seen.lock().expect("token lock");
        if seen.len() >= TOKENS_KEPT {
            seen.retain(|_, (at, _)| now.abs_diff(*at) <= MAX_SKEW);
        }
        if seen.len() >= TOKENS_KEPT {
            return Err(HttpError::Unavailable(format!(
                "more than {TOKENS_KEPT} Mailgun events within {} minutes; try again later",
                MAX_SKEW / 60
            )));
        }
        match seen.entry(token.to_string()) {
            Entry::Occupied(taken) if taken.get().1 != digest => Err(HttpError::Forbidden(
                "this signature's token came before with another event: a replay".into(),
            )),
            Entry::Occupied(_) => Ok(()),
            Entry::Vacant(free) => {
                free.insert((at, digest));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn signature(key: &[u8], timestamp: &str, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn the_hmac_of_timestamp_and_token_verifies() {
        let key = MailgunKey::new(" key-secret ").unwrap();
        let body = json!({"signature": {
            "timestamp": "1700000000",
            "token": "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
            "signature": signature(b"key-secret", "1700000000", "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"),
        }});
        let signed = Signature::of(&body).unwrap();
        assert!(key.signed(&signed));
        let other_key = MailgunKey::new("key-other").unwrap();
        assert!(!other_key.signed(&signed));
        let mut moved = signed;
        moved.timestamp = "1700000001".into();
        assert!(!key.signed(&moved));
        assert!(MailgunKey::new("  ").is_err());
    }

    #[test]
    fn a_number_timestamp_is_read_as_written_and_a_missing_part_is_unsigned() {
        let body = json!({"signature": {"timestamp": 1700000000, "token": "t", "signature": "00"}});
        assert_eq!(Signature::of(&body).unwrap().timestamp, "1700000000");
        let missing = json!({"signature": {"timestamp": "1", "signature": "00"}});
        assert!(matches!(
            Signature::of(&missing),
            Err(HttpError::Unauthorized(m)) if m.contains("signature.token")
        ));
        assert!(matches!(
            Signature::of(&json!({"event-data": {}})),
            Err(HttpError::Unauthorized(_))
        ));
    }

    #[test]
    fn a_token_brings_one_event_however_often() {
        let tokens = Tokens::default();
        let event = json!({"event": "failed", "id": "a"});
        tokens.take("t1", 100, 100, &event).unwrap();
        tokens.take("t1", 100, 100, &event).unwrap();
        let other = json!({"event": "failed", "id": "b"});
        assert!(matches!(
            tokens.take("t1", 100, 100, &other),
            Err(HttpError::Forbidden(_))
        ));
        tokens.take("t2", 100, 100, &other).unwrap();
    }
}
