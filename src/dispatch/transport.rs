//! Where rendered messages go: an SMTP relay through lettre's pool, or `.eml` files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{RwLock, Semaphore};

use super::throttle::{Throttle, ThrottleSettings};
use crate::config::{SmtpTls, SmtpUrl, TransportConfig};

/// What the receiving side said about one message, in ledger terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The server accepted the message (250 after the final dot), or the file was written.
    Accepted,
    /// A 4xx reply or a failure to connect: nothing was handed over, try later.
    Deferred(String),
    /// A 5xx reply. `bad_mailbox` for 5.1.x (the address does not exist).
    Rejected { reason: String, bad_mailbox: bool },
    /// The message may or may not have been taken: never re-send on our own.
    Unknown(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot create outbox directory {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up SMTP transport for {url}: {reason}")]
    Smtp { url: String, reason: String },
}

pub struct Transport {
    kind: TransportKind,
    /// lettre's pool bounds idle connections only; this bounds sends in flight.
    in_flight: Semaphore,
    send_timeout: Duration,
    throttle: Throttle,
}

enum TransportKind {
    Outbox(PathBuf),
    /// Tried in order (a campaign may name which goes first); the next one takes over
    /// when one cannot be reached.
    Smtp(Vec<Relay>),
}

struct Relay {
    name: String,
    url: SmtpUrl,
    max_connections: u32,
    client: RwLock<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl Transport {
    pub async fn new(config: &TransportConfig, concurrency: usize) -> Result<Self, TransportError> {
        let kind = match config {
            TransportConfig::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|source| TransportError::Outbox {
                        path: dir.clone(),
                        source,
                    })?;
                TransportKind::Outbox(dir.clone())
            }
            TransportConfig::Smtp(url) => {
                TransportKind::Smtp(vec![relay("default", url, concurrency)?])
            }
            TransportConfig::Relays(relays) => TransportKind::Smtp(
                relays
                    .iter()
                    .map(|(name, url)| relay(name, url, concurrency))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Transport {
            kind,
            in_flight: Semaphore::new(concurrency.max(1)),
            send_timeout: Duration::from_secs(60),
            throttle: Throttle::new(ThrottleSettings::default()),
        })
    }

    /// Paces sends per recipient domain and overall.
    pub fn with_throttle(mut self, settings: ThrottleSettings) -> Self {
        self.throttle = Throttle::new(settings);
        self
    }

    /// How long one whole send may take before its outcome counts as unknown.
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    pub fn describe(&self) -> String {
        match &self.kind {
            TransportKind::Outbox(dir) => format!("outbox {}", dir.display()),
            TransportKind::Smtp(relays) => relays
                .iter()
                .map(|r| format!("SMTP {} {}", r.name, r.url.url))
                .collect::<Vec<_>>()
                .join(", then "),
        }
    }

    /// Hands one message over. `file_stem` names the `.eml` file in outbox mode;
    /// `relay` names the SMTP relay to try first.
    pub async fn send(&self, message: &Outgoing<'_>) -> SendResult {
        match &self.kind {
            TransportKind::Outbox(dir) => {
                let _permit = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                write_file(dir, message.file_stem, message.raw).await
            }
            TransportKind::Smtp(relays) => self.send_with_failover(relays, message).await,
        }
    }

    async fn send_with_failover(&self, relays: &[Relay], message: &Outgoing<'_>) -> SendResult {
        let domain = message
            .to
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        let _pace = self.throttle.acquire(domain).await;
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut result = SendResult::Deferred("no SMTP relay configured".into());
        for relay in relay_order(relays, message.relay) {
            result = self
                .send_smtp(relay, message.from, message.to, message.raw)
                .await;
            match &result {
                SendResult::Deferred(reason) if reason.starts_with("Connection error") => {
                    tracing::warn!(relay = %relay.name, %reason, "relay unreachable, trying the next");
                }
                _ => break,
            }
        }
        match &result {
            SendResult::Deferred(reason) if super::throttle::is_slow_down(reason) => {
                self.throttle.slow_down(domain)
            }
            SendResult::Accepted => self.throttle.succeeded(domain),
            _ => {}
        }
        result
    }

    async fn send_smtp(&self, relay: &Relay, from: &str, to: &str, raw: &[u8]) -> SendResult {
        let envelope = match envelope(from, to) {
            Ok(envelope) => envelope,
            Err(reason) => {
                return SendResult::Rejected {
                    reason,
                    bad_mailbox: false,
                };
            }
        };
        let client = relay.client.read().await.clone();
        match tokio::time::timeout(self.send_timeout, client.send_raw(&envelope, raw)).await {
            Ok(Ok(response)) => accepted(&response),
            Ok(Err(error)) => {
                let result = classify(&error);
                if matches!(result, SendResult::Unknown(_)) {
                    relay.rebuild().await;
                }
                result
            }
            Err(_) => {
                // The pooled connection is now out of step with the server.
                relay.rebuild().await;
                SendResult::Unknown(format!(
                    "no answer from the SMTP server within {}s",
                    self.send_timeout.as_secs()
                ))
            }
        }
    }
}

/// One message for [`Transport::send`].
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub raw: &'a [u8],
    pub file_stem: &'a str,
    pub relay: Option<&'a str>,
}

