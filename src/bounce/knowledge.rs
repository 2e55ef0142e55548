//! What particular mail systems mean by their words. The same sentence can mean a missing
//! mailbox from one server and a content filter from another ("User unknown" after the
//! message was sent, a rule set's canned refusal), so some wordings are only read with
//! the system that wrote them: the one that wrote the report (known by its headers), the
//! remote host that refused the message, or the local delivery program named in the text.

use super::mime::Parts;
use super::reason::Reason;

/// Mail systems whose reports carry wordings with a reason of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporter {
    /// Amazon SES receiving rule sets: their refusals are templates the domain chose.
    AmazonSesInbound,
    Aol,
    /// Google Groups refusing a post: the group may exist, the sender may not post.
    GoogleGroups,
    Hotmail,
    IMail,
    LotusNotes,
    McAfee,
    MessageLabs,
    Verizon,
}

impl Reporter {
    /// The system that wrote the report, from the report's own headers.
    pub fn of(parts: &Parts) -> Option<Reporter> {
        let header = |name: &str| parts.header(name).unwrap_or("");
        let from = header("from").to_ascii_lowercase();
        let subject = header("subject");
        if parts.header("x-ses-outgoing").is_some() {
            return Some(Reporter::AmazonSesInbound);
        }
        if parts.header("x-aol-ip").is_some() {
            return Some(Reporter::Aol);
        }
        if from.contains("mailer-daemon@googlemail.com")
            && parts.header("x-failed-recipients").is_some()
            && parts.header("x-google-smtp-source").is_some()
        {
            return Some(Reporter::GoogleGroups);
        }
        if header("x-mailer").starts_with("<SMTP32 v") || subject.trim() == "Undeliverable Mail" {
            return Some(Reporter::IMail);
        }
        if header("x-nai-header").contains("Modified by McAfee") {
            return Some(Reporter::McAfee);
        }
        if parts.header("x-msg-ref").is_some() && from.contains("mailer-daemon@messagelabs.com") {
            return Some(Reporter::MessageLabs);
        }
        if from.contains("@vtext.com") || from.contains(".vzwpix.com") {
            return Some(Reporter::Verizon);
        }
        if subject.starts_with("Undeliverable message") {
            return Some(Reporter::LotusNotes);
        }
        if is_hotmail(parts, subject, &from) {
            return Some(Reporter::Hotmail);
        }
        None
    }

    /// Wordings (lower case) with the reason this system means by them.
    fn wordings(self) -> &'static [(&'static str, Reason)] {
        match self {
            Reporter::AmazonSesInbound => &[
                ("mailbox does not exist", Reason::Filtered),
                ("mailbox full", Reason::MailboxFull),
                ("message too large", Reason::MesgTooBig),
                ("message content rejected", Reason::Blocked),
            ],
            Reporter::Aol => &[
                ("host or domain name not found", Reason::HostUnknown),
                (
                    "type=mx: malformed or unexpected name server reply",
                    Reason::NotAccept,
                ),
            ],
            Reporter::GoogleGroups => &[
                ("group you tried to contact", Reason::Rejected),
                ("you may not have permission", Reason::Rejected),
            ],
            Reporter::Hotmail => &[(
                "requested action not taken: mailbox unavailable",
                Reason::UserUnknown,
            )],
            Reporter::IMail => &[
                ("unknown user", Reason::UserUnknown),
                ("invalid final delivery userid", Reason::UserUnknown),
                ("user mailbox exceeds allowed size", Reason::MailboxFull),
                ("virus detected", Reason::Blocked),
            ],
            Reporter::LotusNotes => &[
                (
                    "not listed in public name & address book",
                    Reason::UserUnknown,
                ),
                ("ディレクトリのリストにありません", Reason::UserUnknown),
                // The same, ISO-2022-JP encoded (lower-cased), as it reads undecoded.
                ("%g%#%l%/%h%j$n%j%9%h$k$\"$j$^$;$s", Reason::UserUnknown),
            ],
            Reporter::McAfee => &[
                ("550 unknown user", Reason::UserUnknown),
                ("user not exist", Reason::UserUnknown),
                (") unknown.", Reason::UserUnknown),
                ("no such user", Reason::UserUnknown),
            ],
            Reporter::MessageLabs => &[
                ("no such user", Reason::UserUnknown),
                ("please turn on smtp authentication", Reason::Blocked),
            ],
            Reporter::Verizon => &[
                ("no valid recipients for this mm", Reason::UserUnknown),
                ("no such user here", Reason::UserUnknown),
            ],
        }
    }
}

