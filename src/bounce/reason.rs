//! Why a delivery failed, from its RFC 3463 enhanced status code and diagnostic text, and
//! whether that makes the failure hard or soft.
//!
//! Hard means the address itself is wrong: the mailbox or its domain does not exist, or it
//! moved. Everything else (full mailbox, policy or spam blocks, network trouble, expiry)
//! is soft even with a 5xx code: the address may work for another message or later, and
//! suppressing it would lose a real reader. This is also how Sisimai splits them.

use super::BounceClass;
use super::mime::flatten_lower;
use super::phrases::Phrases;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    UserUnknown,
    HostUnknown,
    HasMoved,
    /// The domain accepts no mail (null MX); hard only with a permanent code.
    NotAccept,
    MailboxFull,
    MesgTooBig,
    Suspend,
    NoRelaying,
    Blocked,
    Rejected,
    Filtered,
    NetworkError,
    Expired,
    MailerError,
    Other,
}

static MAILBOX_FULL: Phrases = Phrases::new(&[
    "mailbox full",
    "mailbox is full",
    "mailbox size limit",
    "mailfolder is full",
    "over quota",
    "overquota",
    "quota exceeded",
    "exceeded storage",
    "exceeds quota",
    "quota full",
    "disk quota",
    "account is full",
    "mailbox has exceeded",
    "user has exceeded",
    "is over the quota",
    "over its quota",
    "out of storage",
    "insufficient disk",
    "too many messages",
    "mailbox exceeds",
    "storage allocation",
    "is full",
]);

static MESG_TOO_BIG: Phrases = Phrases::new(&[
    "message too large",
    "message too big",
    "message is too large",
    "message is too big",
    "message size exceeds",
    "message exceeds",
    "size limit exceeded",
    "exceeds size limit",
    "exceeded the maximum size",
    "message length exceeds",
    "message file too big",
]);

static SUSPEND: Phrases = Phrases::new(&[
    "account disabled",
    "account has been disabled",
    "account is disabled",
    "mailbox disabled",
    "mailbox has been disabled",
    "mailbox is disabled",
    "mailbox unavailable or disabled",
    "has been suspended",
    "is suspended",
    "account suspended",
    "temporarily disabled",
    "account is inactive",
    "mailbox is inactive",
    "account inactive",
    "is frozen",
    "account has been frozen",
    "account expired",
    "recipient suspend",
    "is disabled",
]);

static HAS_MOVED: Phrases =
    Phrases::new(&["has been replaced by", "address has moved", "has moved"]);

static NO_RELAYING: Phrases = Phrases::new(&[
    "relay access denied",
    "relaying denied",
    "relay denied",
    "relaying not allowed",
    "relay not permitted",
    "not permitted to relay",
    "unable to relay",
    "we do not relay",
    "relaying mail to",
    "relay not allowed",
    "not a gateway",
    "no relaying",
]);

static USER_UNKNOWN: Phrases = Phrases::new(&[
    "user unknown",
    "unknown user",
    "user is unknown",
    "unknown recipient",
    "recipient unknown",
    "unknown address",
    "address unknown",
    "unknown mailbox",
    "unknown local part",
    "unknown or illegal alias",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no such address",
    "no such local user",
    "no such account",
    "no such person",
    "user not found",
    "recipient not found",
    "mailbox not found",
    "address not found",
    "account not found",
    "not found in directory",
    "user does not exist",
    "user doesn't exist",
    "mailbox does not exist",
    "mailbox doesn't exist",
    "recipient does not exist",
    "address does not exist",
    "account does not exist",
    "account that you tried to reach does not exist",
    "does not exist here",
    "email address does not exist",
    "does not have an account",
    "doesn't have a",
    "no mailbox here by that name",
    "no mailbox",
    "no mail box",
    "invalid recipient",
    "invalid mailbox",
    "invalid address",
    "invalid user",
    "not a valid mailbox",
    "not a valid user",
    "bad destination mailbox",
    "recipient address rejected: user unknown",
    "recipient address rejected: undeliverable address",
    "undeliverable address",
    "not our customer",
    "no account by that name",
    "is not a known user",
    "not listed in",
    "unknown e-mail address",
    "recipient rejected",
    "recipient address rejected: access denied",
    "couldn't be found",
    "invalid final delivery userid",
    "recipientnotfound",
    "mailbox unavailable",
    "address rejected",
    "user invalid",
    "destination address does not exist",
    "no such email address",
    "couldn't find a user",
    "this account has been deleted",
    "account has been deleted",
    "is not a valid e-mail address",
    "not exist",
    "said: 550 5.1.1",
    "unknown account",
    "addressee unknown",
    "no valid recipients",
    "name not recognized",
    "name is not recognized",
]);

