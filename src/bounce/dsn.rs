//! RFC 3464 delivery status notifications: the per-recipient fields of a
//! message/delivery-status part (or of the same fields written into the text).

use super::knowledge::{self, Reporter};
use super::mime::{Parts, header_fields};
use super::reason::{self, Reason, class_of};
use super::{BounceClass, Finding, address};

/// One per-recipient block of a DSN.
#[derive(Debug, Default)]
struct RecipientFields {
    final_recipient: Option<String>,
    original_recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic_type: Option<String>,
    diagnostic: Option<String>,
    /// The host that refused the message (Remote-MTA).
    remote_mta: Option<String>,
    /// PowerMTA's own verdict (X-PowerMTA-BounceCategory: bad-mailbox, …).
    category: Option<String>,
}

impl RecipientFields {
    fn has_recipient(&self) -> bool {
        self.final_recipient.is_some() || self.original_recipient.is_some()
    }

    fn reported(&self) -> bool {
        self.action.is_some() || self.status.is_some()
    }
}

/// The findings of the DSN fields in `parts`; `None` when there are none.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    let mut blocks: Vec<RecipientFields> = parts
        .delivery_status
        .iter()
        .flat_map(|body| recipient_blocks(body))
        .collect();
    if blocks.is_empty() && parts.lower.contains("final-recipient:") {
        blocks = recipient_blocks(&parts.text);
    }
    let reporter = Reporter::of(parts);
    let findings: Vec<Finding> = blocks
        .iter()
        .filter(|b| b.has_recipient())
        .map(|b| finding(b, parts, reporter))
        .collect();
    (!findings.is_empty()).then_some(findings)
}

fn recipient_blocks(body: &str) -> Vec<RecipientFields> {
    let mut blocks = Vec::new();
    let mut current = RecipientFields::default();
    for (name, value) in header_fields(body) {
        let starts_new = match name.as_str() {
            "original-recipient" => current.original_recipient.is_some() || current.reported(),
            "final-recipient" => current.final_recipient.is_some() || current.reported(),
            _ => false,
        };
        if starts_new {
            blocks.push(std::mem::take(&mut current));
        }
        let (kind, rest) = split_type(&value);
        match name.as_str() {
            "final-recipient" | "x-actual-recipient" if current.final_recipient.is_none() => {
                current.final_recipient = address::first(rest).map(str::to_string);
            }
            "original-recipient" => {
                current.original_recipient = address::first(rest).map(str::to_string);
            }
            "remote-mta" => current.remote_mta = rest.split_whitespace().next().map(str::to_string),
            "x-powermta-bouncecategory" => current.category = Some(value.to_ascii_lowercase()),
            "action" => current.action = Some(value.to_ascii_lowercase()),
            "status" => current.status = reason::find_status(&value),
            "diagnostic-code" => {
                current.diagnostic_type = kind.map(str::to_ascii_lowercase);
                current.diagnostic = Some(rest.to_string()).filter(|d| !d.is_empty());
            }
            _ => {}
        }
    }
    blocks.push(current);
    blocks
}

/// `rfc822; a@b` → (Some("rfc822"), "a@b").
fn split_type(value: &str) -> (Option<&str>, &str) {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') => (Some(kind.trim()), rest.trim()),
        _ => (None, value.trim()),
    }
}

