//! RFC 3834 automatic replies (vacation, out of office): recognised so they are ignored.

use super::mime::Parts;
use super::{BounceClass, Finding, address};

const SUBJECT_PREFIXES: &[&str] = &[
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "automatic reply",
    "automatische antwort",
    "réponse automatique",
    "out of office",
    "out of the office",
    "vacation",
    "away from",
    "abwesenheit",
    "respuesta automática",
];

/// An auto-reply finding (the recipient is who replied) or `None`.
pub(crate) fn read(parts: &Parts) -> Option<Vec<Finding>> {
    if !is_auto_reply(parts) {
        return None;
    }
    let recipient = parts
        .header("from")
        .and_then(address::first)
        .map(str::to_string);
    Some(vec![Finding {
        class: BounceClass::AutoReply,
        recipient,
        status: None,
        diagnostic: parts.header("subject").map(str::to_string),
    }])
}

fn is_auto_reply(parts: &Parts) -> bool {
    let header = |name: &str| parts.header(name).map(str::to_ascii_lowercase);
    if header("auto-submitted").is_some_and(|v| v.starts_with("auto-replied")) {
        return true;
    }
    if [
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-vacation",
    ]
    .iter()
    .any(|name| parts.header(name).is_some())
    {
        return true;
    }
    if header("precedence").is_some_and(|v| v.contains("auto_reply")) {
        return true;
    }
    header("subject").is_some_and(|s| SUBJECT_PREFIXES.iter().any(|p| s.starts_with(p)))
}
