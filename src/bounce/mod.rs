//! Bounce classification: what a message that came back says about a delivery.
//!
//! [`classify`] reads one raw message (any line-ending convention, any bytes) and returns
//! one [`Bounce`] per failed recipient: an RFC 5965 feedback report is a complaint, an
//! RFC 3464 delivery status notification is read field by field, the text of the common
//! non-standard servers (Exim, qmail, Exchange, Gmail, …) by the rules in `legacy`, and
//! an RFC 3834 automatic reply is recognised as such. An event a provider's webhook
//! reported is stored as a JSON document (`webhook_event`) and read the same way.
//! Nothing here panics on bad input.

mod address;
mod arf;
mod autoreply;
mod dsn;
mod evaluate;
mod intake;
mod knowledge;
mod legacy;
mod mailbox;
mod mime;
mod phrases;
mod reason;
mod receiver;
mod return_path;
mod ses;
mod webhook_event;

pub use evaluate::{Disagreement, Evaluation, LineEnding, evaluate_dir};
pub use intake::{BounceSettings, PauseThresholds, process, process_unprocessed, store};
pub use mailbox::{
    Mailbox, MailboxError, MailboxLimits, MailboxUrl, MailboxUrlError, PollReport, Protocol,
    poll_forever, poll_once,
};
pub use mime::OriginalMessage;
pub use receiver::{ReceiverError, ReceiverLimits, bind_receiver, serve_receiver};
pub use return_path::{
    DEFAULT_PREFIX, DeliveryKey, MAX_PREFIX_LEN, ReturnPath, ReturnPathError,
    delivery_of_message_id,
};
pub use webhook_event::{EventError, WebhookEvent, WebhookProvider};

/// What a message says about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BounceClass {
    /// The address does not exist (user or domain unknown, moved): suppress it.
    Hard,
    /// The delivery failed for now or for this message (full, blocked, expired): count it.
    Soft,
    /// The recipient reported the message as spam (ARF feedback report).
    Complaint,
    /// An automatic reply (vacation, out of office): not a failure.
    AutoReply,
    /// A success notification.
    Delivered,
    /// Not a bounce, or one nothing could be read from.
    NotABounce,
}

impl BounceClass {
    pub const ALL: [BounceClass; 6] = [
        BounceClass::Hard,
        BounceClass::Soft,
        BounceClass::Complaint,
        BounceClass::AutoReply,
        BounceClass::Delivered,
        BounceClass::NotABounce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::Hard => "hard",
            BounceClass::Soft => "soft",
            BounceClass::Complaint => "complaint",
            BounceClass::AutoReply => "autoreply",
            BounceClass::Delivered => "delivered",
            BounceClass::NotABounce => "none",
        }
    }

    pub fn parse(text: &str) -> Option<BounceClass> {
        BounceClass::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for BounceClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's outcome, as a bounce reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub class: BounceClass,
    /// The address that failed (or complained, or replied).
    pub recipient: Option<String>,
    /// The RFC 3463 enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's words, as quoted.
    pub diagnostic: Option<String>,
    /// Message-ID of the returned message, when the bounce quotes it.
    pub message_id: Option<String>,
    /// Where the bounce was sent: the returned message's envelope sender, which carries
    /// a per-delivery token when VERP is on.
    pub return_path: Option<String>,
}

/// Everything read from one message: the bounces and the returned message's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub bounces: Vec<Bounce>,
    pub original: OriginalMessage,
    pub return_path: Option<String>,
    /// The provider whose webhook reported it; None for a message received by mail.
    pub webhook: Option<WebhookProvider>,
}

/// A bounce before the message-wide fields are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub class: BounceClass,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl Finding {
    fn nothing() -> Finding {
        Finding {
            class: BounceClass::NotABounce,
            recipient: None,
            status: None,
            diagnostic: None,
        }
    }
}

/// One [`Bounce`] per recipient the message reports on; at least one.
pub fn classify(raw: &[u8]) -> Vec<Bounce> {
    parse(raw).bounces
}

/// The bounces of one message and the headers of the message it returns.
pub fn parse(raw: &[u8]) -> Report {
    webhook_event::read(raw).unwrap_or_else(|| parse_nested(raw, 0))
}

fn parse_nested(raw: &[u8], depth: u8) -> Report {
    let normalised = mime::normalise_line_endings(raw);
    let Some(mut parts) = mime::split(&normalised) else {
        return report(vec![Finding::nothing()], OriginalMessage::default(), None);
    };
    parts.lower = parts.text.to_ascii_lowercase();
    parts.copy_at = legacy::copy_start(&parts.lower);
    if !parts.original_found
        && let Some(at) = parts.copy_at
    {
        parts.original = mime::original_from_header_text(&parts.text[at..]);
    }
    let findings = arf::read(&parts)
        .or_else(|| dsn::read(&parts))
        .or_else(|| ses::read(&parts))
        .or_else(|| legacy::read(&parts))
        .or_else(|| autoreply::read(&parts))
        .filter(|found| !found.is_empty())
        .unwrap_or_else(|| vec![Finding::nothing()]);
    let return_path = return_path(&parts);
    let names_nobody = findings.iter().all(|f| f.recipient.is_none());
    if names_nobody
        && depth == 0
        && let Some(attached) = &parts.attached_report
    {
        let inner = parse_nested(attached, depth + 1);
        if inner.bounces.iter().any(|b| b.recipient.is_some()) {
            return inner;
        }
    }
    report(findings, parts.original, return_path)
}

fn report(
    findings: Vec<Finding>,
    original: OriginalMessage,
    return_path: Option<String>,
) -> Report {
    let bounces = findings
        .into_iter()
        .map(|f| Bounce {
            class: f.class,
            recipient: f.recipient,
            status: f.status,
            diagnostic: f.diagnostic,
            message_id: original.message_id.clone(),
            return_path: return_path.clone(),
        })
        .collect();
    Report {
        bounces,
        original,
        return_path,
        webhook: None,
    }
}

/// The bounce's envelope recipient, which is the returned message's envelope sender.
fn return_path(parts: &mime::Parts) -> Option<String> {
    ["x-original-to", "delivered-to", "envelope-to", "to"]
        .iter()
        .filter_map(|name| parts.header(name))
        .find_map(address::first)
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
