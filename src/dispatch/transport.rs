//! Where rendered messages go: SMTP relays over connections we own, or `.eml` files.
//!
//! lettre's pool answers every reuse with a NOOP, returns connections through a spawned
//! task (after our concurrency permit is gone, so the next send opens a new session) and
//! never sets TCP_NODELAY, which makes every message wait for a delayed ACK. So mailcast
//! opens its own sockets (nodelay, optional implicit TLS), lets lettre speak SMTP on
//! them, and keeps idle sessions itself. Where the server offers PIPELINING, a message
//! is sent in two round trips instead of four (`pipelining`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::sync::Semaphore;

use super::pipelining::{self, Failure};
use super::refusal::{self, About, Stage};
use super::relay_warning::{REPORT_EVERY, UnreachableReports};
use super::smtp_stream::{ImplicitTls, connect_tcp};
use super::throttle::{Throttle, ThrottleSettings};
use crate::config::{SmtpTls, SmtpUrl, TransportConfig};

/// How long opening a session (TCP, TLS, greeting, EHLO, AUTH) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle session older than this is checked with NOOP before it carries a message:
/// servers close idle sessions, and a failure after MAIL FROM would count as unknown.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(5);
/// How failures to reach a relay start; failover to the next relay keys on it.
const CONNECTION_ERROR: &str = "Connection error";

/// What the receiving side said about one message, in ledger terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The server accepted the message (250 after the final dot), or the file was written.
    Accepted,
    /// A 4xx reply or a failure to connect: nothing was handed over, try later.
    Deferred(String),
    /// A 5xx reply about this recipient. `bad_mailbox` when it refused the mailbox in
    /// reply to RCPT TO (`refusal` has the rule).
    Rejected { reason: String, bad_mailbox: bool },
    /// A 5xx reply about the sender or the message (MAIL FROM refused, 5.1.8, 5.7.x,
    /// content refused after DATA): every recipient would be refused alike.
    Refused(String),
    /// The message may or may not have been taken: never re-send on our own.
    Unknown(String),
    /// Nothing was handed over: the message's [`HandOver`] said no before its body.
    NotHanded(String),
}

