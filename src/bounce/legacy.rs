//! Bounces that are not RFC 3464 DSNs: the plain-text reports of Exim, qmail, old
//! Sendmail, Exchange, Gmail, Yahoo, Amazon SES and others. They differ in wording but
//! share a shape: a paragraph that names the failed address, the remote server's words
//! next to it, then a copy of the returned message. The rules below read that shape, not
//! any one server's template.

use super::knowledge::{self, Reporter};
use super::mime::{Parts, flatten_lower, unfold};
use super::phrases::Phrases;
use super::reason::{self, class_of};
use super::{Finding, address};

/// Lines that introduce the copy of the returned message (matched in lower case).
static COPY_MARKERS: Phrases = Phrases::new(&[
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
    "returned mail --",
    "original message header",
    "content-type: message/rfc822",
]);

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
static BOUNCE_PHRASES: Phrases = Phrases::new(&[
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
    "did not reach the following recipient",
    "failed recipients --",
    "has been postponed",
    "did not receive a copy of your message",
]);

/// Lines that mention a copy of the message without introducing one.
static NOT_A_COPY: Phrases = Phrases::new(&["did not receive a copy", "did not get a copy"]);

/// Where the copy of the returned message starts: after the line that introduces it.
/// `lower` is the text in ASCII lower case, whose byte offsets are the text's.
pub(crate) fn copy_start(lower: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + COPY_MARKERS.first_in(&lower[from..])?;
        let line_start = lower[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = lower[at..].find('\n').map_or(lower.len(), |i| at + i + 1);
        if !NOT_A_COPY.any_in(&lower[line_start..end]) {
            return Some(end);
        }
        from = end;
    }
}

/// The findings of a non-DSN failure report, or `None` when `parts` are not one.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    let report = parts.report();
    let report_lower = parts.report_lower();
    if !looks_like_bounce(parts, report_lower) {
        return None;
    }
    let excluded = excluded_addresses(parts);
    let failed = failed_recipients_header(parts);
    let mut recipients = if failed.is_empty() {
        recipients_in(report, &excluded)
    } else {
        failed
    };
    if recipients.is_empty() && parts.attached_report.is_some() {
        // The attached report names them; `parse` reads it.
        return None;
    }
    if recipients.is_empty() {
        recipients = fallback_recipients(parts);
    }
    let report = Report {
        text: report,
        lower: report_lower,
        flat: flatten_lower(report),
        reporter: Reporter::of(parts),
    };
    let findings = if recipients.is_empty() {
        vec![finding(&report, None)]
    } else {
        recipients
            .iter()
            .map(|r| finding(&report, Some(r)))
            .collect()
    };
    Some(findings)
}

fn looks_like_bounce(parts: &Parts, report_lower: &str) -> bool {
    // A multipart/report of delivery status says what it is, whatever its parts hold.
    if parts.header("x-failed-recipients").is_some()
        || parts.report_type.as_deref() == Some("delivery-status")
    {
        return true;
    }
    let from = parts.header("from").unwrap_or("").to_ascii_lowercase();
    let from_system = address::all(&from).into_iter().any(address::is_system)
        || from.contains("mail delivery")
        || from.contains("mailer-daemon")
        || from.contains("mailer daemon")
        || from.contains("postmaster")
        || from.trim() == "<>";
    let subject = parts.subject.as_deref().unwrap_or("").to_ascii_lowercase();
    let subject_says = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    let text_says = BOUNCE_PHRASES.any_in(report_lower);
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
    let listed = rest.starts_with(first) && !continues_a_reply(first);
    (listed && !address::is_system(first)).then_some(first)
}

/// Whether an address is the start of a line of a multi-line SMTP reply
/// (`550-gone@b.c is not …`): the reply quotes the address, it does not list it.
fn continues_a_reply(address: &str) -> bool {
    let bytes = address.as_bytes();
    bytes.len() > 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b'-'
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

/// The addresses of an X-Failed-Recipients header (Exim, Gmail), which names exactly
/// the recipients that failed.
fn failed_recipients_header(parts: &Parts) -> Vec<String> {
    let named = parts.header("x-failed-recipients").map(address::all);
    unique(named.unwrap_or_default().into_iter(), &[])
}

fn fallback_recipients(parts: &Parts) -> Vec<String> {
    parts
        .header("x-failed-recipients")
        .or(parts.original.to.as_deref())
        .map(|v| address::all(v).into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The report text of one message in the forms the rules read it.
struct Report<'a> {
    text: &'a str,
    lower: &'a str,
    /// Lower case, whitespace runs made one space.
    flat: String,
    reporter: Option<Reporter>,
}

fn finding(report: &Report<'_>, recipient: Option<&str>) -> Finding {
    let near = recipient.and_then(|r| text_near(report.text, report.lower, r));
    let diagnostic = near
        .clone()
        .or_else(|| Some(unfold(report.text)))
        .filter(|d| !d.is_empty());
    let near_text = near.as_deref().unwrap_or("");
    let status = reason::find_status(near_text).or_else(|| reason::find_status(report.text));
    let remote_host = knowledge::remote_host_in(near_text)
        .or_else(|| recipient.and_then(|r| r.rsplit_once('@')).map(|(_, d)| d));
    let flat = report.flat.as_str();
    let known = knowledge::known_reason(report.reporter, remote_host, &[flat], report.lower);
    let mut why = known.unwrap_or_else(|| {
        reason::reason_lower(status.as_deref(), &near_text.to_ascii_lowercase(), flat)
    });
    if matches!(why, reason::Reason::Other | reason::Reason::Expired) {
        why = reason::reason_lower(status.as_deref(), flat, flat);
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
/// `lower` is `report` in ASCII lower case.
pub(crate) fn text_near(report: &str, lower: &str, recipient: &str) -> Option<String> {
    let at = lower.find(&recipient.to_ascii_lowercase())?;
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
