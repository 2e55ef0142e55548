//! One message over an open SMTP session, with command pipelining (RFC 2920) when the
//! server offers it: MAIL, RCPT and DATA go out in one write and their replies are read
//! together, so a message costs two round trips instead of four. lettre speaks the rest
//! of the protocol; it does not pipeline, and does not report PIPELINING in its
//! `ServerInfo`, so the EHLO reply is asked for once more when a session opens.

use std::fmt::{self, Display};

use lettre::address::Envelope;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, ServerInfo,
};
use lettre::transport::smtp::response::Response;

use super::refusal::Stage;
use super::transport::HandOver;

/// Why a message was not accepted.
#[derive(Debug)]
pub enum Failure {
    /// The reply to this stage's command was a refusal, or the connection failed there.
    At(Stage, Error),
    /// The server cannot take this message at all; nothing was sent.
    Unsupported(&'static str),
    /// The message's [`HandOver`] said no: its body was not sent.
    NotHanded(String),
}

impl Failure {
    fn at(stage: Stage) -> impl Fn(Error) -> Failure {
        move |error| Failure::At(stage, error)
    }
}

/// Whether the server lists PIPELINING in its EHLO reply. EHLO may be repeated at any
/// point outside a mail transaction (RFC 5321 4.1.4); call it before AUTH.
pub async fn offers_pipelining(
    connection: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, Error> {
    let reply = connection.command(Ehlo::new(hello.clone())).await?;
    Ok(lists_pipelining(&reply))
}

fn lists_pipelining(reply: &Response) -> bool {
    reply
        .message()
        .skip(1)
        .any(|line| line.split_whitespace().next() == Some("PIPELINING"))
}

/// Sends one message, reporting which command a refusal answered (lettre's own `send`
/// does not say). With pipelining, a failure leaves the session out of step (replies
/// may still be on their way, the server may be waiting for a body), so the caller
/// must drop the session, not reuse it or send QUIT on it. `hand_over` runs while the
/// envelope's replies are awaited; the body follows only when both succeeded.
pub async fn send(
    connection: &mut AsyncSmtpConnection,
    pipelining: bool,
    envelope: &Envelope,
    raw: &[u8],
    hand_over: &dyn HandOver,
) -> Result<Response, Failure> {
    // SMTPUTF8 and 8BITMIME parameters are needed only for the rare message that is
    // not ASCII; those go one command at a time.
    match std::str::from_utf8(raw) {
        Ok(text) if pipelining && text.is_ascii() && is_ascii(envelope) => {
            send_pipelined(connection, envelope, text, hand_over).await
        }
        _ => send_in_turn(connection, envelope, raw, hand_over).await,
    }
}

/// MAIL, RCPT and DATA in one write, their replies read together, then the message.
async fn send_pipelined(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    text: &str,
    hand_over: &dyn HandOver,
) -> Result<Response, Failure> {
    let (refused, handed) = tokio::join!(
        pipelined_envelope(connection, envelope),
        hand_over.hand_over()
    );
    if let Some(failure) = refused {
        return Err(failure);
    }
    handed.map_err(Failure::NotHanded)?;
    connection
        .command(Payload(text))
        .await
        .map_err(Failure::at(Stage::Message))
}

/// MAIL, RCPT and DATA in one write; the first refusal among their replies, if any.
async fn pipelined_envelope(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
) -> Option<Failure> {
    let commands = Transaction {
        mail: Mail::new(envelope.from().cloned(), Vec::new()),
        rcpts: envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), Vec::new()))
            .collect(),
    };
    // The first reply is MAIL's; one per recipient and DATA's follow. All are read,
    // and the first refusal is the outcome.
    let mut refused = match connection.command(commands).await {
        Err(error) if is_lost(&error) => return Some(Failure::At(Stage::Mail, error)),
        result => result.err().map(Failure::at(Stage::Mail)),
    };
    let later = std::iter::repeat_n(Stage::Rcpt, envelope.to().len()).chain([Stage::Data]);
    for stage in later {
        if let Err(error) = connection.read_response().await {
            let lost = is_lost(&error);
            refused.get_or_insert(Failure::At(stage, error));
            if lost {
                break;
            }
        }
    }
    refused
}

