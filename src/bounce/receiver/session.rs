//! One SMTP session of the receiver: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed), RSET,
//! NOOP, QUIT. Recipients outside the bounce domain are refused (never a relay); a
//! message over the size cap is refused after its data is read; 250 answers DATA only
//! once the message is committed to the store.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::command::{Command, parse};
use super::{Intake, ReceiverLimits};
use crate::store::IncomingBounce;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; some clients send more.
const MAX_COMMAND_LINE: u64 = 2048;
/// Recipients per message (RFC 5321 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;
/// Commands that fail in a row before the session is closed.
const MAX_ERRORS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub(super) enum SessionEnd {
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("client idle for {0:?}")]
    Timeout(Duration),
}

#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

pub(super) struct Session<'a, S> {
    stream: S,
    /// Turns true when the receiver stops: a session waiting for a command ends.
    stopping: tokio::sync::watch::Receiver<bool>,
    intake: &'a Intake,
    limits: &'a ReceiverLimits,
    greeted: bool,
    transaction: Transaction,
    errors: u32,
}

impl<'a, S: AsyncBufRead + AsyncWrite + Unpin> Session<'a, S> {
    pub fn new(
        stream: S,
        intake: &'a Intake,
        limits: &'a ReceiverLimits,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Session {
            stream,
            stopping,
            intake,
            limits,
            greeted: false,
            transaction: Transaction::default(),
            errors: 0,
        }
    }

    pub async fn run(mut self) -> Result<(), SessionEnd> {
        let host = self.limits.hostname.clone();
        self.reply(&format!("220 {host} ESMTP mailcast bounce receiver"))
            .await?;
        loop {
            let Some(line) = self.read_command().await? else {
                return Ok(());
            };
            let Some(line) = line else {
                self.failed("500 5.5.2 Line too long").await?;
                continue;
            };
            match parse(&line) {
                Command::Quit => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                command => self.handle(command).await?,
            }
            if self.errors >= MAX_ERRORS {
                self.reply("421 4.7.0 Too many errors, closing").await?;
                return Ok(());
            }
        }
    }

    async fn handle(&mut self, command: Command) -> Result<(), SessionEnd> {
        let host = &self.limits.hostname;
        match command {
            Command::Ehlo(_) => {
                self.greeted = true;
                self.transaction = Transaction::default();
                let text = format!(
                    "250-{host}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES",
                    self.limits.max_message_size
                );
                self.reply(&text).await
            }
            Command::Helo(_) => {
                self.greeted = true;
                self.transaction = Transaction::default();
                self.reply(&format!("250 {host}")).await
            }
            Command::Mail { from, size } => self.mail(from, size).await,
            Command::Rcpt(to) => self.rcpt(to).await,
            Command::Data => self.data().await,
            Command::Rset => {
                self.transaction = Transaction::default();
                self.reply("250 2.0.0 OK").await
            }
            Command::Noop => self.reply("250 2.0.0 OK").await,
            Command::Vrfy => self.reply("252 2.5.0 Cannot verify, send some mail").await,
            Command::Syntax(problem) => self.failed(&format!("501 5.5.4 {problem}")).await,
            Command::Unknown => self.failed("502 5.5.2 Command not recognised").await,
            Command::Quit => unreachable!("handled by run"),
        }
    }

    async fn mail(&mut self, from: String, size: Option<u64>) -> Result<(), SessionEnd> {
        if !self.greeted {
            return self.failed("503 5.5.1 EHLO or HELO first").await;
        }
        if self.transaction.from.is_some() {
            return self.failed("503 5.5.1 Sender already given").await;
        }
        if size.is_some_and(|s| s > self.limits.max_message_size as u64) {
            let max = self.limits.max_message_size;
            return self
                .failed(&format!(
                    "552 5.3.4 Message size exceeds the limit of {max} bytes"
                ))
                .await;
        }
        self.transaction.from = Some(from);
        self.reply("250 2.1.0 OK").await
    }

    async fn rcpt(&mut self, to: String) -> Result<(), SessionEnd> {
        if self.transaction.from.is_none() {
            return self.failed("503 5.5.1 MAIL first").await;
        }
        if !self.intake.accepts(&to) {
            let domain = self.intake.domain();
            return self
                .failed(&format!(
                    "550 5.7.1 <{to}>: Relay access denied: only mail for {domain} is accepted here"
                ))
                .await;
        }
        if self.transaction.to.len() >= MAX_RECIPIENTS {
            return self.failed("452 4.5.3 Too many recipients").await;
        }
        self.transaction.to.push(to);
        self.reply("250 2.1.5 OK").await
    }

    async fn data(&mut self) -> Result<(), SessionEnd> {
        if self.transaction.from.is_none() {
            return self.failed("503 5.5.1 MAIL first").await;
        }
        if self.transaction.to.is_empty() {
            return self.failed("554 5.5.1 No valid recipients").await;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let transaction = std::mem::take(&mut self.transaction);
        let Some(raw) = self.read_data().await? else {
            let max = self.limits.max_message_size;
            return self
                .failed(&format!(
                    "552 5.3.4 Message size exceeds the limit of {max} bytes"
                ))
                .await;
        };
        let incoming = IncomingBounce {
            raw: &raw,
            envelope_from: transaction.from.as_deref(),
            envelope_to: &transaction.to,
            received_at: crate::time::now(),
        };
        match self.intake.store(&incoming).await {
            Ok(id) => {
                self.errors = 0;
                self.reply(&format!("250 2.0.0 OK: stored as bounce {id}"))
                    .await?;
                self.intake.process(id).await;
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "cannot store a received bounce; the sender will retry");
                self.reply("451 4.3.0 Cannot store the message now, try again later")
                    .await
            }
        }
    }

    /// The message up to the lone dot, dot-unstuffed; None when it was over the cap
    /// (read to its end all the same, so the session stays in step).
    async fn read_data(&mut self) -> Result<Option<Vec<u8>>, SessionEnd> {
        let max = self.limits.max_message_size;
        let mut message = Vec::new();
        let mut too_big = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self.read_line(max as u64 + 3, &mut line).await?;
            if n == 0 {
                return Err(SessionEnd::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if line == b".\r\n" || line == b".\n" {
                return Ok((!too_big).then_some(message));
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            if too_big || message.len() + unstuffed.len() > max {
                too_big = true;
                message = Vec::new();
                continue;
            }
            message.extend_from_slice(unstuffed);
        }
    }

    /// The next command line without its ending: None at the end of the stream,
    /// Some(None) for a line over the limit (consumed).
    async fn read_command(&mut self) -> Result<Option<Option<String>>, SessionEnd> {
        let mut line = Vec::new();
        let mut stopping = self.stopping.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let read = tokio::select! {
            read = self.read_line(MAX_COMMAND_LINE, &mut line) => Some(read),
            () = stopped => None,
        };
        let Some(read) = read else {
            self.reply("421 4.3.2 Shutting down, try again later")
                .await?;
            return Ok(None);
        };
        let n = match read {
            Err(SessionEnd::Timeout(after)) => {
                self.reply("421 4.4.2 Idle too long, closing").await?;
                return Err(SessionEnd::Timeout(after));
            }
            read => read?,
        };
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            self.skip_rest_of_line().await?;
            return Ok(Some(None));
        }
        let text = String::from_utf8_lossy(&line);
        Ok(Some(Some(text.trim_end_matches(['\r', '\n']).to_string())))
    }

    async fn skip_rest_of_line(&mut self) -> Result<(), SessionEnd> {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let n = self.read_line(MAX_COMMAND_LINE, &mut sink).await?;
            if n == 0 || sink.ends_with(b"\n") {
                return Ok(());
            }
        }
    }

    /// Up to `cap` bytes through the next line feed, within the command timeout.
    async fn read_line(&mut self, cap: u64, buf: &mut Vec<u8>) -> Result<usize, SessionEnd> {
        let timeout = self.limits.command_timeout;
        let stream = &mut self.stream;
        let read = async move { stream.take(cap).read_until(b'\n', buf).await };
        Ok(tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| SessionEnd::Timeout(timeout))??)
    }

    async fn failed(&mut self, text: &str) -> Result<(), SessionEnd> {
        self.errors += 1;
        self.reply(text).await
    }

    async fn reply(&mut self, text: &str) -> Result<(), SessionEnd> {
        self.stream.write_all(text.as_bytes()).await?;
        self.stream.write_all(b"\r\n").await?;
        self.stream.flush().await?;
        Ok(())
    }
}
