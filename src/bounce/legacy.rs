//! Bounces that are not RFC 3464 DSNs: the plain-text reports of Exim, qmail, old
//! Sendmail, Exchange, Gmail, Yahoo, Amazon SES and others. They differ in wording but
//! share a shape: a paragraph that names the failed address, the remote server's words
//! next to it, then a copy of the returned message. The rules below read that shape, not
//! any one server's template.

use super::mime::{Parts, unfold};
use super::reason::{self, class_of};
use super::{Finding, address};

/// Lines that introduce the copy of the returned message (matched in lower case).
const COPY_MARKERS: &[&str] = &[
    "original message follows",
    "original message headers",
    "original message --",
    "original message-",
    "copy of the message",
    "copy of your message",
    "copy of the original message",
    "below this line is a copy",
    "message headers follow",
    "headers of your message",
    "unsent message below",
    "returned message follows",
    "undelivered message follows",
    "forwarded message",
    "returned message --",
    "original message header",
    "content-type: message/rfc822",
];

/// Subjects of delivery failure reports (matched in lower case).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery problem",
    "failure notice",
    "failed delivery",
    "returned mail",
    "returned to sender",
    "mail delivery",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "could not be delivered",
    "not delivered",
    "delivery error",
    "mail system error",
    "message not delivered",
    "error sending",
    "permanent error",
    "rejected",
    "bounce",
    "warning: could not",
    "delayed mail",
];

/// Phrases only a failure report writes (matched in lower case).
const BOUNCE_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't delivered",
    "delivery has failed",
    "delivery to the following",
    "permanent error",
    "permanent fatal error",
    "unable to deliver",
    "i'm afraid i wasn't able to deliver",
    "undeliverable",
    "following address(es) failed",
    "following addresses had permanent",
    "could not deliver",
    "delivery failed",
    "message was not sent",
    "returned to you",
    "not be delivered",
    "mail delivery failed",
];

/// The copy of the returned message that follows the report text, if marked.
pub(crate) fn returned_copy(text: &str) -> Option<&str> {
    copy_start(text).map(|at| &text[at..])
}

fn copy_start(text: &str) -> Option<usize> {
    // ASCII lower-casing keeps byte offsets, so positions in `lower` are positions in `text`.
    let lower = text.to_ascii_lowercase();
    let at = COPY_MARKERS.iter().filter_map(|m| lower.find(m)).min()?;
    Some(
        lower[at..]
            .find('\n')
            .map_or(text.len(), |end| at + end + 1),
    )
}

/// The report part of the text: everything before the returned copy.
pub(crate) fn report_text(text: &str) -> &str {
    let end = copy_start(text).unwrap_or(text.len());
    &text[..end]
}

/// The findings of a non-DSN failure report, or `None` when `parts` are not one.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    let report = report_text(&parts.text);
    if !looks_like_bounce(parts, report) {
        return None;
    }
    let excluded = excluded_addresses(parts);
    let mut recipients = recipients_in(report, &excluded);
    if recipients.is_empty() && parts.attached_report.is_some() {
        // The attached report names them; `parse` reads it.
        return None;
    }
    if recipients.is_empty() {
        recipients = fallback_recipients(parts);
    }
    let findings = if recipients.is_empty() {
        vec![finding(report, None)]
    } else {
        recipients
            .iter()
            .map(|r| finding(report, Some(r)))
            .collect()
    };
    Some(findings)
}

fn looks_like_bounce(parts: &Parts, report: &str) -> bool {
    if parts.header("x-failed-recipients").is_some() {
        return true;
    }
    let from = parts.header("from").unwrap_or("").to_ascii_lowercase();
    let from_system = address::all(&from).into_iter().any(address::is_system)
        || from.contains("mail delivery")
        || from.contains("mailer-daemon")
        || from.contains("mailer daemon")
        || from.trim() == "<>";
    let subject = parts.header("subject").unwrap_or("").to_ascii_lowercase();
    let subject_says = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    let lower = report.to_ascii_lowercase();
    let text_says = BOUNCE_PHRASES.iter().any(|p| lower.contains(p));
    from_system || (text_says && (subject_says || parts.original_found || is_automatic(parts)))
}

