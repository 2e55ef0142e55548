//! RFC 5965 abuse feedback reports: a recipient marked the message as spam.

use super::mime::{Parts, header_fields};
use super::{BounceClass, Finding, address};

/// A complaint when `parts` hold a feedback report; `None` otherwise.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    let report = match &parts.feedback_report {
        Some(report) => report.as_str(),
        // A report whose parts could not be split still has its fields in the text.
        None if parts.report_type.as_deref() == Some("feedback-report") => parts.text.as_str(),
        None if is_text_report(&parts.lower) => parts.text.as_str(),
        None => return microsoft_jmrp(parts),
    };
    let fields = header_fields(report);
    let field = |name: &str| {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let mut recipients: Vec<String> = field("original-rcpt-to")
        .into_iter()
        .chain(field("removal-recipient"))
        .filter_map(address::first)
        .map(str::to_string)
        .collect();
    recipients.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    if recipients.is_empty() {
        recipients.extend(
            parts
                .original
                .to
                .as_deref()
                .and_then(address::first)
                .map(str::to_string),
        );
    }
    let diagnostic = field("feedback-type")
        .first()
        .map(|t| format!("feedback-type: {t}"));
    let finding = |recipient: Option<String>| Finding {
        class: BounceClass::Complaint,
        recipient,
        status: None,
        diagnostic: diagnostic.clone(),
    };
    if recipients.is_empty() {
        return Some(vec![finding(None)]);
    }
    Some(recipients.into_iter().map(|r| finding(Some(r))).collect())
}

/// A report written into the text (no message/feedback-report part): it starts its own
/// line with `Feedback-Type:` and names what was reported. `lower` is in lower case.
fn is_text_report(lower: &str) -> bool {
    lower.contains("\nfeedback-type:")
        && (lower.contains("\nuser-agent:") || lower.contains("\nversion:"))
}

/// Microsoft's junk mail reports (JMRP): the reported message attached as is, its
/// recipient in an X-HmXmrOriginalRecipient header. No other mail carries that header.
fn microsoft_jmrp(parts: &Parts) -> Option<Vec<Finding>> {
    let recipient = parts.jmrp_recipient.as_deref()?;
    Some(vec![Finding {
        class: BounceClass::Complaint,
        recipient: address::first(recipient).map(str::to_string),
        status: None,
        diagnostic: Some("feedback-type: abuse (Microsoft JMRP)".to_string()),
    }])
}
