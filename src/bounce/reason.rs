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
    // Sisimai 4.25's MailboxFull list (BSD-2-Clause), where the above lacks it.
    "account disabled temporarly for exceeding receiving limits",
    "account is exceeding their quota",
    "account is over quota",
    "account is temporarily over quota",
    "boite du destinataire pleine",
    "delivery failed: over quota",
    "disc quota exceeded",
    "does not have enough space",
    "exceeded storage allocation",
    "exceeding its mailbox quota",
    "full mailbox",
    "is over disk quota",
    "is over quota temporarily",
    "mail file size exceeds the maximum size allowed for mail delivery",
    "mail quota exceeded",
    "mailbox exceeded the local limit",
    "mailbox has exceeded its disk space limit",
    "mailbox over quota",
    "mailbox quota usage exceeded",
    "mailbox size limit exceeded",
    "maildir over quota",
    "maildir delivery failed: userdisk quota ",
    "maildir delivery failed: domaindisk quota ",
    "not enough storage space in",
    "over the allowed quota",
    "quota violation for",
    "recipient reached disk quota",
    "recipient rejected: mailbox would exceed maximum allowed storage",
    "the recipient mailbox has exceeded its disk space limit",
    "the user's space has been used up",
    "the user you are trying to reach is over quota",
    "too much mail data",
    "user has exceeded quota, bouncing mail",
    "user has too many messages on the server",
    "user is over quota",
    "user is over the quota",
    "user over quota",
    "was automatically rejected: quota exceeded",
    "would be over the allowed quota",
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
    // Sisimai 4.25's MesgTooBig and ExceedLimit lists (BSD-2-Clause), where the above lacks them.
    "exceeded maximum inbound message size",
    "line limit exceeded",
    "max message size exceeded",
    "message length exceeds administrative limit",
    "message size exceeds fixed limit",
    "message size exceeds fixed maximum message size",
    "message size exceeds maximum value",
    "message too large for this ",
    "size limit",
    "taille limite du message atteinte",
    "message header size exceeds limit",
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
    // Sisimai 4.25's Suspend list (BSD-2-Clause), where the above lacks it.
    " is currently suspended",
    " temporary locked",
    "boite du destinataire archivee",
    "email account that you tried to reach is disabled",
    "invalid/inactive user",
    "is a deactivated mailbox",
    "mailbox currently suspended",
    "mailbox is frozen",
    "mailbox unavailable or access denied",
    "recipient rejected: temporarily inactive",
    "recipient suspend the service",
    "this account has been disabled or discontinued",
    "this mailbox is disabled",
    "user suspended",
    "vdelivermail: account is locked email bounced",
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
    // Sisimai 4.25's NoRelaying list (BSD-2-Clause), where the above lacks it.
    "as a relay",
    "insecure mail relay",
    "is not permitted to relay through this server without authentication",
    "mail server requires authentication when attempting to send to a non-local e-mail address",
    "not allowed to relay through this machine",
    "not an open relay, so get lost",
    "not local host",
    "relaying mail to ",
    "that domain isn't in my list of allowed rcpthost",
    "this system is not configured to relay mail",
    "unable to relay for",
    "we don't handle mail for",
]);

