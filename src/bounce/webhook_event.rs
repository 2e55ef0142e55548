//! Bounces, complaints and deliveries that a sending provider reports through its
//! webhook (Amazon SES through SNS, SendGrid, Postmark, Mailgun). Each event is stored
//! as a small JSON document, `{"webhook":"sendgrid","event":{…}}`, holding the
//! provider's event as it came (its keys sorted), so that `bounces show` shows what the
//! provider said and the same event delivered twice is the same bytes: one stored row.
//! Reading a document gives the findings a bounce by mail would, and our Message-ID
//! where the event carries it.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::mime::OriginalMessage;
use super::reason::{self, Reason};
use super::{BounceClass, Finding, Report};

/// Whose webhook reported an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookProvider {
    Ses,
    SendGrid,
    Postmark,
    Mailgun,
}

impl WebhookProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookProvider::Ses => "ses",
            WebhookProvider::SendGrid => "sendgrid",
            WebhookProvider::Postmark => "postmark",
            WebhookProvider::Mailgun => "mailgun",
        }
    }
}

impl fmt::Display for WebhookProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event about the outcome of a delivery, as a provider's webhook reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    provider: WebhookProvider,
    event: Value,
}

impl WebhookEvent {
    /// The event, when it reports a delivery's outcome; `Ok(None)` for one that does not
    /// (opens, clicks, deferrals …); an error naming the field an outcome needs and lacks.
    pub fn new(
        provider: WebhookProvider,
        event: Value,
    ) -> Result<Option<WebhookEvent>, EventError> {
        Ok(outcome(provider, &event)?.map(|_| WebhookEvent { provider, event }))
    }

    pub fn provider(&self) -> WebhookProvider {
        self.provider
    }

    /// The bytes stored for it: `{"webhook":"…","event":{…}}`, compact, keys sorted.
    pub fn document(&self) -> Vec<u8> {
        format!(
            "{{\"webhook\":\"{}\",\"event\":{}}}",
            self.provider, self.event
        )
        .into_bytes()
    }
}

/// What is wrong with an event: the field (a path from the event's top; empty for the
/// event itself) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub field: String,
    pub problem: String,
}