fn finding(block: &RecipientFields, parts: &Parts, reporter: Option<Reporter>) -> Finding {
    let recipient = recipient_of(block, parts.report_lower());
    let report = parts.report();
    let near = recipient
        .as_deref()
        .and_then(|r| super::legacy::text_near(report, parts.report_lower(), r));
    let diagnostic = block
        .diagnostic
        .clone()
        .or_else(|| near.clone())
        .or_else(|| Some(super::mime::unfold(report)))
        .filter(|d| !d.is_empty());
    let status = block
        .status
        .clone()
        .or_else(|| diagnostic.as_deref().and_then(reason::find_status));
    let context = with_transcript_command(near.as_deref().unwrap_or(""), report);
    let context = context.as_str();
    let diagnostic_text = diagnostic.as_deref().unwrap_or("");
    let remote_host = block
        .remote_mta
        .as_deref()
        .filter(|host| host.contains('.'))
        .or_else(|| knowledge::remote_host_in(context))
        .or_else(|| {
            recipient
                .as_deref()
                .and_then(|r| r.rsplit_once('@'))
                .map(|(_, d)| d)
        });
    let lower = Lower {
        diagnostic: diagnostic_text.to_ascii_lowercase(),
        context: context.to_ascii_lowercase(),
    };
    let known = knowledge::known_reason(
        reporter,
        remote_host,
        &[&lower.diagnostic, &lower.context],
        parts.report_lower(),
    );
    let class = class_for(block, status.as_deref(), diagnostic_text, &lower, known);
    Finding {
        class,
        recipient,
        status,
        diagnostic,
    }
}

/// The report's words around the recipient, followed by the last command of the SMTP
/// transcript the report quotes (`>>> RCPT To:<…>`, `>>> DATA`): Sendmail names the step
/// the remote host refused that way, for every recipient of the report, and the
/// reference reads it so.
fn with_transcript_command(near: &str, report: &str) -> String {
    let last_command = report.lines().rev().find(|line| line.starts_with(">>> "));
    match last_command {
        Some(line) => format!("{near}\n{line}"),
        None => near.to_string(),
    }
}

/// The Final-Recipient, or the Original-Recipient when the report's text names it as
/// the address the sender wrote ("Original address: …", Sun/Oracle Messaging Server and
/// PMDF), as the reference reads those reports. `report_lower` is in lower case.
fn recipient_of(block: &RecipientFields, report_lower: &str) -> Option<String> {
    let original = block.original_recipient.as_deref();
    let named = original.filter(|o| report_lower.contains(&original_line(o)));
    named
        .or(block.final_recipient.as_deref())
        .or(original)
        .map(str::to_string)
}

fn original_line(address: &str) -> String {
    format!("original address: {}", address.to_ascii_lowercase())
}

/// The diagnostic and the report's words around the recipient, in lower case.
struct Lower {
    diagnostic: String,
    context: String,
}

fn class_for(
    block: &RecipientFields,
    status: Option<&str>,
    diagnostic: &str,
    lower: &Lower,
    known: Option<Reason>,
) -> BounceClass {
    let action = block.action.as_deref().unwrap_or("");
    if ["delivered", "deliverable", "relayed", "expanded"]
        .iter()
        .any(|a| action.starts_with(a))
    {
        return BounceClass::Delivered;
    }
    if action.is_empty() && status.is_some_and(|s| s.starts_with('2')) {
        return BounceClass::Delivered;
    }
    match block.category.as_deref() {
        Some("bad-mailbox") => return class_of(Reason::UserUnknown, status),
        Some("bad-domain") => return class_of(Reason::HostUnknown, status),
        _ => {}
    }
    if block.diagnostic_type.as_deref() == Some("x-unix") {
        return class_of(Reason::MailerError, status);
    }
    if let Some(why) = known {
        return class_of(why, status);
    }
    // The code the server quoted replaces the Status field when it names a subject and a
    // detail (X.1.1, not X.0.0 or X.1.10), as the reference reads reports; a generic
    // Status (X.0.0) gives way to any quoted code.
    let quoted = reason::find_status(diagnostic);
    let specific = quoted
        .clone()
        .filter(|code| names_subject_and_detail(code))
        .or_else(|| status.filter(|s| !s.ends_with(".0.0")).map(str::to_string))
        .or(quoted);
    let status = specific.as_deref().or(status);
    class_of(
        reason::reason_lower(status, &lower.diagnostic, &lower.context),
        status,
    )
}

/// Whether an enhanced status code is X.Y.Z with Y and Z single digits from 1 to 9.
fn names_subject_and_detail(code: &str) -> bool {
    let digits: Vec<&str> = code.split('.').collect();
    digits.len() == 3
        && digits[1..]
            .iter()
            .all(|d| d.len() == 1 && d.bytes().all(|b| (b'1'..=b'9').contains(&b)))
}