/// A missing mailbox in the words of Sisimai 4.25's UserUnknown patterns (BSD-2-Clause;
/// `*` is one word). Said in reply to `RCPT TO`, the reference reads them as a missing
/// mailbox whatever else the text says.
static USER_UNKNOWN: Phrases = Phrases::new(&[
    "#5.1.1 bad address",
    "<*> not found",
    "<*@*>... blocked by ",
    "550 address invalid",
    "5.1.0 address rejected.",
    "account * does not exist at the organization",
    "address does not exist",
    "address not present in directory",
    "address unknown",
    "archived recipient",
    "bad-recipient",
    "bad_recipient",
    "bad recipient",
    "can't accept user",
    "does not exist.",
    "destination addresses were unknown",
    "destination server rejected recipients",
    "email address does not exist",
    "email address could not be found",
    "invalid address",
    "invalid mailbox",
    "invalid recipient",
    "is not a known user",
    "is not a valid mailbox",
    "is not an active address at this host",
    "mailbox * does not exist",
    "mailbox *@* unavailable",
    "mailbox does not exist",
    "mailbox invalid",
    "mailbox is inactive",
    "mailbox is unavailable",
    "mailbox not present",
    "mailbox not found",
    "mailbox unavailable",
    "nessun utente simile in questo indirizzo",
    "no account by that name here",
    "no existe dicha persona",
    "no existe ese usuario ",
    "no mail box available for this user",
    "no mailbox by that name is currently available",
    "no mailbox found",
    "no matches to nameserver query",
    "no such address here",
    "no such mailbox",
    "no such person at this address",
    "no such recipient",
    "no such user",
    "no thank you rejected: account unavailable:",
    "no valid recipients, bye",
    "non-existent user",
    "nonexistent user",
    "non existent user",
    "not a valid recipient",
    "not a valid user here",
    "not a local address",
    "not email addresses",
    "rcpt <*> does not exist",
    "recipient address rejected. (in reply to rcpt to command)",
    "recipient * was not found in",
    "recipient address rejected: access denied",
    "recipient address rejected: invalid user",
    "recipient address rejected: invalid-recipient",
    "recipient address rejected: user * does not exist",
    "recipient address rejected: user unknown in * table",
    "recipient address rejected: unknown user",
    "recipient does not exist",
    "recipient is not local",
    "recipient not exist",
    "recipient not found",
    "recipient not ok",
    "recipient refuses to accept your mail",
    "recipient unknown",
    "requested action not taken: mailbox unavailable",
    "resolver.adr.recipient notfound",
    "sorry, user unknown",
    "sorry, badrcptto",
    "sorry, no mailbox here by that name",
    "sorry, your envelope recipient has been denied",
    "that domain or user isn't in my list of allowed rcpthosts",
    "the email account that you tried to reach does not exist",
    "the following recipients was undeliverable",
    "the user's email name is not found",
    "there is no one at this address",
    "this address no longer accepts mail",
    "this email address is wrong or no longer valid",
    "this recipient is in my badrecipientto list",
    "this recipient is not in my validrcptto list",
    "this spectator does not exist",
    "this user doesn't have a * account",
    "this user doesnt have a * account",
    "unknown e-mail address",
    "unknown email address",
    "unknown local-part",
    "unknown local part",
    "unknown mailbox",
    "unknown recipient",
    "unknown user",
    "user * was not found",
    "user * does not exist",
    "user does not exist",
    "user missing home directory",
    "user not active",
    "user not exist",
    "user not found",
    "user not known",
    "user unknown",
    "utilisateur inconnu !",
    "vdeliver: invalid or unknown virtual user",
    "your envelope recipient is in my badrcptto list",
]);

