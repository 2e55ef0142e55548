//! What can go wrong reading the bounce mailbox. Every message names the server as
//! `scheme://user@host:port`, never with the password.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Url(#[from] super::MailboxUrlError),
    #[error("{0}")]
    Settings(String),
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("TLS with {server} failed: {source}")]
    Tls {
        server: String,
        source: std::io::Error,
    },
    #[error("connection to {server} failed: {source}")]
    Io {
        server: String,
        source: std::io::Error,
    },
    #[error("{server} did not answer {command} within {seconds}s")]
    Timeout {
        server: String,
        command: String,
        seconds: u64,
    },
    #[error("{server} refused {command}: {answer}")]
    Refused {
        server: String,
        command: String,
        answer: String,
    },
    #[error("{server} answered {command} with something unexpected: {detail}")]
    Protocol {
        server: String,
        command: String,
        detail: String,
    },
    #[error(
        "cannot record message {message} of {server}; it and those after it stay in the mailbox: {source}"
    )]
    Store {
        server: String,
        message: u32,
        source: StoreError,
    },
}

impl MailboxError {
    /// After this error the session can still end properly (commit what was removed,
    /// log out): the server answered, or the store failed.
    pub(super) fn leaves_session_usable(&self) -> bool {
        matches!(
            self,
            MailboxError::Refused { .. } | MailboxError::Store { .. }
        )
    }
}

/// A server's words for an error message: printable, one line, at most 200 characters.
pub(super) fn shown(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        shown.push('…');
    }
    shown.trim().to_string()
}
