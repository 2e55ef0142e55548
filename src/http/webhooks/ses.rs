//! Amazon SES notifications through an SNS HTTPS subscription. SNS signs each message
//! (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) over a canonical string of its
//! type's fields, with the key of the X.509 certificate at its `SigningCertURL`, which
//! must be Amazon's (`https://sns.REGION.amazonaws.com[.cn]/…`) unless it is under a
//! prefix configured for a private endpoint or a test. A verified
//! `SubscriptionConfirmation` is confirmed by fetching its `SubscribeURL`, held to the
//! same hosts; a `Notification`'s `Message` is the SES event.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::certificates::SigningKey;
use super::{Hooks, Received, WebhookSettingError, bad_event, json_body, not_configured};
use crate::bounce::{WebhookEvent, WebhookProvider};
use crate::http::error::HttpError;

/// The SES webhook: which topics it takes messages from (any when empty), and where
/// besides Amazon's SNS hosts certificates and confirmations may be fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SesWebhook {
    topic_arns: Vec<String>,
    trusted_prefix: Option<Url>,
}

impl SesWebhook {
    /// `cert_url_prefix`: an `http(s)://host[:port]/path/` under which certificate and
    /// subscription URLs are trusted too (a private SNS endpoint, a test server).
    pub fn new(
        topic_arns: Vec<String>,
        cert_url_prefix: Option<&str>,
    ) -> Result<SesWebhook, WebhookSettingError> {
        let trusted_prefix = cert_url_prefix.map(prefix).transpose()?;
        Ok(SesWebhook {
            topic_arns,
            trusted_prefix,
        })
    }

    fn allows_topic(&self, arn: &str) -> bool {
        self.topic_arns.is_empty() || self.topic_arns.iter().any(|allowed| allowed == arn)
    }

    /// `url` (the message's `what`) when it is Amazon SNS's own or under the prefix.
    fn trusted(&self, url: &str, what: &str) -> Result<Url, HttpError> {
        let untrusted = |why: &str| HttpError::Forbidden(format!("{what} {url} {why}"));
        let parsed = Url::parse(url).map_err(|_| untrusted("is not a URL"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(untrusted("carries credentials"));
        }
        if self
            .trusted_prefix
            .as_ref()
            .is_some_and(|p| under(&parsed, p))
        {
            return Ok(parsed);
        }
        if parsed.scheme() != "https" {
            return Err(untrusted("is not https"));
        }
        let amazon = parsed.port().is_none() && parsed.host_str().is_some_and(is_sns_host);
        if !amazon {
            return Err(untrusted(
                "is not on an Amazon SNS host (sns.REGION.amazonaws.com)",
            ));
        }
        Ok(parsed)
    }
}

fn prefix(text: &str) -> Result<Url, WebhookSettingError> {
    let bad = |problem: &str| WebhookSettingError::new("SNS certificate URL prefix", problem);
    let url = Url::parse(text).map_err(|e| bad(&format!("'{text}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("must be an http(s) URL with a host"));
    }
    if !url.path().ends_with('/') || url.query().is_some() {
        return Err(bad(
            "must end with '/' (a folder, e.g. http://127.0.0.1:9000/sns/)",
        ));
    }
    Ok(url)
}

fn under(url: &Url, prefix: &Url) -> bool {
    url.scheme() == prefix.scheme()
        && url.host_str() == prefix.host_str()
        && url.port_or_known_default() == prefix.port_or_known_default()
        && url.path().starts_with(prefix.path())
}

/// `sns.REGION.amazonaws.com`, or `.amazonaws.com.cn` in China.
fn is_sns_host(host: &str) -> bool {
    let region = host
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| host.strip_suffix(".amazonaws.com"))
        .and_then(|rest| rest.strip_prefix("sns."));
    region.is_some_and(|region| {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum SnsType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// An SNS message as posted to an HTTP(S) subscription.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: SnsType,
    message_id: String,
    message: String,
    timestamp: String,
    topic_arn: String,
    subject: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
}

impl SnsMessage {
    /// The message in `body`: 401 when it carries no signature, 400 naming what else
    /// it lacks.
    fn parse(body: &[u8]) -> Result<SnsMessage, HttpError> {
        let value = json_body(body)?;
        if !value.is_object() {
            return Err(HttpError::BadRequest(
                "the body is not an SNS message (a JSON object)".into(),
            ));
        }
        if value
            .get("Signature")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(HttpError::Unauthorized("no Signature: not signed".into()));
        }
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            match path.as_str() {
                "." => HttpError::BadRequest(format!("SNS message: {}", error.into_inner())),
                _ => HttpError::BadRequest(format!("{path}: {}", error.into_inner())),
            }
        })
    }

    /// What SNS signs: `name\nvalue\n` for each of the type's fields in byte order of
    /// their names; Subject only when present, SubscribeURL and Token only in
    /// confirmations.
    fn string_to_sign(&self) -> Result<String, HttpError> {
        let required = |value: &Option<String>, name: &str| {
            value
                .clone()
                .ok_or_else(|| HttpError::BadRequest(format!("{name}: is missing")))
        };
        let mut fields = vec![
            ("Message", self.message.clone()),
            ("MessageId", self.message_id.clone()),
        ];
        if self.kind == SnsType::Notification {
            fields.extend(self.subject.clone().map(|subject| ("Subject", subject)));
            fields.push(("Timestamp", self.timestamp.clone()));
        } else {
            fields.push((
                "SubscribeURL",
                required(&self.subscribe_url, "SubscribeURL")?,
            ));
            fields.push(("Timestamp", self.timestamp.clone()));
            fields.push(("Token", required(&self.token, "Token")?));
        }
        fields.push(("TopicArn", self.topic_arn.clone()));
        let kind = match self.kind {
            SnsType::Notification => "Notification",
            SnsType::SubscriptionConfirmation => "SubscriptionConfirmation",
            SnsType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        };
        fields.push(("Type", kind.to_string()));
        Ok(fields
            .into_iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect())
    }

    fn algorithm(&self) -> Result<&'static dyn VerificationAlgorithm, HttpError> {
        match self.signature_version.as_str() {
            "1" => Ok(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
            "2" => Ok(&RSA_PKCS1_2048_8192_SHA256),
            other => Err(HttpError::Forbidden(format!(
                "SignatureVersion {other} is neither 1 nor 2"
            ))),
        }
    }

    /// Checks the signature of `signed` (its string to sign) with `key`, whose
    /// certificate must be valid `now`.
    fn verify(&self, signed: &str, key: &SigningKey, now: i64) -> Result<(), HttpError> {
        let algorithm = self.algorithm()?;
        if now < key.not_before || now > key.not_after {
            return Err(HttpError::Forbidden(
                "the signing certificate is not valid now".into(),
            ));
        }
        let signature = BASE64
            .decode(self.signature.trim())
            .map_err(|_| HttpError::Forbidden("Signature is not base64".into()))?;
        UnparsedPublicKey::new(algorithm, &key.rsa)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| {
                HttpError::Forbidden(
                    "the signature does not match: not from SNS, or changed on the way".into(),
                )
            })
    }
}