static HOST_UNKNOWN: Phrases = Phrases::new(&[
    "host unknown",
    "unknown host",
    "host not found",
    "domain not found",
    "no such domain",
    "domain does not exist",
    "domain doesn't exist",
    "domain name not found",
    "name or service not known",
    "unrouteable mail domain",
    "unrouteable domain",
    "unrouteable address",
    "unroutable address",
    "couldn't find any host",
    "host or domain name not found",
    "no mx record",
    "illegal host/domain",
    "unknown domain",
    "domain is not reachable",
    "invalid domain",
    "recipient domain does not exist",
    "domain is not found",
    "nxdomain",
]);

/// Trouble on the way (DNS failures, loops): soft even with a "host unknown" code.
static NETWORK_ERROR: Phrases = Phrases::new(&[
    "malformed or unexpected name server reply",
    "malformed name server reply",
    "host name lookup failure",
    "host not found, try again",
    "no route to host",
    "host is unreachable",
    "mail forwarding loop",
    "message probably in a routing loop",
    "maximum forwarding loop count exceeded",
    "hop count exceeded",
    "too many hops",
]);

static BLOCKED: Phrases = Phrases::new(&[
    "blocked",
    "blacklist",
    "block list",
    "blocklist",
    "spamhaus",
    "rbl",
    "dnsbl",
    "not allowed to send",
    "access denied",
    "refused",
    "dmarc",
    "spf",
    "dkim",
    "spam",
    "policy",
    "reputation",
    "sender address rejected",
    "sender rejected",
    "not have permission",
    "rejected by",
    "content",
    "virus",
    "prohibited",
    "reject",
    "denied",
    "not authorized",
    "unauthenticated",
    "authentication",
    "too many",
    "rate limit",
    "greylist",
    "try again later",
]);

static EXPIRED: Phrases = Phrases::new(&[
    "delivery time expired",
    "message expired",
    "retry timeout exceeded",
    "retry time not reached",
    "could not be delivered for",
    "too long in queue",
    "queue too long",
    "has been delayed",
    "was not delivered within",
    "giving up",
    "timed out",
    "timeout",
    "expired",
]);

fn any(text: &str, phrases: &Phrases) -> bool {
    phrases.any_in(text)
}