/// Hotmail/Outlook.com reports carry two of these signs.
fn is_hotmail(parts: &Parts, subject: &str, from: &str) -> bool {
    let relayed_by_hotmail = parts
        .headers
        .iter()
        .any(|(name, value)| name == "received" && value.contains(".hotmail.com"));
    let signs = [
        subject.contains("Delivery Status Notification"),
        parts.header("x-message-delivery").is_some(),
        parts.header("x-message-info").is_some(),
        relayed_by_hotmail,
        from.contains("@hotmail.com"),
    ];
    signs.iter().filter(|&&sign| sign).count() >= 2
}

/// The reason the systems that took part give the words of one failure, if they give
/// one: `texts` are the diagnostic and its context, `report` the whole report, all in
/// lower case.
pub(crate) fn known_reason(
    reporter: Option<Reporter>,
    remote_host: Option<&str>,
    texts: &[&str],
    report: &str,
) -> Option<Reason> {
    let in_texts = |find: &dyn Fn(&str) -> Option<Reason>| texts.iter().find_map(|t| find(t));
    remote_host
        .and_then(|host| in_texts(&|text| by_remote_host(host, text)))
        .or_else(|| in_texts(&exchange_code))
        .or_else(|| local_delivery_agent(report))
        .or_else(|| {
            let wordings = reporter?.wordings();
            in_texts(&|text| {
                wordings
                    .iter()
                    .find(|(wording, _)| text.contains(wording))
                    .map(|&(_, why)| why)
            })
        })
}

/// Remote hosts whose replies say more than their words: KDDI (au) answers filtered mail
/// with a "User unknown" that names no address, and Orange/La Poste put the reason in a
/// numbered code (`LPN007_416`).
fn by_remote_host(host: &str, text: &str) -> Option<Reason> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ends = |suffix: &str| host == suffix || host.ends_with(&format!(".{suffix}"));
    if ends("ezweb.ne.jp") || ends("au.com") {
        if text.contains("550 : user unknown") {
            return Some(Reason::Filtered);
        }
        if text.contains(">: user unknown") {
            return Some(Reason::UserUnknown);
        }
        return None;
    }
    if ["orange.fr", "wanadoo.fr", "laposte.net"]
        .iter()
        .any(|d| ends(d))
    {
        return orange_code(text).and_then(orange_reason);
    }
    None
}

/// The three-digit reason of an Orange/La Poste code (`LPN007_416`, `OFR_999`, `OUK_102`).
fn orange_code(text: &str) -> Option<u16> {
    ["lpnaaa", "lpn", "ofr", "ouk"].iter().find_map(|prefix| {
        text.match_indices(prefix).find_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '_' || *c == '-')
                .collect();
            let digits: String = token.chars().filter(char::is_ascii_digit).collect();
            (digits.len() >= 3 && token.len() >= 4)
                .then(|| digits[digits.len() - 3..].parse().ok())
                .flatten()
        })
    })
}

fn orange_reason(code: u16) -> Option<Reason> {
    Some(match code {
        416 | 418 => Reason::UserUnknown,
        417 => Reason::MailboxFull,
        420 | 426 => Reason::Suspend,
        514 => Reason::MesgTooBig,
        101..=104 | 305 | 401..=405 | 415 | 421 | 505..=517 | 630 | 999 => Reason::Blocked,
        _ => return None,
    })
}