pub(super) async fn receive(
    State(hooks): State<Arc<Hooks>>,
    body: Bytes,
) -> Result<Json<Received>, HttpError> {
    let ses = hooks
        .settings
        .ses
        .as_ref()
        .ok_or_else(|| not_configured("Amazon SES"))?;
    let message = SnsMessage::parse(&body)?;
    if !ses.allows_topic(&message.topic_arn) {
        return Err(HttpError::Forbidden(format!(
            "topic {} is not one this server takes messages from",
            message.topic_arn
        )));
    }
    let signed = message.string_to_sign()?;
    message.algorithm()?;
    let certificate = ses.trusted(&message.signing_cert_url, "SigningCertURL")?;
    let key = hooks.certificates.key(&certificate).await?;
    message.verify(&signed, &key, hooks.clock.now())?;
    match message.kind {
        SnsType::Notification => notification(&hooks, &message.message).await,
        SnsType::SubscriptionConfirmation => confirm(&hooks, ses, &message).await,
        SnsType::UnsubscribeConfirmation => {
            tracing::warn!(topic = %message.topic_arn, "SNS unsubscribed this endpoint");
            Ok(Json(Received::default()))
        }
    }
}

/// The SES event a notification carries.
async fn notification(hooks: &Hooks, message: &str) -> Result<Json<Received>, HttpError> {
    let event: Value = serde_json::from_str(message)
        .map_err(|e| HttpError::BadRequest(format!("Message: not an SES event (JSON): {e}")))?;
    let event =
        WebhookEvent::new(WebhookProvider::Ses, event).map_err(|e| bad_event(e.at("Message")))?;
    hooks.apply_one(event).await
}