impl Relay {
    async fn rebuild(&self) {
        if let Ok(fresh) = build_smtp(&self.url, self.max_connections) {
            *self.client.write().await = Arc::new(fresh);
        }
    }
}

fn relay(name: &str, url: &SmtpUrl, concurrency: usize) -> Result<Relay, TransportError> {
    let max_connections = concurrency as u32;
    Ok(Relay {
        name: name.to_string(),
        client: RwLock::new(Arc::new(build_smtp(url, max_connections)?)),
        url: url.clone(),
        max_connections,
    })
}

/// The named relay first, then the others in configured order.
fn relay_order<'r>(relays: &'r [Relay], first: Option<&str>) -> impl Iterator<Item = &'r Relay> {
    let preferred = relays
        .iter()
        .filter(move |r| Some(r.name.as_str()) == first);
    let rest = relays
        .iter()
        .filter(move |r| Some(r.name.as_str()) != first);
    preferred.chain(rest)
}

fn build_smtp(
    url: &SmtpUrl,
    max_connections: u32,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportError> {
    let fail = |reason: String| TransportError::Smtp {
        url: url.url.clone(),
        reason,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&url.host)
        .port(url.port)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(max_connections.max(1)));
    if url.tls != SmtpTls::None {
        let parameters = TlsParameters::new(url.host.clone()).map_err(|e| fail(e.to_string()))?;
        builder = builder.tls(match url.tls {
            SmtpTls::Implicit => Tls::Wrapper(parameters),
            _ => Tls::Required(parameters),
        });
    }
    if let Some((user, password)) = &url.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

fn envelope(from: &str, to: &str) -> Result<Envelope, String> {
    let parse = |text: &str| {
        text.parse::<Address>()
            .map_err(|e| format!("address '{text}' refused by the SMTP client: {e}"))
    };
    Envelope::new(Some(parse(from)?), vec![parse(to)?]).map_err(|e| e.to_string())
}

fn accepted(response: &Response) -> SendResult {
    if response.code().to_string() == "250" {
        SendResult::Accepted
    } else {
        SendResult::Unknown(format!(
            "unexpected reply after the message: {} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        ))
    }
}

/// Maps a lettre error onto the ledger's outcomes, by enhanced status code first.
fn classify(error: &lettre::transport::smtp::Error) -> SendResult {
    let text = error.to_string();
    if error.is_permanent() {
        let bad_mailbox = enhanced_code(&text).is_some_and(|code| code.starts_with("5.1."));
        return SendResult::Rejected {
            reason: text,
            bad_mailbox,
        };
    }
    if error.is_transient() || is_connect_failure(error) {
        return SendResult::Deferred(text);
    }
    SendResult::Unknown(text)
}

/// A failure before any session existed: nothing can have been delivered.
fn is_connect_failure(error: &lettre::transport::smtp::Error) -> bool {
    error.to_string().starts_with("Connection error")
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in a reply text.
pub fn enhanced_code(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
}

async fn write_file(dir: &std::path::Path, stem: &str, raw: &[u8]) -> SendResult {
    let path = dir.join(format!("{stem}.eml"));
    let temp = dir.join(format!(".{stem}.eml.tmp"));
    let written = async {
        tokio::fs::write(&temp, raw).await?;
        tokio::fs::rename(&temp, &path).await
    };
    match written.await {
        Ok(()) => SendResult::Accepted,
        Err(e) => SendResult::Deferred(format!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_enhanced_status_codes_in_reply_text() {
        assert_eq!(
            enhanced_code("permanent error (550): 5.1.1 <bob@example.com>: user unknown"),
            Some("5.1.1".into())
        );
        assert_eq!(
            enhanced_code("transient error (421): 4.7.0 try again later"),
            Some("4.7.0".into())
        );
        assert_eq!(enhanced_code("permanent error (554): rejected"), None);
        assert_eq!(enhanced_code("version 1.2.3 of 9.9.9"), None);
    }
}