/// The subject-detail pair of an enhanced status code ("5.1.1" → (1, 1)).
fn subject_detail(status: &str) -> Option<(u16, u16)> {
    let mut it = status.split('.').skip(1).map(|n| n.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// The SMTP command a server refused, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Mail,
    Rcpt,
    Data,
}

fn failed_command(text: &str) -> Option<Command> {
    static RCPT: Phrases = Phrases::new(&[
        "rcpt to command",
        "after rcpt to",
        "rcpt command",
        "[rcpt_to]",
        "our rcpt to",
        "does not like recipient",
        "rcpt: <",
        "rcpt to:",
        "rcpt to response",
        "smtp:rcpt",
        "unknown recipient or mailbox unavailable ->",
        // Gmail relaying another server's refusal numbers the step: state 14 is RCPT,
        // 15, 17 and 18 are DATA.
        "(state 14)",
    ]);
    static DATA: Phrases = Phrases::new(&[
        "end of data",
        "smtp command data",
        "data command",
        "after data",
        "final data",
        "end of message",
        "(state 15)",
        "(state 17)",
        "(state 18)",
    ]);
    static MAIL: Phrases = Phrases::new(&["after mail from", "mail from command", "our mail from"]);
    if any(text, &RCPT) {
        Some(Command::Rcpt)
    } else if any(text, &DATA) {
        Some(Command::Data)
    } else if any(text, &MAIL) {
        Some(Command::Mail)
    } else {
        None
    }
}

/// Refusals that are about the sender, its host or the content, whatever the code says.
static NOT_THE_RECIPIENT: Phrases = Phrases::new(&[
    "sender address rejected",
    "domain of sender",
    "sender domain",
    "client host rejected",
    "blocked",
    "blacklist",
    "blocklist",
    "spamhaus",
    "dnsbl",
    "spam",
    "relay",
    "spf",
    "dmarc",
    "my name was rejected",
    "refused due to",
    "sender rejected",
    "too many",
]);

/// Wordings that name the address itself as unknown, whatever code comes with them.
static NO_SUCH_ADDRESS: Phrases = Phrases::new(&[
    "address couldn't be found",
    "address could not be found",
    "recipient name is not recognized",
    "invalid final delivery userid",
    "not listed in domino directory",
    "not listed in public name & address book",
]);

static NOT_ACCEPT: Phrases = Phrases::new(&[
    "no smtp service",
    "null mx",
    "does not accept mail",
    "accepts no mail",
]);

/// The reason for one failed recipient, from its status code and diagnostic text.
/// `context` (the report's words around the recipient) only tells which SMTP command
/// was refused when the diagnostic does not say.
pub(crate) fn reason(status: Option<&str>, diagnostic: &str, context: &str) -> Reason {
    reason_lower(
        status,
        &diagnostic.to_ascii_lowercase(),
        &flatten_lower(context),
    )
}

/// [`reason`] for a diagnostic and context already in lower case, the context's
/// whitespace made single spaces ([`flatten_lower`]).
pub(crate) fn reason_lower(status: Option<&str>, text: &str, context: &str) -> Reason {
    let code = status.and_then(subject_detail);
    let temporary = status.is_some_and(|s| s.starts_with('4'));
    let command = failed_command(text).or_else(|| failed_command(context));
    if any(text, &MAILBOX_FULL) || code == Some((2, 2)) {
        return Reason::MailboxFull;
    }
    if any(text, &MESG_TOO_BIG) || matches!(code, Some((2, 3) | (3, 4))) {
        return Reason::MesgTooBig;
    }
    if any(text, &SUSPEND) {
        return Reason::Suspend;
    }
    if any(text, &HAS_MOVED) || code == Some((1, 6)) {
        return Reason::HasMoved;
    }
    if any(text, &NO_RELAYING) {
        return Reason::NoRelaying;
    }
    if command == Some(Command::Mail) || matches!(code, Some((1, 7) | (1, 8))) {
        return Reason::Rejected;
    }
    let about_recipient = !any(text, &NOT_THE_RECIPIENT);
    if any(text, &NETWORK_ERROR) {
        return Reason::NetworkError;
    }
    match code {
        Some((1, 0 | 1 | 3)) if about_recipient => return Reason::UserUnknown,
        Some((1, 2)) if !temporary => return Reason::HostUnknown,
        Some((1, 10)) => return Reason::NotAccept,
        Some((4, 4)) if !temporary => return Reason::HostUnknown,
        _ => {}
    }
    if any(text, &HOST_UNKNOWN) && about_recipient {
        return if temporary {
            Reason::NetworkError
        } else {
            Reason::HostUnknown
        };
    }
    if any(text, &NO_SUCH_ADDRESS) {
        return Reason::UserUnknown;
    }
    if any(text, &USER_UNKNOWN) && about_recipient {
        // "User unknown" said to the message rather than to RCPT TO, or with no address
        // ("550 : User unknown", how some mobile carriers refuse filtered mail), is a
        // content filter speaking, not a missing mailbox.
        // So is one whose code is about the mailbox's state or security (X.2.*, X.7.*).
        let filtered = command != Some(Command::Rcpt) || text.contains(" : user unknown");
        return if filtered {
            Reason::Filtered
        } else {
            Reason::UserUnknown
        };
    }
    if code == Some((2, 1)) {
        return Reason::Suspend;
    }
    if any(text, &NOT_ACCEPT) {
        return Reason::NotAccept;
    }
    if any(text, &BLOCKED) {
        return Reason::Blocked;
    }
    if temporary || any(text, &EXPIRED) {
        return Reason::Expired;
    }
    Reason::Other
}

/// Hard or soft, for a failure with this reason and status (or SMTP reply code).
pub(crate) fn class_of(reason: Reason, status: Option<&str>) -> BounceClass {
    match reason {
        Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved => BounceClass::Hard,
        Reason::NotAccept if !status.is_some_and(|s| s.starts_with('4')) => BounceClass::Hard,
        _ => BounceClass::Soft,
    }
}

/// The RFC 3463 enhanced status code of `text` (`5.1.1`): the first one that follows an
/// SMTP reply code (`550 5.7.1`, `550-'5.7.1`), which is the remote server's own, or
/// else the first one.
pub(crate) fn find_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut first = None;
    for i in 0..bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        if !boundary || !matches!(bytes[i], b'2' | b'4' | b'5') {
            continue;
        }
        let Some(len) = status_len(&bytes[i..]) else {
            continue;
        };
        if follows_reply_code(bytes, i) {
            return Some(text[i..i + len].to_string());
        }
        first.get_or_insert(i..i + len);
    }
    first.map(|range| text[range].to_string())
}

