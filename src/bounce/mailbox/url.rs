//! Where the bounce mailbox is: `imaps://user:password@host[:port]/Folder` (port 993,
//! folder INBOX) or `pop3s://user:password@host[:port]` (port 995). `imap://` and
//! `pop3://` (no TLS) only for a server on this machine.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

/// A checked mailbox URL. Its `Display` and `Debug` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxUrl {
    pub protocol: Protocol,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    /// The IMAP folder read (`INBOX` unless the path names one); empty for POP3.
    pub folder: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad mailbox URL '{url}': {reason}")]
pub struct MailboxUrlError {
    /// The URL as given, password hidden.
    pub url: String,
    pub reason: String,
}

impl MailboxUrl {
    /// Parses `text`; `fallback_password` is used when the URL holds none (it comes
    /// from `MAILCAST_BOUNCE_MAILBOX_PASSWORD`).
    pub fn parse(
        text: &str,
        fallback_password: Option<&str>,
    ) -> Result<MailboxUrl, MailboxUrlError> {
        let fail = |reason: String| MailboxUrlError {
            url: crate::store::redact_url(text),
            reason,
        };
        let url = url::Url::parse(text.trim()).map_err(|e| fail(e.to_string()))?;
        let (protocol, tls, default_port) = match url.scheme() {
            "imaps" => (Protocol::Imap, true, 993),
            "imap" => (Protocol::Imap, false, 143),
            "pop3s" => (Protocol::Pop3, true, 995),
            "pop3" => (Protocol::Pop3, false, 110),
            other => {
                return Err(fail(format!(
                    "scheme '{other}' is not imaps://, pop3s:// (or, on this machine, imap://, pop3://)"
                )));
            }
        };
        let host = host_of(&url).ok_or_else(|| fail("it names no host".into()))?;
        if !tls && !is_loopback(&host) {
            return Err(fail(format!(
                "{}:// sends the password unencrypted: use {}s:// for '{host}' \
                 (plain connections are for a server on this machine only)",
                url.scheme(),
                url.scheme()
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(fail("a mailbox URL takes no ?query or #fragment".into()));
        }
        let user = percent_decode(url.username()).map_err(fail)?;
        if user.is_empty() {
            return Err(fail(
                "it names no user (write scheme://user:password@host)".into(),
            ));
        }
        let password = match url.password().filter(|p| !p.is_empty()) {
            Some(encoded) => percent_decode(encoded).map_err(fail)?,
            None => fallback_password
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    fail(
                        "it holds no password, and MAILCAST_BOUNCE_MAILBOX_PASSWORD is not set"
                            .into(),
                    )
                })?
                .to_string(),
        };
        let folder = folder_of(protocol, url.path()).map_err(fail)?;
        Ok(MailboxUrl {
            protocol,
            tls,
            host,
            port: url.port().unwrap_or(default_port),
            user,
            password,
            folder,
        })
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    fn scheme(&self) -> &'static str {
        match (self.protocol, self.tls) {
            (Protocol::Imap, true) => "imaps",
            (Protocol::Imap, false) => "imap",
            (Protocol::Pop3, true) => "pop3s",
            (Protocol::Pop3, false) => "pop3",
        }
    }
}

impl fmt::Display for MailboxUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        write!(f, "{}://{}@{host}:{}", self.scheme(), self.user, self.port)?;
        if self.protocol == Protocol::Imap {
            write!(f, "/{}", self.folder)?;
        }
        Ok(())
    }
}

impl fmt::Debug for MailboxUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxUrl({self})")
    }
}

/// The host without IPv6 brackets; None when the URL has none.
fn host_of(url: &url::Url) -> Option<String> {
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Some(bare.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn folder_of(protocol: Protocol, path: &str) -> Result<String, String> {
    let folder = percent_decode(path.trim_start_matches('/'))?;
    match protocol {
        Protocol::Imap if folder.is_empty() => Ok("INBOX".into()),
        Protocol::Imap => Ok(folder),
        Protocol::Pop3 if folder.is_empty() => Ok(String::new()),
        Protocol::Pop3 => Err(format!(
            "a POP3 mailbox has no folders, but the URL names '{folder}' (use imaps:// to read a folder)"
        )),
    }
}

/// `%XX` escapes decoded (a `+` stays a `+`: this is a URL, not a form).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a '%' not followed by two hex digits".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape that is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_imaps_with_escaped_credentials_and_a_folder() {
        let url = MailboxUrl::parse(
            "imaps://b%40shop.example:p%2Bw%2Fd@Mail.Example.com/Bounces%20In",
            None,
        )
        .unwrap();
        assert_eq!(url.protocol, Protocol::Imap);
        assert!(url.tls);
        assert_eq!(url.host, "mail.example.com");
        assert_eq!(url.port, 993);
        assert_eq!(url.user, "b@shop.example");
        assert_eq!(url.password(), "p+w/d");
        assert_eq!(url.folder, "Bounces In");
        assert_eq!(
            url.to_string(),
            "imaps://b@shop.example@mail.example.com:993/Bounces In"
        );
        assert!(!format!("{url:?}").contains("p+w/d"));
    }

    #[test]
    fn defaults_inbox_and_the_ports_and_takes_the_password_from_outside() {
        let imap = MailboxUrl::parse("imaps://bounces@mail.example.com", Some("s3cret")).unwrap();
        assert_eq!((imap.folder.as_str(), imap.port), ("INBOX", 993));
        assert_eq!(imap.password(), "s3cret");
        let pop = MailboxUrl::parse("pop3s://bounces:pw@mail.example.com:1995/", None).unwrap();
        assert_eq!(
            (pop.protocol, pop.port, pop.folder.as_str()),
            (Protocol::Pop3, 1995, "")
        );
        assert_eq!(pop.to_string(), "pop3s://bounces@mail.example.com:1995");
        let plain = MailboxUrl::parse("pop3://bounces:pw@[::1]", None).unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("::1", 110, false)
        );
        assert_eq!(plain.to_string(), "pop3://bounces@[::1]:110");
        assert!(MailboxUrl::parse("imap://bounces:pw@127.0.0.1:1143", None).is_ok());
    }

    #[test]
    fn refuses_with_the_reason_and_never_the_password() {
        let cases = [
            ("imap://bounces:Secret1@mail.example.com", "unencrypted"),
            (
                "pop3s://bounces:Secret1@mail.example.com/Done",
                "no folders",
            ),
            ("smtp://bounces:Secret1@mail.example.com", "scheme 'smtp'"),
            ("imaps://:Secret1@mail.example.com", "no user"),
            ("imaps://bounces@mail.example.com", "no password"),
            ("imaps://bounces:Secret1@mail.example.com/?x=1", "no ?query"),
            (
                "imaps://bounces:Secret%zz@mail.example.com",
                "two hex digits",
            ),
        ];
        for (text, reason) in cases {
            let error = MailboxUrl::parse(text, None).unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
            assert!(!error.contains("Secret"), "{text}: {error}");
        }
    }
}