impl EventError {
    fn new(field: &str, problem: &str) -> EventError {
        EventError {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The same error for an event found at `at` in a larger document (`[2]`,
    /// `event-data`, `Message`).
    pub fn at(self, at: &str) -> EventError {
        let field = if self.field.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{}", self.field)
        };
        EventError { field, ..self }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.as_str() {
            "" => write!(f, "the event {}", self.problem),
            field => write!(f, "{field}: {}", self.problem),
        }
    }
}

impl std::error::Error for EventError {}

#[derive(Deserialize)]
struct Document {
    webhook: WebhookProvider,
    event: Value,
}

/// The report of a stored webhook document; `None` when `raw` is not one.
pub(crate) fn read(raw: &[u8]) -> Option<Report> {
    if raw.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let document: Document = serde_json::from_slice(raw).ok()?;
    let findings = match outcome(document.webhook, &document.event) {
        Ok(Some(found)) if !found.is_empty() => found.into_iter().map(without_nul).collect(),
        _ => vec![Finding::nothing()],
    };
    let original = OriginalMessage {
        message_id: message_id(document.webhook, &document.event),
        ..OriginalMessage::default()
    };
    let mut report = super::report(findings, original, None);
    report.webhook = Some(document.webhook);
    Some(report)
}

/// The findings an event reports; `None` for an event about no outcome.
fn outcome(provider: WebhookProvider, event: &Value) -> Result<Option<Vec<Finding>>, EventError> {
    if !event.is_object() {
        return Err(EventError::new("", "is not a JSON object"));
    }
    let one = |found: Option<Finding>| found.map(|f| vec![f]);
    match provider {
        WebhookProvider::Ses => ses(event),
        WebhookProvider::SendGrid => sendgrid(event).map(one),
        WebhookProvider::Postmark => postmark(event).map(one),
        WebhookProvider::Mailgun => mailgun(event).map(one),
    }
}

/// Our Message-ID, where the provider's event quotes the message's: SES's
/// `mail.commonHeaders.messageId`, SendGrid's `smtp-id`, Mailgun's
/// `message.headers.message-id`. Postmark's events name only its own ids.
fn message_id(provider: WebhookProvider, event: &Value) -> Option<String> {
    let id = match provider {
        WebhookProvider::Ses => event.pointer("/mail/commonHeaders/messageId"),
        WebhookProvider::SendGrid => event.get("smtp-id"),
        WebhookProvider::Mailgun => event.pointer("/message/headers/message-id"),
        WebhookProvider::Postmark => None,
    }?;
    let id = id
        .as_str()?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_string())
}

/// An SES notification (the SNS message's `Message`): read as the same notification
/// received by mail is.
fn ses(notification: &Value) -> Result<Option<Vec<Finding>>, EventError> {
    let (key, kind) = ["notificationType", "eventType"]
        .into_iter()
        .find_map(|key| notification.get(key).map(|kind| (key, kind)))
        .ok_or_else(|| EventError::new("notificationType", "is missing"))?;
    let kind = kind
        .as_str()
        .ok_or_else(|| EventError::new(key, "is not a string"))?;
    let list = match kind {
        "Bounce" => "bounce.bouncedRecipients",
        "Complaint" => "complaint.complainedRecipients",
        "Delivery" => "delivery.recipients",
        _ => return Ok(None),
    };
    super::ses::findings(notification)
        .map(Some)
        .ok_or_else(|| EventError::new(list, "names no recipient"))
}

/// A SendGrid event: `bounce` (type `blocked` is soft: the message or its sender was
/// refused, not the address), `dropped` for an address on SendGrid's bounce or spam
/// report list, `spamreport`, `delivered`. Deferrals are retries still under way.
fn sendgrid(event: &Value) -> Result<Option<Finding>, EventError> {
    let kind = string(event, "event")?;
    if !matches!(kind, "bounce" | "dropped" | "spamreport" | "delivered") {
        return Ok(None);
    }
    let recipient = string(event, "email")?.to_string();
    let diagnostic = text(event, "reason").or_else(|| text(event, "response"));
    let status = status_of(diagnostic.as_deref(), text(event, "status").as_deref());
    let class = match kind {
        "bounce" if text(event, "type").as_deref() == Some("blocked") => BounceClass::Soft,
        "bounce" if text(event, "bounce_classification").as_deref() == Some("Invalid Address") => {
            BounceClass::Hard
        }
        "bounce" => permanent(status.as_deref(), diagnostic.as_deref()),
        "dropped" => match dropped(diagnostic.as_deref()) {
            Some(class) => class,
            None => return Ok(None),
        },
        "spamreport" => BounceClass::Complaint,
        _ => BounceClass::Delivered,
    };
    Ok(Some(finding(class, recipient, status, diagnostic)))
}

/// Why SendGrid dropped a message: an address that bounced before cannot receive; one
/// that reported spam before complained. Other drops (unsubscribed, invalid headers,
/// spam content) say nothing about the address.
fn dropped(reason: Option<&str>) -> Option<BounceClass> {
    let reason = reason?.to_ascii_lowercase();
    if reason.contains("bounced address") {
        Some(BounceClass::Hard)
    } else if reason.contains("spam reporting address") {
        Some(BounceClass::Complaint)
    } else {
        None
    }
}

/// A Postmark record: `Bounce` (by its `Type`), `SpamComplaint`, `Delivery`.
fn postmark(event: &Value) -> Result<Option<Finding>, EventError> {
    let (class, address) = match string(event, "RecordType")? {
        "Bounce" => match postmark_bounce(string(event, "Type")?) {
            Some(class) => (class, "Email"),
            None => return Ok(None),
        },
        "SpamComplaint" => (BounceClass::Complaint, "Email"),
        "Delivery" => (BounceClass::Delivered, "Recipient"),
        _ => return Ok(None),
    };
    let recipient = string(event, address)?.to_string();
    let diagnostic = text(event, "Details").or_else(|| text(event, "Description"));
    let status = status_of(diagnostic.as_deref(), None);
    Ok(Some(finding(class, recipient, status, diagnostic)))
}

/// Postmark's bounce types. Those about neither the address nor the delivery
/// (subscriptions, manual deactivation, API and template errors, `Unknown`) are none.
fn postmark_bounce(kind: &str) -> Option<BounceClass> {
    Some(match kind {
        "HardBounce" | "BadEmailAddress" | "AddressChange" => BounceClass::Hard,
        "SoftBounce" | "Transient" | "DnsError" | "SpamNotification" | "VirusNotification"
        | "Blocked" | "DMARCPolicy" => BounceClass::Soft,
        "SpamComplaint" => BounceClass::Complaint,
        "AutoResponder" | "ChallengeVerification" => BounceClass::AutoReply,
        _ => return None,
    })
}

/// A Mailgun `event-data`: `failed` (permanent or temporary), `complained`, `delivered`.
fn mailgun(event: &Value) -> Result<Option<Finding>, EventError> {
    let kind = string(event, "event")?;
    if !matches!(kind, "failed" | "complained" | "delivered") {
        return Ok(None);
    }
    let recipient = string(event, "recipient")?.to_string();
    let delivery = event.get("delivery-status");
    let diagnostic = delivery.and_then(|d| text(d, "message").or_else(|| text(d, "description")));
    let enhanced = delivery.and_then(|d| text(d, "enhanced-code"));
    let status = status_of(diagnostic.as_deref(), enhanced.as_deref());
    let class = match kind {
        "failed" => match string(event, "severity")? {
            // Mailgun did not try: the address bounced hard before.
            "permanent" if text(event, "reason").as_deref() == Some("suppress-bounce") => {
                BounceClass::Hard
            }
            "permanent" => permanent(status.as_deref(), diagnostic.as_deref()),
            "temporary" => BounceClass::Soft,
            _ => {
                return Err(EventError::new(
                    "severity",
                    "is neither permanent nor temporary",
                ));
            }
        },
        "complained" => BounceClass::Complaint,
        _ => BounceClass::Delivered,
    };
    Ok(Some(finding(class, recipient, status, diagnostic)))
}

/// A failure the provider calls permanent: hard when its words say the address is
/// wrong, soft when they name another cause (full, blocked, content, expired), and hard
/// on the provider's word when they say nothing the classifier knows.
fn permanent(status: Option<&str>, diagnostic: Option<&str>) -> BounceClass {
    match reason::reason(status, diagnostic.unwrap_or(""), "") {
        Reason::Other => BounceClass::Hard,
        why => reason::class_of(why, status),
    }
}

/// The remote server's enhanced status code when its words quote one, else the
/// provider's summary code.
fn status_of(diagnostic: Option<&str>, summary: Option<&str>) -> Option<String> {
    diagnostic
        .and_then(reason::find_status)
        .or_else(|| summary.and_then(reason::find_status))
}

fn finding(
    class: BounceClass,
    recipient: String,
    status: Option<String>,
    diagnostic: Option<String>,
) -> Finding {
    Finding {
        class,
        recipient: Some(recipient),
        status,
        diagnostic,
    }
}

/// The finding without NUL characters, which a provider's JSON may escape in and a
/// PostgreSQL text column refuses.
fn without_nul(finding: Finding) -> Finding {
    let clean = |text: Option<String>| text.map(|t| t.replace('\0', ""));
    Finding {
        class: finding.class,
        recipient: clean(finding.recipient),
        status: clean(finding.status),
        diagnostic: clean(finding.diagnostic),
    }
}

/// A string field the event cannot do without.
fn string<'a>(event: &'a Value, key: &str) -> Result<&'a str, EventError> {
    match event.get(key) {
        None | Some(Value::Null) => Err(EventError::new(key, "is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(EventError::new(key, "is empty")),
        Some(Value::String(s)) => Ok(s.trim()),
        Some(_) => Err(EventError::new(key, "is not a string")),
    }
}

/// A string field that may be absent; empty counts as absent.
fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