/// Exchange 2000/2003 reports name the failure by a hexadecimal code after `MSEXCH:`.
fn exchange_code(text: &str) -> Option<Reason> {
    if !text.contains("msexch:") {
        return None;
    }
    if text.contains("(000c05a6)") {
        Some(Reason::UserUnknown)
    } else if text.contains("(000c0595)") {
        Some(Reason::Filtered)
    } else {
        None
    }
}

/// A local delivery program that failed names itself at the start of the line the
/// report quotes: `mail.local: unknown user: x`.
fn local_delivery_agent(report: &str) -> Option<Reason> {
    const AGENTS: &[(&str, &[(&str, Reason)])] = &[
        (
            "mail.local: ",
            &[
                (": unknown user:", Reason::UserUnknown),
                (": user unknown", Reason::UserUnknown),
                (": invalid mailbox path", Reason::UserUnknown),
                (": user missing home directory", Reason::UserUnknown),
                ("disc quota exceeded", Reason::MailboxFull),
                ("mailbox full or quota exceeded", Reason::MailboxFull),
            ],
        ),
        (
            "maildrop: ",
            &[
                ("invalid user specified.", Reason::UserUnknown),
                ("cannot find system user", Reason::UserUnknown),
                ("maildir over quota", Reason::MailboxFull),
            ],
        ),
        (
            "procmail: ",
            &[("quota exceeded while writing", Reason::MailboxFull)],
        ),
    ];
    let starts_a_line =
        |name: &str| report.starts_with(name) || report.contains(&format!("\n{name}"));
    AGENTS
        .iter()
        .filter(|(name, _)| starts_a_line(name))
        .flat_map(|(_, wordings)| wordings.iter())
        .find(|(wording, _)| report.contains(wording))
        .map(|&(_, why)| why)
}

/// The remote host a report names for a failed delivery: `host mx.example.org[192.0.2.1]`
/// (Postfix, Exim), `while talking to mx.example.org.:` (Sendmail).
pub(crate) fn remote_host_in(text: &str) -> Option<&str> {
    let lower_has = |at: usize, needle: &str| {
        text.get(at..at + needle.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(needle))
    };
    for (at, _) in text.match_indices(['h', 'H', 'w', 'W']) {
        let start = if lower_has(at, "host ") {
            at + 5
        } else if lower_has(at, "while talking to ") {
            at + 17
        } else {
            continue;
        };
        let name: &str = &text[start..];
        let len = name
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            .count();
        let host = name[..len].trim_end_matches('.');
        if host.contains('.') && host.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Some(host);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orange_codes_are_read_whatever_their_prefix() {
        assert_eq!(orange_code("invalid recipient. lpn007_416"), Some(416));
        assert_eq!(orange_code("service refused (ofr_999)"), Some(999));
        assert_eq!(orange_code("lpn is busy"), None);
        assert_eq!(
            by_remote_host(
                "smtp-in.orange.fr",
                "550 5.5.0 invalid recipient. lpn007_416"
            ),
            Some(Reason::UserUnknown)
        );
    }

    #[test]
    fn kddi_tells_filtered_from_unknown_by_the_address() {
        assert_eq!(
            by_remote_host("lsean.ezweb.ne.jp", "550 : user unknown"),
            Some(Reason::Filtered)
        );
        assert_eq!(
            by_remote_host("msmx.au.com", "550 <a@ezweb.ne.jp>: user unknown"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(by_remote_host("mx.example.com", "550 : user unknown"), None);
    }

    #[test]
    fn remote_hosts_are_found_in_report_text() {
        assert_eq!(
            remote_host_in("<a@b.jp>: host mx.b.jp[192.0.2.1] said: 550 no"),
            Some("mx.b.jp")
        );
        assert_eq!(
            remote_host_in("... while talking to smtpz4.laposte.net.:\n>>> DATA"),
            Some("smtpz4.laposte.net")
        );
        assert_eq!(remote_host_in("the host is down"), None);
    }

    #[test]
    fn local_delivery_programs_name_their_reason() {
        assert_eq!(
            local_delivery_agent("transcript:\nmail.local: unknown user: kijitora\n"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            local_delivery_agent("550 5.0.0 mail.local: unknown user: kijitora"),
            None
        );
    }
}