fn is_automatic(parts: &Parts) -> bool {
    parts
        .header("auto-submitted")
        .is_some_and(|v| !v.eq_ignore_ascii_case("no"))
        || parts
            .header("return-path")
            .is_some_and(|v| v.trim() == "<>")
}

/// The sender and the bounce's own addresses, which the report names but did not fail.
fn excluded_addresses(parts: &Parts) -> Vec<String> {
    let headers = [
        "from",
        "to",
        "reply-to",
        "sender",
        "delivered-to",
        "x-original-to",
        "return-path",
    ];
    let own = headers.iter().filter_map(|h| parts.header(h));
    let original = parts.original.from.as_deref().into_iter();
    own.chain(original)
        .flat_map(address::all)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Addresses in the report text that may be failed recipients, in order, once each:
/// those that start a line (how most servers list failed recipients) or, when no line
/// starts with one, every address that is not the sender's or a mail system's.
fn recipients_in(report: &str, excluded: &[String]) -> Vec<String> {
    let listed = unique(report.lines().filter_map(listed_address), &[]);
    if !listed.is_empty() {
        return listed;
    }
    unique(address::all(report).into_iter(), excluded)
}

/// The address a line starts with (after `<`, quotes, `>>>` or dashes), if any.
fn listed_address(line: &str) -> Option<&str> {
    let rest = line
        .trim_start()
        .trim_start_matches(['<', '"', '\'', '>', '-', ' ', '\t', '*']);
    let first = address::first(rest)?;
    (rest.starts_with(first) && !address::is_system(first)).then_some(first)
}

fn unique<'a>(candidates: impl Iterator<Item = &'a str>, excluded: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for candidate in candidates {
        let lower = candidate.to_ascii_lowercase();
        if address::is_system(candidate)
            || excluded.contains(&lower)
            || found.iter().any(|f| f.eq_ignore_ascii_case(candidate))
        {
            continue;
        }
        found.push(candidate.to_string());
    }
    found
}

fn fallback_recipients(parts: &Parts) -> Vec<String> {
    parts
        .header("x-failed-recipients")
        .or(parts.original.to.as_deref())
        .map(|v| address::all(v).into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn finding(report: &str, recipient: Option<&str>) -> Finding {
    let near = recipient.and_then(|r| text_near(report, r));
    let diagnostic = near
        .clone()
        .or_else(|| Some(unfold(report)))
        .filter(|d| !d.is_empty());
    let near_text = near.as_deref().unwrap_or("");
    let status = reason::find_status(near_text).or_else(|| reason::find_status(report));
    let mut why = reason::reason(status.as_deref(), near_text, report);
    if matches!(why, reason::Reason::Other | reason::Reason::Expired) {
        why = reason::reason(status.as_deref(), report, report);
    }
    Finding {
        class: class_of(why, status.as_deref()),
        recipient: recipient.map(str::to_string),
        status,
        diagnostic,
    }
}

/// The line naming `recipient` and what follows it: up to the first blank line after
/// some words of explanation (a server's list often puts the address alone on a line and
/// the reason a paragraph below).
pub(crate) fn text_near(report: &str, recipient: &str) -> Option<String> {
    let at = report
        .to_ascii_lowercase()
        .find(&recipient.to_ascii_lowercase())?;
    let line_start = report[..at].rfind('\n').map_or(0, |i| i + 1);
    let mut lines = report[line_start..].lines();
    let mut taken: Vec<&str> = Vec::new();
    let mut words = 0;
    for line in lines.by_ref().take(16) {
        let line = line.trim();
        if !taken.is_empty()
            && listed_address(line).is_some_and(|other| !other.eq_ignore_ascii_case(recipient))
        {
            break;
        }
        if line.is_empty() {
            if words >= 6 {
                break;
            }
            continue;
        }
        words += line.split_whitespace().filter(|w| !w.contains('@')).count();
        taken.push(line);
    }
    Some(taken.join(" ")).filter(|t| !t.is_empty())
}
