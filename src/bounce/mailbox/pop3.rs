//! A minimal POP3 client (RFC 1939): USER/PASS, LIST, RETR, DELE, QUIT. The server
//! removes what DELE marked only at QUIT: a session cut short leaves every message.

use super::error::MailboxError;
use super::wire::Wire;
use super::{Fetched, Listed, MailboxUrl, Removal};

pub(super) struct Pop3 {
    wire: Wire,
    deleted: usize,
}

impl Pop3 {
    /// Reads the greeting and logs in.
    pub async fn open(wire: Wire, url: &MailboxUrl) -> Result<Pop3, MailboxError> {
        let mut pop = Pop3 { wire, deleted: 0 };
        let greeting = pop.wire.line("the greeting").await?;
        if !greeting.starts_with(b"+OK") {
            return Err(pop.wire.refused("the connection", &greeting));
        }
        for (name, value) in [("USER", url.user.as_str()), ("PASS", url.password())] {
            if value.contains(['\r', '\n']) {
                return Err(MailboxError::Settings(format!(
                    "POP3 {name}: a line break cannot be sent"
                )));
            }
            pop.ok(name, &format!("{name} {value}")).await?;
        }
        Ok(pop)
    }

    /// Every message with its size, as LIST says.
    pub async fn messages(&mut self) -> Result<Vec<Listed>, MailboxError> {
        self.ok("LIST", "LIST").await?;
        let mut listed = Vec::new();
        let mut text_left = self.wire.limits().max_line * 2;
        loop {
            let line = self.wire.line("LIST").await?;
            if line == b"." {
                return Ok(listed);
            }
            text_left = text_left.checked_sub(line.len() + 2).ok_or_else(|| {
                self.wire
                    .protocol("LIST", "a listing longer than the line limit allows".into())
            })?;
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_ascii_whitespace();
            let id: Option<u32> = words.next().and_then(|n| n.parse().ok());
            let size: Option<u64> = words.next().and_then(|s| s.parse().ok());
            let Some(id) = id else {
                let detail = format!("the line '{}'", super::error::shown(&line));
                return Err(self.wire.protocol("LIST", detail));
            };
            listed.push(Listed { id, size });
        }
    }

    /// The message, dot-unstuffed, with CRLF line ends.
    pub async fn fetch(&mut self, id: u32) -> Result<Fetched, MailboxError> {
        let answer = self.command("RETR", &format!("RETR {id}")).await?;
        if let Err(refusal) = answer {
            return Ok(Fetched::Unreadable(super::error::shown(&refusal)));
        }
        let limit = self.wire.limits().max_message_size;
        let mut message = Vec::new();
        let mut total: u64 = 0;
        loop {
            let line = self.wire.line("RETR").await?;
            if line == b"." {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            total += line.len() as u64 + 2;
            if total <= limit as u64 {
                message.extend_from_slice(line);
                message.extend_from_slice(b"\r\n");
            }
        }
        Ok(match total <= limit as u64 {
            true => Fetched::Message(message),
            false => Fetched::TooLarge(total),
        })
    }

    /// Marks the message; the server deletes it at QUIT.
    pub async fn remove(&mut self, id: u32) -> Result<Removal, MailboxError> {
        self.ok("DELE", &format!("DELE {id}")).await?;
        self.deleted += 1;
        Ok(Removal::Pending)
    }

    /// QUIT, which commits the deletions.
    pub async fn finish(mut self) -> Result<(), MailboxError> {
        match self.ok("QUIT", "QUIT").await {
            Err(error) if self.deleted > 0 => Err(error),
            Err(error) => {
                tracing::debug!(%error, "bounce mailbox: QUIT");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    async fn ok(&mut self, name: &str, line: &str) -> Result<Vec<u8>, MailboxError> {
        match self.command(name, line).await? {
            Ok(text) => Ok(text),
            Err(refusal) => Err(self.wire.refused(name, &refusal)),
        }
    }

    /// Sends `line` (`name` alone appears in errors); Ok(text after +OK) or
    /// Err(the -ERR line).
    async fn command(
        &mut self,
        name: &str,
        line: &str,
    ) -> Result<Result<Vec<u8>, Vec<u8>>, MailboxError> {
        self.wire
            .send(format!("{line}\r\n").as_bytes(), name)
            .await?;
        let answer = self.wire.line(name).await?;
        if let Some(text) = answer.strip_prefix(b"+OK") {
            return Ok(Ok(text.trim_ascii().to_vec()));
        }
        if answer.starts_with(b"-ERR") {
            return Ok(Err(answer));
        }
        let detail = format!("the answer '{}'", super::error::shown(&answer));
        Err(self.wire.protocol(name, detail))
    }
}