/// One command at a time, as lettre's `send` does, but knowing which one failed.
async fn send_in_turn(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    raw: &[u8],
    hand_over: &dyn HandOver,
) -> Result<Response, Failure> {
    let options = mail_options(connection.server_info(), envelope, raw)?;
    let (started, handed) = tokio::join!(
        envelope_in_turn(connection, envelope, options),
        hand_over.hand_over()
    );
    started?;
    handed.map_err(Failure::NotHanded)?;
    connection
        .message(raw)
        .await
        .map_err(Failure::at(Stage::Message))
}

async fn envelope_in_turn(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    options: Vec<MailParameter>,
) -> Result<(), Failure> {
    connection
        .command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(Failure::at(Stage::Mail))?;
    for to in envelope.to() {
        connection
            .command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(Failure::at(Stage::Rcpt))?;
    }
    connection
        .command(Data)
        .await
        .map_err(Failure::at(Stage::Data))?;
    Ok(())
}

/// MAIL FROM's parameters for what is not ASCII (RFC 6531, RFC 6152).
fn mail_options(
    server: &ServerInfo,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<Vec<MailParameter>, Failure> {
    let mut options = Vec::new();
    if !is_ascii(envelope) {
        if !server.supports_feature(Extension::SmtpUtfEight) {
            return Err(Failure::Unsupported(
                "an address is not ASCII and the SMTP server does not offer SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !server.supports_feature(Extension::EightBitMime) {
            return Err(Failure::Unsupported(
                "the message is not ASCII and the SMTP server does not offer 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

fn is_ascii(envelope: &Envelope) -> bool {
    let ascii = |address: &lettre::Address| AsRef::<str>::as_ref(address).is_ascii();
    envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii)
}

/// Not a reply but a broken connection or an unreadable answer: nothing more will come.
fn is_lost(error: &Error) -> bool {
    !error.is_permanent() && !error.is_transient()
}

/// DATA's payload: the message with every line's leading `.` doubled (as lettre's own
/// encoder does, which copies byte by byte), then the lone `.` that ends it. Sent as a
/// "command", so that lettre writes it in one piece and reads the reply.
struct Payload<'a>(&'a str);

impl Display for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
            f.write_str(&text[from..at + 2])?;
            f.write_str(".")?;
            from = at + 2;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

/// MAIL FROM, every RCPT TO and DATA as one piece of text: lettre writes a command in
/// one write.
struct Transaction {
    mail: Mail,
    rcpts: Vec<Rcpt>,
}

impl Display for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mail)?;
        for rcpt in &self.rcpts {
            write!(f, "{rcpt}")?;
        }
        write!(f, "{Data}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::Address;

    fn ehlo_reply(lines: &[&str]) -> Response {
        let (last, first) = lines.split_last().expect("a line");
        let mut text: String = first.iter().map(|l| format!("250-{l}\r\n")).collect();
        text.push_str(&format!("250 {last}\r\n"));
        text.parse().expect("an EHLO reply")
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_reply() {
        assert!(lists_pipelining(&ehlo_reply(&[
            "mx.example.com",
            "8BITMIME",
            "PIPELINING"
        ])));
        assert!(!lists_pipelining(&ehlo_reply(&[
            "mx.example.com",
            "8BITMIME",
            "SIZE 1000"
        ])));
        // The greeting line names the server; a server named PIPELINING offers nothing.
        assert!(!lists_pipelining(&ehlo_reply(&["PIPELINING"])));
    }

    #[test]
    fn the_payload_doubles_leading_dots_and_ends_with_a_lone_dot() {
        let payload = Payload(".a\r\n.b\r\n\r\n.\r\nx.y\n.z\r\n..").to_string();
        assert_eq!(payload, "..a\r\n..b\r\n\r\n..\r\nx.y\n.z\r\n...\r\n.\r\n");
        assert_eq!(Payload("").to_string(), "\r\n.\r\n");
    }

    #[test]
    fn the_transaction_is_three_commands_in_order() {
        let from: Address = "news@shop.example.com".parse().unwrap();
        let to: Address = "ann@example.com".parse().unwrap();
        let text = Transaction {
            mail: Mail::new(Some(from), Vec::new()),
            rcpts: vec![Rcpt::new(to, Vec::new())],
        }
        .to_string();
        assert_eq!(
            text,
            "MAIL FROM:<news@shop.example.com>\r\nRCPT TO:<ann@example.com>\r\nDATA\r\n"
        );
    }
}