/// Whether a three-digit reply code ends just before `at` (a space, dash, quote or `#`
/// between them).
fn follows_reply_code(bytes: &[u8], at: usize) -> bool {
    let mut end = at;
    while end > 0 && at - end < 3 && matches!(bytes[end - 1], b' ' | b'-' | b'\'' | b'#') {
        end -= 1;
    }
    end != at
        && end >= 3
        && bytes[end - 3..end].iter().all(u8::is_ascii_digit)
        && matches!(bytes[end - 3], b'2' | b'4' | b'5')
        && (end == 3 || !bytes[end - 4].is_ascii_alphanumeric())
}

fn status_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(1) != Some(&b'.') {
        return None;
    }
    let digits = |from: usize, max: usize| {
        let n = bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (1..=max).contains(&n).then_some(n)
    };
    let a = digits(2, 3)?;
    if bytes.get(2 + a) != Some(&b'.') {
        return None;
    }
    let b = digits(3 + a, 3)?;
    let end = 3 + a + b;
    let after = bytes.get(end).copied().unwrap_or(b' ');
    if after.is_ascii_alphanumeric()
        || (after == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return None;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_as_whole_tokens() {
        assert_eq!(
            find_status("550 5.1.1 <a@b.c> no").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            find_status("host 192.0.2.1 said 4.2.2"),
            Some("4.2.2".into())
        );
        assert_eq!(find_status("version 5.1.12.3"), None);
        assert_eq!(
            find_status("5.1.0 - Unknown address error 550-'5.7.1 <x@y.z>... Access denied"),
            Some("5.7.1".into())
        );
    }

    #[test]
    fn a_full_mailbox_is_soft_even_as_5_1_1() {
        let r = reason(Some("5.1.1"), "550 5.1.1 mailbox full", "");
        assert_eq!(class_of(r, Some("5.1.1")), BounceClass::Soft);
        let r = reason(
            Some("5.0.0"),
            "550 no such user here",
            "(in reply to RCPT TO command)",
        );
        assert_eq!(class_of(r, Some("5.0.0")), BounceClass::Hard);
        let r = reason(Some("5.7.1"), "550 5.7.1 message rejected as spam", "");
        assert_eq!(class_of(r, Some("5.7.1")), BounceClass::Soft);
    }
}