/// Other wordings of a missing mailbox, read as one only when the text is about the
/// recipient.
static OTHER_USER_UNKNOWN: Phrases = Phrases::new(&[
    "user is unknown",
    "unknown address",
    "unknown or illegal alias",
    "no such address",
    "no such local user",
    "no such account",
    "no such person",
    "address not found",
    "account not found",
    "not found in directory",
    "user doesn't exist",
    "mailbox doesn't exist",
    "account does not exist",
    "account that you tried to reach does not exist",
    "does not exist here",
    "does not have an account",
    "doesn't have a",
    "no mailbox here by that name",
    "no mailbox",
    "no mail box",
    "invalid user",
    "not a valid mailbox",
    "not a valid user",
    "bad destination mailbox",
    "recipient address rejected: user unknown",
    "recipient address rejected: undeliverable address",
    "undeliverable address",
    "not our customer",
    "no account by that name",
    "not listed in",
    "recipient rejected",
    "couldn't be found",
    "invalid final delivery userid",
    "recipientnotfound",
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

/// A domain that does not exist, in the words of Sisimai 4.25's HostUnknown list
/// (BSD-2-Clause): the reference reads them so whatever the code, a temporary one included.
static HOST_UNKNOWN: Phrases = Phrases::new(&[
    "domain does not exist",
    "domain is not reachable",
    "domain must exist",
    "host or domain name not found",
    "host unknown",
    "host unreachable",
    "mail domain mentioned in email address is unknown",
    "name or service not known",
    "no such domain",
    "recipient address rejected: unknown domain name",
    "recipient domain must exist",
    "the account or domain may not exist",
    "unknown host",
    "unroutable address",
    "unrouteable address",
    "553 * does not exist",
]);

/// Other wordings of a missing domain: hard only with a permanent code and when the text
/// is about the recipient.
static OTHER_HOST_UNKNOWN: Phrases = Phrases::new(&[
    "host not found",
    "domain not found",
    "domain doesn't exist",
    "domain name not found",
    "unrouteable mail domain",
    "unrouteable domain",
    "couldn't find any host",
    "no mx record",
    "illegal host/domain",
    "unknown domain",
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
    // 4.2.1 and X.7.13 are a disabled account for the reference; 5.2.1 is not.
    let suspend_code = code == Some((7, 13)) || (temporary && code == Some((2, 1)));
    if any(text, &SUSPEND) || suspend_code {
        return Reason::Suspend;
    }
    if any(text, &HAS_MOVED) || code == Some((1, 6)) {
        return Reason::HasMoved;
    }
    if any(text, &NO_RELAYING) {
        return Reason::NoRelaying;
    }
    if refused_recipient_unknown(status, command, text) {
        return Reason::UserUnknown;
    }
    let about_recipient = !any(text, &NOT_THE_RECIPIENT);
    // The reference reads a user-unknown code before the step refused or trouble on the
    // way: only a refusal of the sender or a block outranks it.
    if user_unknown_code(status) && about_recipient {
        return Reason::UserUnknown;
    }
    if command == Some(Command::Mail) || matches!(code, Some((1, 7) | (1, 8))) {
        return Reason::Rejected;
    }
    if let Some(why) = missing_domain(status, text) {
        return why;
    }
    if any(text, &NETWORK_ERROR) {
        return Reason::NetworkError;
    }
    match code {
        Some((1, 10)) => return Reason::NotAccept,
        // RFC 3463's "mailbox owner has changed" and "domain owner has changed".
        Some((7, 17 | 18)) => return Reason::HasMoved,
        _ => {}
    }
    if any(text, &OTHER_HOST_UNKNOWN) && about_recipient {
        return if temporary {
            Reason::NetworkError
        } else {
            Reason::HostUnknown
        };
    }
    if any(text, &NO_SUCH_ADDRESS) {
        return Reason::UserUnknown;
    }
    if (any(text, &USER_UNKNOWN) || any(text, &OTHER_USER_UNKNOWN)) && about_recipient {
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

/// Whether the reply to `RCPT TO` says in the reference's words that the mailbox does not
/// exist. Sisimai tries this before a refused sender, a block or a host failure, unless
/// the code is a user-unknown one (X.1.0, X.1.1, X.1.3), which is read with what else the
/// text says. "550 : User unknown" names no address (a content filter, see below).
fn refused_recipient_unknown(status: Option<&str>, command: Option<Command>, text: &str) -> bool {
    command == Some(Command::Rcpt)
        && !user_unknown_code(status)
        && !text.contains(" : user unknown")
        && any(text, &USER_UNKNOWN)
}

/// A missing domain as the reference reads it: a permanent host-unknown code (X.1.2,
/// X.4.4) unless the text tells of trouble on the way (a DNS failure, a loop), else
/// the reference's wordings of one, whatever the code.
fn missing_domain(status: Option<&str>, text: &str) -> Option<Reason> {
    let permanent = status.is_some_and(|s| s.starts_with('5'));
    let code = status.and_then(subject_detail);
    if permanent && matches!(code, Some((1, 2) | (4, 4))) {
        let on_the_way = any(text, &NETWORK_ERROR);
        return Some(if on_the_way {
            Reason::NetworkError
        } else {
            Reason::HostUnknown
        });
    }
    any(text, &HOST_UNKNOWN).then_some(Reason::HostUnknown)
}

/// Whether the code says the mailbox does not exist: X.1.0, X.1.1 or X.1.3, permanent
/// (the reference's code table has no such temporary codes).
fn user_unknown_code(status: Option<&str>) -> bool {
    let permanent = status.is_some_and(|s| s.starts_with('5'));
    permanent && matches!(status.and_then(subject_detail), Some((1, 0 | 1 | 3)))
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

    #[test]
    fn the_reference_s_lists_are_read_before_a_user_unknown_code() {
        let at_rcpt = "(in reply to rcpt to command)";
        let full = reason(
            Some("5.1.1"),
            "552 the user's space has been used up",
            at_rcpt,
        );
        assert_eq!(full, Reason::MailboxFull);
        let relay = reason(Some("5.1.1"), "550 we don't handle mail for b.c", at_rcpt);
        assert_eq!(relay, Reason::NoRelaying);
        let no_domain = reason(
            Some("5.0.0"),
            "550 mail domain mentioned in email address is unknown",
            at_rcpt,
        );
        assert_eq!(no_domain, Reason::HostUnknown);
    }

    #[test]
    fn a_disabled_account_code_is_not_a_missing_mailbox() {
        let at_rcpt = "(in reply to rcpt to command)";
        for status in ["5.7.13", "4.2.1"] {
            let r = reason(Some(status), "550 no such user", at_rcpt);
            assert_eq!(class_of(r, Some(status)), BounceClass::Soft, "{status}");
        }
        // 5.2.1 is not one for the reference: the words decide.
        let r = reason(Some("5.2.1"), "550 no such user", at_rcpt);
        assert_eq!(class_of(r, Some("5.2.1")), BounceClass::Hard);
    }

    #[test]
    fn codes_are_read_as_the_reference_s_code_table_has_them() {
        // No temporary 4.1.1 in the table: the words decide.
        let r = reason(Some("4.1.1"), "450 4.1.1 try again later", "");
        assert_eq!(class_of(r, Some("4.1.1")), BounceClass::Soft);
        let r = reason(Some("5.7.17"), "550 5.7.17 mailbox owner has changed", "");
        assert_eq!(class_of(r, Some("5.7.17")), BounceClass::Hard);
    }
}
