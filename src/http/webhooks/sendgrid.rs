//! SendGrid's signed event webhook: a JSON array of events, signed with ECDSA P-256
//! (SHA-256, ASN.1 DER signature, base64) over the timestamp header followed by the raw
//! body, with the key pair SendGrid made for the account.

use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::{Hooks, Received, WebhookSettingError, bad_event, fresh, json_body, not_configured};
use crate::bounce::{WebhookEvent, WebhookProvider};
use crate::http::error::HttpError;

const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The verification key SendGrid shows for its signed event webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct SendGridKey {
    /// The uncompressed P-256 point.
    point: Vec<u8>,
}

impl SendGridKey {
    /// From base64 DER SubjectPublicKeyInfo, as SendGrid shows it (PEM armour allowed).
    pub fn parse(text: &str) -> Result<SendGridKey, WebhookSettingError> {
        let bad = |problem: String| WebhookSettingError::new("SendGrid verification key", problem);
        let base64: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .flat_map(|line| line.trim().chars())
            .collect();
        let der = BASE64
            .decode(base64)
            .map_err(|e| bad(format!("not base64: {e}")))?;
        let key = SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| bad(format!("not a DER public key: {e}")))?;
        if key.algorithm.oid != EC_PUBLIC_KEY || key.algorithm.parameters_oid().ok() != Some(P256) {
            return Err(bad("not a P-256 (prime256v1) elliptic curve key".into()));
        }
        let point = key.subject_public_key.as_bytes().unwrap_or_default();
        if point.len() != 65 || point[0] != 4 {
            return Err(bad("not an uncompressed P-256 point".into()));
        }
        Ok(SendGridKey {
            point: point.to_vec(),
        })
    }

    fn verifies(&self, timestamp: &str, body: &[u8], signature: &[u8]) -> bool {
        let signed = [timestamp.as_bytes(), body].concat();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(&signed, signature)
            .is_ok()
    }
}

impl fmt::Debug for SendGridKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendGridKey(P-256)")
    }
}

pub(super) async fn receive(
    State(hooks): State<Arc<Hooks>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, HttpError> {
    let key = hooks
        .settings
        .sendgrid
        .as_ref()
        .ok_or_else(|| not_configured("SendGrid"))?;
    let signature = header(&headers, SIGNATURE)?;
    let timestamp = header(&headers, TIMESTAMP)?;
    fresh(timestamp, hooks.clock.now())?;
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|_| HttpError::Forbidden(format!("{SIGNATURE} is not base64")))?;
    if !key.verifies(timestamp, &body, &signature) {
        return Err(HttpError::Forbidden(
            "the signature does not match: not from SendGrid, or changed on the way".into(),
        ));
    }
    let (events, ignored) = events(json_body(&body)?)?;
    hooks.apply(&events, ignored).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, HttpError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| HttpError::Unauthorized(format!("no {name} header: not signed")))
}

/// The events about delivery outcomes, and how many others the batch held.
fn events(body: Value) -> Result<(Vec<WebhookEvent>, usize), HttpError> {
    let Value::Array(items) = body else {
        return Err(HttpError::BadRequest(
            "the body is not a JSON array of events".into(),
        ));
    };
    let mut events = Vec::with_capacity(items.len());
    let mut ignored = 0;
    for (i, item) in items.into_iter().enumerate() {
        let event = WebhookEvent::new(WebhookProvider::SendGrid, item)
            .map_err(|e| bad_event(e.at(&format!("[{i}]"))))?;
        match event {
            Some(event) => events.push(event),
            None => ignored += 1,
        }
    }
    Ok((events, ignored))
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    /// A SubjectPublicKeyInfo for a P-256 point: the fixed DER prefix, then the point.
    fn spki(point: &[u8]) -> String {
        let prefix = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        BASE64.encode([prefix.as_slice(), point].concat())
    }

    #[test]
    fn a_signature_over_timestamp_and_body_verifies_and_nothing_else_does() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let key = SendGridKey::parse(&spki(pair.public_key().as_ref())).unwrap();
        let body = br#"[{"event":"spamreport"}]"#;
        let signature = pair
            .sign(&rng, &[b"1700000000".as_slice(), body].concat())
            .unwrap();
        assert!(key.verifies("1700000000", body, signature.as_ref()));
        assert!(!key.verifies("1700000001", body, signature.as_ref()));
        assert!(!key.verifies(
            "1700000000",
            br#"[{"event":"spamreporT"}]"#,
            signature.as_ref()
        ));
        let armoured = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            spki(pair.public_key().as_ref())
        );
        assert_eq!(SendGridKey::parse(&armoured).unwrap(), key);
    }

    #[test]
    fn a_key_that_is_not_p256_is_refused_with_a_reason() {
        let error = |text: &str| SendGridKey::parse(text).unwrap_err().to_string();
        assert!(
            error("not base64!").contains("not base64"),
            "{}",
            error("not base64!")
        );
        assert!(error("AAAA").contains("not a DER public key"));
        // An Ed25519 SubjectPublicKeyInfo.
        let ed25519 = BASE64.encode(
            hex::decode("302a300506032b6570032100")
                .unwrap()
                .into_iter()
                .chain([7; 32])
                .collect::<Vec<u8>>(),
        );
        assert!(
            error(&ed25519).contains("not a P-256"),
            "{}",
            error(&ed25519)
        );
    }

    #[test]
    fn events_other_than_outcomes_are_counted_and_bad_ones_named_by_index() {
        let body = serde_json::json!([
            {"event": "open", "email": "a@example.com"},
            {"event": "bounce", "type": "bounce", "email": "a@example.com", "reason": "550 5.1.1 unknown"}
        ]);
        let (events, ignored) = events(body).unwrap();
        assert_eq!((events.len(), ignored), (1, 1));
        let error = events_error(serde_json::json!([{"event": "open"}, {"event": "bounce"}]));
        assert_eq!(error, "[1].email: is missing");
        assert_eq!(
            events_error(serde_json::json!({"event": "bounce"})),
            "the body is not a JSON array of events"
        );
    }

    fn events_error(body: Value) -> String {
        events(body).unwrap_err().to_string()
    }
}
