//! Amazon SES notifications delivered by email (through SNS): JSON, not a DSN.

use serde_json::Value;

use super::mime::Parts;
use super::reason::{self, class_of};
use super::{BounceClass, Finding};

/// The findings of an SES bounce, complaint or delivery notification, or `None`.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    if !parts.text.contains("notificationType") && !parts.text.contains("eventType") {
        return None;
    }
    let start = parts.text.find('{')?;
    let end = parts.text.rfind('}')?;
    // Mail systems wrap long lines as "!\n "; that is not part of the JSON.
    let json = parts.text.get(start..=end)?.replace("!\n ", "");
    let outer: Value = serde_json::from_str(&json).ok()?;
    let notification = match outer.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).ok()?,
        None => outer,
    };
    findings(&notification)
}

/// The findings of one SES notification (`notificationType`, or `eventType` when it
/// comes from event publishing), or `None` for another kind or one naming nobody.
pub(crate) fn findings(notification: &Value) -> Option<Vec<Finding>> {
    let kind = notification
        .get("notificationType")
        .or_else(|| notification.get("eventType"))
        .and_then(Value::as_str)?;
    let findings = match kind {
        "Bounce" => bounces(notification.get("bounce")?),
        "Complaint" => recipients(
            notification.get("complaint")?,
            "complainedRecipients",
            BounceClass::Complaint,
        ),
        "Delivery" => delivered(notification.get("delivery")?),
        _ => return None,
    };
    (!findings.is_empty()).then_some(findings)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

fn bounces(bounce: &Value) -> Vec<Finding> {
    let transient = text(bounce, "bounceType").as_deref() == Some("Transient");
    list(bounce, "bouncedRecipients")
        .map(|r| {
            let diagnostic = text(r, "diagnosticCode");
            let status = text(r, "status")
                .and_then(|s| reason::find_status(&s))
                .or_else(|| diagnostic.as_deref().and_then(reason::find_status));
            let why = reason::reason(status.as_deref(), diagnostic.as_deref().unwrap_or(""), "");
            let class = if transient {
                BounceClass::Soft
            } else {
                class_of(why, status.as_deref())
            };
            Finding {
                class,
                recipient: text(r, "emailAddress"),
                status,
                diagnostic,
            }
        })
        .collect()
}

fn recipients(event: &Value, key: &str, class: BounceClass) -> Vec<Finding> {
    list(event, key)
        .map(|r| Finding {
            class,
            recipient: text(r, "emailAddress"),
            status: None,
            diagnostic: text(event, "complaintFeedbackType"),
        })
        .collect()
}

fn delivered(delivery: &Value) -> Vec<Finding> {
    let response = text(delivery, "smtpResponse");
    let status = response.as_deref().and_then(reason::find_status);
    list(delivery, "recipients")
        .filter_map(Value::as_str)
        .map(|r| Finding {
            class: BounceClass::Delivered,
            recipient: Some(r.to_string()),
            status: status.clone(),
            diagnostic: response.clone(),
        })
        .collect()
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}
