//! The bounce mailbox poller: bounces that land in a mailbox are read over IMAP or
//! POP3 (TLS unless the server is on this machine), stored as the SMTP receiver stores
//! what it takes, applied, and only once stored removed from the mailbox: moved to a
//! folder, or deleted.

mod error;
mod imap;
mod poll;
mod pop3;
mod url;
mod wire;

use std::path::Path;
use std::time::Duration;

pub use error::MailboxError;
pub use poll::{poll_forever, poll_once};
pub use url::{MailboxUrl, MailboxUrlError, Protocol};

/// How much the poller reads.
#[derive(Debug, Clone)]
pub struct MailboxLimits {
    /// Larger messages are left in the mailbox, with a warning.
    pub max_message_size: usize,
    /// Longest line a server may send (an IMAP SEARCH answer is one line: ~7 bytes a
    /// message).
    pub max_line: usize,
    /// How long the server may take over anything.
    pub timeout: Duration,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_message_size: 10 * 1024 * 1024,
            max_line: 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A mailbox to poll: where it is, what becomes of what was read, and how its server's
/// certificate is checked.
pub struct Mailbox {
    url: MailboxUrl,
    move_to: Option<String>,
    limits: MailboxLimits,
    tls: tokio_rustls::TlsConnector,
}

impl Mailbox {
    /// Checks the settings and reads `extra_ca` (PEM: the CA, or the self-signed
    /// certificate, of a private server; the public CAs are always trusted).
    pub fn new(
        url: MailboxUrl,
        move_to: Option<String>,
        extra_ca: Option<&Path>,
        limits: MailboxLimits,
    ) -> Result<Mailbox, MailboxError> {
        if let Some(folder) = &move_to {
            check_move_to(&url, folder)?;
        }
        let tls = wire::tls_connector(extra_ca)?;
        Ok(Mailbox {
            url,
            move_to,
            limits,
            tls,
        })
    }

    pub fn url(&self) -> &MailboxUrl {
        &self.url
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("url", &self.url)
            .field("move_to", &self.move_to)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn check_move_to(url: &MailboxUrl, folder: &str) -> Result<(), MailboxError> {
    let refuse = |reason: String| Err(MailboxError::Settings(reason));
    if url.protocol == Protocol::Pop3 {
        return refuse(
            "moving messages to a folder needs IMAP (imaps://): POP3 has no folders".into(),
        );
    }
    if folder.trim().is_empty() {
        return refuse("the folder to move messages to is empty".into());
    }
    if folder == url.folder
        || (folder.eq_ignore_ascii_case("INBOX") && url.folder.eq_ignore_ascii_case("INBOX"))
    {
        return refuse(format!(
            "messages read from '{folder}' cannot be moved to '{folder}' itself"
        ));
    }
    Ok(())
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages read from the mailbox.
    pub fetched: usize,
    /// Of those, how many were new (the rest were stored before: same digest).
    pub stored: usize,
    /// Moved or deleted, each after it was stored.
    pub removed: usize,
    /// Left in the mailbox: over the size limit, or the server could not give them.
    pub skipped: usize,
}

impl std::fmt::Display for PollReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fetched {}, stored {}, removed {}, skipped {}",
            self.fetched, self.stored, self.removed, self.skipped
        )
    }
}

/// A message in the mailbox: its UID (IMAP) or number (POP3), and its size if known.
struct Listed {
    id: u32,
    size: Option<u64>,
}

enum Fetched {
    Message(Vec<u8>),
    /// Over the size limit: read and dropped, or not read.
    TooLarge(u64),
    /// Removed by someone else since the listing.
    Gone,
    /// The server refused it, in these words.
    Unreadable(String),
}

enum Removal {
    /// Moved already.
    Done,
    /// Flagged; removed when the session ends well.
    Pending,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> MailboxUrl {
        MailboxUrl::parse(text, None).unwrap()
    }

    #[test]
    fn moving_needs_imap_and_another_folder() {
        let limits = MailboxLimits::default;
        let pop = url("pop3s://b:pw@mail.example.com");
        let error = Mailbox::new(pop, Some("Done".into()), None, limits()).unwrap_err();
        assert!(error.to_string().contains("needs IMAP"), "{error}");
        let inbox = url("imaps://b:pw@mail.example.com");
        let error = Mailbox::new(inbox.clone(), Some("inbox".into()), None, limits()).unwrap_err();
        assert!(error.to_string().contains("itself"), "{error}");
        assert!(Mailbox::new(inbox, Some("Done".into()), None, limits()).is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let inbox = url("imaps://b:pw@mail.example.com");
        let error = Mailbox::new(inbox.clone(), None, Some(&path), MailboxLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ca.pem") && error.contains("no PEM certificate"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = Mailbox::new(inbox, None, Some(&missing), MailboxLimits::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing.pem"), "{error}");
    }
}
