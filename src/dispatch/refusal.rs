//! Whom a permanent (5xx) SMTP refusal is about: this recipient's mailbox, this
//! recipient in some other way, or the sender and the message, which every recipient
//! of the campaign would be refused for.
//!
//! The rule, from the command the reply answered and its RFC 3463 enhanced status code:
//!
//! | reply to                   | enhanced code                  | about      | outcome                      |
//! |----------------------------|--------------------------------|------------|------------------------------|
//! | any command                | 5.1.7, 5.1.8 (sender address)  | sender     | campaign paused              |
//! | any command                | 5.7.x (policy, authentication) | sender     | campaign paused              |
//! | session set-up, MAIL FROM  | any or none                    | sender     | campaign paused              |
//! | RCPT TO                    | other 5.1.x (mailbox address)  | mailbox    | failed, address suppressed   |
//! | RCPT TO                    | other, or none                 | recipient  | failed                       |
//! | DATA, or after the message | 5.1.x, 5.2.x (mailbox)         | recipient  | failed                       |
//! | DATA, or after the message | other, or none                 | message    | campaign paused              |
//!
//! Only a reply to RCPT TO may suppress an address: a server such as Postfix with
//! `smtpd_delay_reject` answers RCPT TO with the sender's problem (`553 5.1.8 Sender
//! address rejected: Domain not found`), so the code must name the mailbox too. mailcast
//! sends every message to one recipient, so a refusal of the message after DATA names
//! no other recipient; it still never suppresses (only a reply to RCPT TO, or later a
//! delivery status notification about that mailbox, may).

/// The command a reply answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the session: greeting, EHLO, STARTTLS, AUTH.
    Session,
    Mail,
    Rcpt,
    Data,
    /// After the message's final dot.
    Message,
}

impl Stage {
    /// Whether the message may have reached the server: only once its body was sent.
    pub fn handed_over(self) -> bool {
        self == Stage::Message
    }

    pub fn command(self) -> &'static str {
        match self {
            Stage::Session => "session set-up",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message",
        }
    }
}

/// Whom a permanent refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// The recipient's mailbox does not exist (or its address is unusable): suppress.
    Mailbox,
    /// This recipient only (mailbox full, too many recipients …): fail this delivery.
    Recipient,
    /// The sender or the message: every recipient would be refused alike.
    Sender,
}

/// Applies the rule in this module's documentation. `code` is the enhanced status
/// code (`5.1.1`), when the reply had one.
pub fn about(stage: Stage, code: Option<&str>) -> About {
    let class = code.and_then(|c| c.split_once('.')).map(|(_, rest)| rest);
    let subject = class.and_then(|c| c.split('.').next());
    if matches!(class, Some("1.7" | "1.8")) || subject == Some("7") {
        return About::Sender;
    }
    match stage {
        Stage::Session | Stage::Mail => About::Sender,
        Stage::Rcpt if subject == Some("1") => About::Mailbox,
        Stage::Rcpt => About::Recipient,
        Stage::Data | Stage::Message if matches!(subject, Some("1" | "2")) => About::Recipient,
        Stage::Data | Stage::Message => About::Sender,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_mailbox_code_in_reply_to_rcpt_suppresses() {
        assert_eq!(about(Stage::Rcpt, Some("5.1.1")), About::Mailbox);
        assert_eq!(about(Stage::Rcpt, Some("5.1.10")), About::Mailbox);
        assert_eq!(about(Stage::Rcpt, Some("5.2.2")), About::Recipient);
        assert_eq!(about(Stage::Rcpt, None), About::Recipient);
        assert_eq!(about(Stage::Message, Some("5.1.1")), About::Recipient);
        assert_eq!(about(Stage::Data, Some("5.2.2")), About::Recipient);
    }

    #[test]
    fn sender_and_policy_codes_are_about_the_sender_whatever_the_command() {
        for stage in [Stage::Mail, Stage::Rcpt, Stage::Data, Stage::Message] {
            assert_eq!(about(stage, Some("5.1.8")), About::Sender, "{stage:?}");
            assert_eq!(about(stage, Some("5.1.7")), About::Sender, "{stage:?}");
            assert_eq!(about(stage, Some("5.7.1")), About::Sender, "{stage:?}");
            assert_eq!(about(stage, Some("5.7.26")), About::Sender, "{stage:?}");
        }
    }

    #[test]
    fn refusals_of_mail_from_the_session_or_the_content_are_about_the_sender() {
        assert_eq!(about(Stage::Mail, Some("5.1.1")), About::Sender);
        assert_eq!(about(Stage::Mail, None), About::Sender);
        assert_eq!(about(Stage::Session, None), About::Sender);
        assert_eq!(about(Stage::Message, Some("5.6.0")), About::Sender);
        assert_eq!(about(Stage::Message, Some("5.3.4")), About::Sender);
        assert_eq!(about(Stage::Data, None), About::Sender);
    }
}