/// What must happen before a message's body goes out (its envelope may already be on
/// its way): the ledger marks the delivery as handed to SMTP. The body is sent only when
/// this succeeds; otherwise the session is dropped, which aborts the mail transaction.
pub trait HandOver: Sync {
    fn hand_over(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// For sends with no ledger row behind them (tests and tools calling the transport).
pub struct NothingToMark;

impl HandOver for NothingToMark {
    fn hand_over(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
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
    concurrency: usize,
    /// Bounds sends in flight, and so the SMTP sessions open per relay.
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
    security: Security,
    hello: ClientId,
    /// Sessions that finished their last message cleanly, most recently used last.
    idle: Mutex<Vec<IdleSession>>,
    unreachable: UnreachableReports,
}

enum Security {
    Plain,
    StartTls(TlsParameters),
    Implicit(ImplicitTls),
}

/// An open SMTP session and whether its server takes pipelined commands.
struct Session {
    connection: AsyncSmtpConnection,
    pipelining: bool,
}

struct IdleSession {
    session: Session,
    since: Instant,
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
            TransportConfig::Smtp(url) => TransportKind::Smtp(vec![Relay::new("default", url)?]),
            TransportConfig::Relays(relays) => TransportKind::Smtp(
                relays
                    .iter()
                    .map(|(name, url)| Relay::new(name, url))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Transport {
            kind,
            concurrency: concurrency.max(1),
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

    /// How many messages are sent at once at most.
    pub fn concurrency(&self) -> usize {
        self.concurrency
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
                if let Err(reason) = message.hand_over.hand_over().await {
                    return SendResult::NotHanded(reason);
                }
                write_file(dir, message.file_stem, message.raw).await
            }
            TransportKind::Smtp(relays) => self.send_with_failover(relays, message).await,
        }
    }

    async fn send_with_failover(&self, relays: &[Relay], message: &Outgoing<'_>) -> SendResult {
        let envelope = match envelope(message.from, message.to) {
            Ok(envelope) => envelope,
            Err(reason) => {
                return SendResult::Rejected {
                    reason,
                    bad_mailbox: false,
                };
            }
        };
        let domain = message
            .to
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        let _pace = self.throttle.acquire(domain).await;
        // Held until the session is back among the idle ones (inside `send_smtp`), so
        // the next send finds it instead of opening another.
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore never closed");
        let mut result = SendResult::Deferred("no SMTP relay configured".into());
        for relay in relay_order(relays, message.relay) {
            result = self.send_smtp(relay, &envelope, message).await;
            match &result {
                SendResult::Deferred(reason) if reason.starts_with(CONNECTION_ERROR) => {
                    if let Some(failed_sends) = relay.unreachable.failed(Instant::now()) {
                        tracing::warn!(
                            relay = %relay.name, %reason, failed_sends,
                            "relay unreachable (failed sends since the last report), trying the next"
                        );
                    }
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

    async fn send_smtp(
        &self,
        relay: &Relay,
        envelope: &Envelope,
        message: &Outgoing<'_>,
    ) -> SendResult {
        let mut session = match relay.session().await {
            Ok(session) => session,
            Err(failure) => return failure,
        };
        let sent = pipelining::send(
            &mut session.connection,
            session.pipelining,
            envelope,
            message.raw,
            message.hand_over,
        );
        match tokio::time::timeout(self.send_timeout, sent).await {
            Ok(Ok(response)) => {
                let result = accepted(&response);
                if result == SendResult::Accepted {
                    relay.give_back(session);
                }
                result
            }
            // The session is dropped: lettre has aborted it, or pipelined replies are
            // still owed.
            Ok(Err(failure)) => classify(&failure),
            // Dropping the session closes it: it is out of step with the server.
            Err(_) => SendResult::Unknown(format!(
                "no answer from the SMTP server within {}s",
                self.send_timeout.as_secs()
            )),
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
    pub hand_over: &'a dyn HandOver,
}

impl Relay {
    fn new(name: &str, url: &SmtpUrl) -> Result<Relay, TransportError> {
        let fail = |reason: String| TransportError::Smtp {
            url: url.url.clone(),
            reason,
        };
        let security = match url.tls {
            SmtpTls::None => Security::Plain,
            SmtpTls::StartTls => Security::StartTls(
                TlsParameters::new(url.host.clone()).map_err(|e| fail(e.to_string()))?,
            ),
            SmtpTls::Implicit => Security::Implicit(ImplicitTls::new(&url.host).map_err(fail)?),
        };
        Ok(Relay {
            name: name.to_string(),
            url: url.clone(),
            security,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            unreachable: UnreachableReports::new(REPORT_EVERY),
        })
    }

    /// An idle session still alive, or a new one. A failure is the send's outcome.
    async fn session(&self) -> Result<Session, SendResult> {
        while let Some(mut idle) = self.take_idle() {
            if idle.since.elapsed() < CHECK_IDLE_AFTER
                || idle.session.connection.test_connected().await
            {
                return Ok(idle.session);
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(SendResult::Deferred(format!(
                "{CONNECTION_ERROR}: no SMTP session with {} within {}s",
                self.url.url,
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn take_idle(&self) -> Option<IdleSession> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, session: Session) {
        if session.connection.has_broken() {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(IdleSession {
                session,
                since: Instant::now(),
            });
    }

    /// TCP (nodelay), TLS as configured, greeting, EHLO, AUTH. Nothing has been handed
    /// over yet, so every failure here defers the message.
    async fn open(&self) -> Result<Session, SendResult> {
        let tcp = connect_tcp(&self.url.host, self.url.port)
            .await
            .map_err(|e| SendResult::Deferred(format!("{CONNECTION_ERROR}: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(tls) => tls
                .wrap(tcp, &self.url.host)
                .await
                .map_err(|e| SendResult::Deferred(format!("{CONNECTION_ERROR}: TLS: {e}")))?,
            _ => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| setup_failure(&e))?;
        if let Security::StartTls(parameters) = &self.security {
            connection
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(|e| setup_failure(&e))?;
        }
        let pipelining = pipelining::offers_pipelining(&mut connection, &self.hello)
            .await
            .map_err(|e| setup_failure(&e))?;
        if let Some((user, password)) = &self.url.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(|e| setup_failure(&e))?;
        }
        Ok(Session {
            connection,
            pipelining,
        })
    }
}

/// A session that could not be set up: a 5xx (say, refused credentials) fails the
/// message as before; anything else means the relay is unreachable for now.
fn setup_failure(error: &lettre::transport::smtp::Error) -> SendResult {
    if error.is_permanent() {
        return classify_at(Stage::Session, error);
    }
    let text = error.to_string();
    if text.starts_with(CONNECTION_ERROR) {
        SendResult::Deferred(text)
    } else {
        SendResult::Deferred(format!("{CONNECTION_ERROR}: {text}"))
    }
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

/// Maps a failed send onto the ledger's outcomes.
fn classify(failure: &Failure) -> SendResult {
    match failure {
        Failure::At(stage, error) => classify_at(*stage, error),
        Failure::Unsupported(reason) => SendResult::Rejected {
            reason: reason.to_string(),
            bad_mailbox: false,
        },
        Failure::NotHanded(reason) => SendResult::NotHanded(reason.clone()),
    }
}

/// A 5xx is about the mailbox, the recipient or the sender by the command it answered
/// and its enhanced status code (`refusal`); a 4xx defers. A lost connection or an
/// unreadable reply defers while the message body was not yet sent, and is unknown
/// after it.
fn classify_at(stage: Stage, error: &lettre::transport::smtp::Error) -> SendResult {
    let text = error.to_string();
    if error.is_permanent() {
        let reason = format!("{text} (reply to {})", stage.command());
        return match refusal::about(stage, enhanced_code(&text).as_deref()) {
            About::Mailbox => SendResult::Rejected {
                reason,
                bad_mailbox: true,
            },
            About::Recipient => SendResult::Rejected {
                reason,
                bad_mailbox: false,
            },
            About::Sender => SendResult::Refused(reason),
        };
    }
    if error.is_transient() || !stage.handed_over() {
        return SendResult::Deferred(text);
    }
    SendResult::Unknown(text)
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
        Err(e) => {
            // A full disk (ENOSPC) leaves a partial temporary file: remove it, so that
            // failed writes do not fill the outbox with debris.
            let _ = tokio::fs::remove_file(&temp).await;
            SendResult::Deferred(format!("cannot write {}: {e}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk that is full: the temporary file is a link to /dev/full, where every
    /// write fails with ENOSPC (no tmpfs to fill, no root needed).
    #[tokio::test]
    async fn a_failed_outbox_write_leaves_no_temporary_file() {
        let full = std::path::Path::new("/dev/full");
        if !full.exists() {
            eprintln!("/dev/full is missing: test skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join(".m1.eml.tmp");
        std::os::unix::fs::symlink(full, &temp).unwrap();
        let result = write_file(dir.path(), "m1", b"Subject: hi\r\n\r\nbody\r\n").await;
        assert!(
            matches!(&result, SendResult::Deferred(reason) if reason.contains("No space left")),
            "{result:?}"
        );
        assert!(
            !temp.exists() && temp.symlink_metadata().is_err(),
            "temporary file left behind"
        );
        assert!(!dir.path().join("m1.eml").exists());
    }

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
