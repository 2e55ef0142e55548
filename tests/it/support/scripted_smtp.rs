//! An SMTP server on a tokio listener, built on mailin's protocol state machine, that
//! can misbehave after the final dot the way real servers and networks do. Like most
//! real servers it offers PIPELINING (RFC 2920), which mailin itself does not.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mailin::{Handler, Response, SessionBuilder, response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::smtp::Received;

/// What the server does once a message's final dot has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDot {
    /// 250, as usual.
    Accept,
    /// Close the connection without a reply.
    Drop,
    /// Never reply; keep the connection open.
    Hang,
    /// 250 after this long: a slow relay.
    Delay(std::time::Duration),
}

/// Decides, per message (with its number among all messages so far), what to do.
pub type DotPolicy = Arc<dyn Fn(&Received, usize) -> AfterDot + Send + Sync>;
/// Decides the reply to RCPT TO (None: 250), given how often that address was seen.
pub type RcptPolicy = Arc<dyn Fn(&str, usize) -> Option<Response> + Send + Sync>;
/// Decides the reply to MAIL FROM, given the sender (None: 250).
pub type MailPolicy = Arc<dyn Fn(&str) -> Option<MailReply> + Send + Sync>;

/// A reply to MAIL FROM other than 250.
#[derive(Debug, Clone, Copy)]
pub enum MailReply {
    /// `code text`, as a relay refusing the sender answers.
    Refuse(u16, &'static str),
    /// `250 ` and then bytes without a line end, until the client hangs up.
    Endless,
}

#[derive(Default)]
struct Log {
    /// SMTP sessions accepted so far.
    sessions: usize,
    received: Vec<Received>,
    rcpt_seen: Vec<String>,
    /// Transactions whose MAIL FROM arrived together with the commands after it.
    pipelined: usize,
    /// Bytes of endless replies written before their clients hung up, one per session.
    endless_written: Vec<usize>,
    /// EHLO replies leave PIPELINING out, as some relays do.
    without_pipelining: bool,
}

pub struct ScriptedServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    pub async fn start(rcpt: RcptPolicy, dot: DotPolicy) -> ScriptedServer {
        ScriptedServer::start_with_mail(accept_mail(), rcpt, dot).await
    }