/// Confirms the subscription by fetching its SubscribeURL.
async fn confirm(
    hooks: &Hooks,
    ses: &SesWebhook,
    message: &SnsMessage,
) -> Result<Json<Received>, HttpError> {
    let url = message.subscribe_url.as_deref().unwrap_or_default();
    let url = ses.trusted(url, "SubscribeURL")?;
    hooks.certificates.visit(&url).await.map_err(|e| {
        HttpError::Unavailable(format!(
            "confirming the subscription to {} failed: {e}",
            message.topic_arn
        ))
    })?;
    tracing::info!(topic = %message.topic_arn, "SNS subscription confirmed");
    Ok(Json(Received::default()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(value: Value) -> SnsMessage {
        SnsMessage::parse(value.to_string().as_bytes()).unwrap()
    }

    fn notification(subject: Option<&str>) -> Value {
        let mut value = json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "{\"notificationType\":\"Bounce\"}\nline two",
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
        });
        if let Some(subject) = subject {
            value["Subject"] = json!(subject);
        }
        value
    }

    #[test]
    fn a_notification_signs_its_fields_with_subject_only_when_present() {
        let with = message(notification(Some("Bounce")));
        assert_eq!(
            with.string_to_sign().unwrap(),
            "Message\n{\"notificationType\":\"Bounce\"}\nline two\n\
             MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nBounce\n\
             Timestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
        let without = message(notification(None));
        assert!(!without.string_to_sign().unwrap().contains("Subject"));
        let mut null_subject = notification(None);
        null_subject["Subject"] = Value::Null;
        assert_eq!(
            message(null_subject).string_to_sign().unwrap(),
            without.string_to_sign().unwrap()
        );
    }

    #[test]
    fn a_confirmation_signs_its_subscribe_url_and_token() {
        let value = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SignatureVersion": "2",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/cert.pem"
        });
        assert_eq!(
            message(value.clone()).string_to_sign().unwrap(),
            "Message\nYou have chosen to subscribe to the topic.\n\
             MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37\n\
             Timestamp\n2012-04-26T20:45:04.751Z\n\
             Token\n2336412f37\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nSubscriptionConfirmation\n"
        );
        let mut tokenless = value;
        tokenless.as_object_mut().unwrap().remove("Token");
        let error = message(tokenless).string_to_sign().unwrap_err().to_string();
        assert_eq!(error, "Token: is missing");
    }

    #[test]
    fn an_unsigned_or_incomplete_message_is_refused_with_its_reason() {
        let mut unsigned = notification(None);
        unsigned.as_object_mut().unwrap().remove("Signature");
        let parsed = SnsMessage::parse(unsigned.to_string().as_bytes());
        assert!(matches!(parsed, Err(HttpError::Unauthorized(_))));
        let mut incomplete = notification(None);
        incomplete.as_object_mut().unwrap().remove("MessageId");
        let error = SnsMessage::parse(incomplete.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("MessageId"), "{error}");
        let mut strange = notification(None);
        strange["Type"] = json!("Gossip");
        let error = SnsMessage::parse(strange.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("Type: "), "{error}");
    }

    #[test]
    fn only_amazon_sns_hosts_or_the_configured_prefix_are_trusted() {
        let ses = SesWebhook::new(vec![], None).unwrap();
        let trusted = |url: &str| ses.trusted(url, "SigningCertURL").is_ok();
        assert!(trusted(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
        ));
        assert!(trusted("https://sns.cn-north-1.amazonaws.com.cn/cert.pem"));
        for url in [
            "http://sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
            "https://s3.us-east-1.amazonaws.com/cert.pem",
            "https://sns..amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
            "https://user@sns.us-east-1.amazonaws.com/cert.pem",
            "not a url",
        ] {
            assert!(!trusted(url), "{url}");
        }
        let local = SesWebhook::new(vec![], Some("http://127.0.0.1:9000/sns/")).unwrap();
        let trusted = |url: &str| local.trusted(url, "SubscribeURL").is_ok();
        assert!(trusted("http://127.0.0.1:9000/sns/cert.pem"));
        assert!(trusted("https://sns.eu-west-1.amazonaws.com/cert.pem"));
        assert!(!trusted("http://127.0.0.1:9001/sns/cert.pem"));
        assert!(!trusted("http://127.0.0.1:9000/other/cert.pem"));
        assert!(
            SesWebhook::new(vec![], Some("http://127.0.0.1:9000")).is_ok(),
            "path /"
        );
        assert!(SesWebhook::new(vec![], Some("http://127.0.0.1:9000/sns")).is_err());
        assert!(SesWebhook::new(vec![], Some("ftp://127.0.0.1/")).is_err());
    }

    #[test]
    fn a_topic_list_admits_only_its_topics() {
        let any = SesWebhook::new(vec![], None).unwrap();
        assert!(any.allows_topic("arn:aws:sns:us-east-1:1:a"));
        let listed = SesWebhook::new(vec!["arn:aws:sns:us-east-1:1:a".into()], None).unwrap();
        assert!(listed.allows_topic("arn:aws:sns:us-east-1:1:a"));
        assert!(!listed.allows_topic("arn:aws:sns:us-east-1:1:b"));
    }
}