    /// Also answers MAIL FROM as `mail` says.
    pub async fn start_with_mail(
        mail: MailPolicy,
        rcpt: RcptPolicy,
        dot: DotPolicy,
    ) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        ScriptedServer::serve(listener, mail, rcpt, dot)
    }

    /// Serves on an address chosen earlier (to simulate a server coming back).
    pub async fn start_on(addr: SocketAddr, rcpt: RcptPolicy, dot: DotPolicy) -> ScriptedServer {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the same address");
        ScriptedServer::serve(listener, accept_mail(), rcpt, dot)
    }

    fn serve(
        listener: TcpListener,
        mail: MailPolicy,
        rcpt: RcptPolicy,
        dot: DotPolicy,
    ) -> ScriptedServer {
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, peer)) = listener.accept().await {
                shared.lock().unwrap().sessions += 1;
                let connection = Connection {
                    log: shared.clone(),
                    mail: mail.clone(),
                    rcpt: rcpt.clone(),
                    dot: dot.clone(),
                };
                tokio::spawn(connection.run(socket, peer));
            }
        });
        ScriptedServer { addr, log, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// How many SMTP sessions clients opened.
    pub fn sessions(&self) -> usize {
        self.log.lock().unwrap().sessions
    }

    /// Mail transactions the client sent pipelined.
    pub fn pipelined(&self) -> usize {
        self.log.lock().unwrap().pipelined
    }

    /// From now on, EHLO replies do not offer PIPELINING.
    pub fn stop_offering_pipelining(&self) {
        self.log.lock().unwrap().without_pipelining = true;
    }

    /// Bytes of endless replies each client read (or the kernel buffered) before it
    /// hung up; one entry per session that got one and hung up.
    pub fn endless_written(&self) -> Vec<usize> {
        self.log.lock().unwrap().endless_written.clone()
    }

    /// Recipients of accepted-or-ambiguous messages, one entry per message.
    pub fn recipients(&self) -> Vec<String> {
        self.received().iter().flat_map(|m| m.to.clone()).collect()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Connection {
    log: Arc<Mutex<Log>>,
    mail: MailPolicy,
    rcpt: RcptPolicy,
    dot: DotPolicy,
}

/// mailin's per-session handler: collects one message and asks the policies.
#[derive(Clone)]
struct SessionHandler {
    conn: Connection,
    current: Option<Received>,
    verdict: Arc<Mutex<Option<AfterDot>>>,
}

impl Handler for SessionHandler {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        match (self.conn.mail)(from) {
            Some(MailReply::Refuse(code, text)) => Response::custom(code, text.into()),
            _ => response::OK,
        }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut log = self.conn.log.lock().unwrap();
        let seen = log.rcpt_seen.iter().filter(|a| a.as_str() == to).count();
        log.rcpt_seen.push(to.to_string());
        (self.conn.rcpt)(to, seen).unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_string(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(message) = self.current.take() {
            let mut log = self.conn.log.lock().unwrap();
            let verdict = (self.conn.dot)(&message, log.received.len());
            log.received.push(message);
            *self.verdict.lock().unwrap() = Some(verdict);
        }
        response::OK
    }
}

impl Connection {
    async fn run(self, socket: tokio::net::TcpStream, peer: SocketAddr) {
        let log = self.log.clone();
        let mail = self.mail.clone();
        let verdict = Arc::new(Mutex::new(None));
        let handler = SessionHandler {
            conn: self,
            current: None,
            verdict: verdict.clone(),
        };
        let mut session = SessionBuilder::new("scripted.test").build(peer.ip(), handler);
        let (read, mut write) = socket.into_split();
        let mut reader = BufReader::new(read);
        if write_response(&mut write, &session.greeting())
            .await
            .is_err()
        {
            return;
        }
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if starts_with(&line, "MAIL FROM:") && !reader.buffer().is_empty() {
                log.lock().unwrap().pipelined += 1;
            }
            if starts_with(&line, "MAIL FROM:")
                && matches!(
                    mail(&String::from_utf8_lossy(&line)),
                    Some(MailReply::Endless)
                )
            {
                let written = write_endless(&mut write).await;
                log.lock().unwrap().endless_written.push(written);
                return;
            }
            let reply = session.process(&line);
            let after_dot = verdict.lock().unwrap().take();
            match after_dot {
                Some(AfterDot::Drop) => return,
                Some(AfterDot::Hang) => {
                    std::future::pending::<()>().await;
                }
                Some(AfterDot::Delay(delay)) => tokio::time::sleep(delay).await,
                _ => {}
            }
            if reply.action == mailin::Action::NoReply {
                continue;
            }
            let mut bytes = reply.buffer().unwrap_or_default();
            let offers_pipelining = !log.lock().unwrap().without_pipelining;
            if starts_with(&line, "EHLO") && reply.code == 250 && offers_pipelining {
                bytes = offer_pipelining(&bytes);
            }
            if write.write_all(&bytes).await.is_err() || reply.action == mailin::Action::Close {
                return;
            }
        }
    }
}

async fn write_response(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    reply: &Response,
) -> std::io::Result<()> {
    let bytes = reply.buffer()?;
    write.write_all(&bytes).await
}

/// `250 ` and then `x` without end; returns how many bytes went out before the client
/// hung up.
async fn write_endless(write: &mut tokio::net::tcp::OwnedWriteHalf) -> usize {
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0;
    if write.write_all(b"250 ").await.is_err() {
        return written;
    }
    while write.write_all(&chunk).await.is_ok() {
        written += chunk.len();
    }
    written
}

fn starts_with(line: &[u8], command: &str) -> bool {
    line.len() >= command.len() && line[..command.len()].eq_ignore_ascii_case(command.as_bytes())
}

/// mailin's EHLO reply with PIPELINING as its second line.
fn offer_pipelining(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    let Some((first, rest)) = text.split_once("\r\n") else {
        return reply.to_vec();
    };
    let name = first.get(4..).unwrap_or_default();
    if rest.is_empty() {
        format!("250-{name}\r\n250 PIPELINING\r\n").into_bytes()
    } else {
        format!("250-{name}\r\n250-PIPELINING\r\n{rest}").into_bytes()
    }
}

pub fn accept_mail() -> MailPolicy {
    Arc::new(|_| None)
}

/// Every MAIL FROM gets `reply`.
pub fn answer_mail(reply: MailReply) -> MailPolicy {
    Arc::new(move |_| Some(reply))
}

pub fn accept_all() -> RcptPolicy {
    Arc::new(|_, _| None)
}

/// Every RCPT TO `address` gets `code text`; the others 250.
pub fn refuse(address: &'static str, code: u16, text: &'static str) -> RcptPolicy {
    Arc::new(move |to, _| (to == address).then(|| Response::custom(code, text.into())))
}

pub fn always_accept_dot() -> DotPolicy {
    Arc::new(|_, _| AfterDot::Accept)
}

/// Accepts every message `delay` after its final dot.
pub fn accept_after(delay: std::time::Duration) -> DotPolicy {
    Arc::new(move |_, _| AfterDot::Delay(delay))
}
