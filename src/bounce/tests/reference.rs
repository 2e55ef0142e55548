//! Messages written for the project in the shapes whose reading depends on who wrote
//! them or which SMTP step failed. The expected class of each is the reference's
//! (Sisimai 4.25.15) reading of the same message, so these check that the rules carry
//! over to mail they were not written from.

use super::*;

/// A Postfix DSN for one recipient: `command` is the SMTP step the remote host refused,
/// if the report names it.
fn postfix_dsn(
    rcpt: &str,
    status: &str,
    host: &str,
    diagnostic: &str,
    command: Option<&str>,
) -> String {
    let said = match command {
        Some(command) => format!("{diagnostic} (in reply to {command} command)"),
        None => diagnostic.to_string(),
    };
    format!(
        "Return-Path: <>\n\
         From: MAILER-DAEMON@mta.sender.test (Mail Delivery System)\n\
         To: bounces@sender.test\n\
         Subject: Undelivered Mail Returned to Sender\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\n\
         Message-Id: <report@mta.sender.test>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\
         \n\
         --b1\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         This is the mail system at host mta.sender.test.\n\
         \n\
         I'm sorry to have to inform you that your message could not\n\
         be delivered to one or more recipients. It's attached below.\n\
         \n\
         <{rcpt}>: host {host}[192.0.2.10] said: {said}\n\
         \n\
         --b1\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; mta.sender.test\n\
         \n\
         Final-Recipient: rfc822; {rcpt}\n\
         Action: failed\n\
         Status: {status}\n\
         Remote-MTA: dns; {host}\n\
         Diagnostic-Code: smtp; {diagnostic}\n\
         \n\
         --b1\n\
         Content-Type: text/rfc822-headers\n\
         \n\
         From: news@sender.test\n\
         To: {rcpt}\n\
         Subject: Spring news\n\
         Message-Id: <spring@sender.test>\n\
         \n\
         --b1--\n"
    )
}

/// The class and recipient of the one bounce `raw` holds.
fn read(raw: &str) -> (BounceClass, Option<String>) {
    let bounces = classify(raw.as_bytes());
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    (bounces[0].class, bounces[0].recipient.clone())
}

fn class(raw: &str) -> BounceClass {
    read(raw).0
}

#[test]
fn user_unknown_is_hard_only_when_the_recipient_was_refused() {
    let at = |command| {
        postfix_dsn(
            "gone@reader.test",
            "5.0.0",
            "mx.reader.test",
            "550 Unknown user gone@reader.test",
            command,
        )
    };
    assert_eq!(class(&at(Some("RCPT TO"))), BounceClass::Hard);
    // After the message was sent, "unknown user" is a filter speaking.
    assert_eq!(class(&at(Some("end of DATA"))), BounceClass::Soft);
    // Nothing says which step failed, and no X.1.1 status says the mailbox is missing.
    let unsaid = postfix_dsn(
        "gone@reader.test",
        "5.0.0",
        "mx.reader.test",
        "550 No such user here",
        None,
    );
    assert_eq!(class(&unsaid), BounceClass::Soft);
}

#[test]
fn kddi_tells_filtered_mail_by_the_missing_address() {
    let reply = |diagnostic| {
        postfix_dsn(
            "phone@ezweb.ne.jp",
            "5.0.0",
            "lsean.ezweb.ne.jp",
            diagnostic,
            None,
        )
    };
    assert_eq!(class(&reply("550 : User unknown")), BounceClass::Soft);
    assert_eq!(
        class(&reply("550 <phone@ezweb.ne.jp>: User unknown")),
        BounceClass::Hard
    );
}

#[test]
fn orange_reason_codes_decide() {
    let unknown = postfix_dsn(
        "lecteur@orange.fr",
        "5.5.0",
        "smtp-in.orange.fr",
        "550 5.5.0 Adresse destinataire invalide. Invalid recipient. OFR_416",
        None,
    );
    assert_eq!(class(&unknown), BounceClass::Hard);
    let full = postfix_dsn(
        "lecteur@orange.fr",
        "5.0.0",
        "smtp-in.orange.fr",
        "552 Mailbox quota reached OFR_417",
        None,
    );
    assert_eq!(class(&full), BounceClass::Soft);
}

#[test]
fn a_malformed_dns_reply_is_network_trouble_not_a_missing_domain() {
    let raw = postfix_dsn(
        "someone@reader.test",
        "5.4.4",
        "mta.sender.test",
        "Name service error for name=reader.test type=MX: Malformed or unexpected name server reply",
        None,
    );
    assert_eq!(class(&raw), BounceClass::Soft);
}

#[test]
fn a_failed_local_delivery_program_is_a_mailer_error() {
    assert_eq!(
        read(MAIL_LOCAL),
        (BounceClass::Soft, Some("local@reader.test".to_string()))
    );
}

#[test]
fn amazon_ses_receiving_rules_refuse_as_filters() {
    assert_eq!(
        read(SES_INBOUND_RULE),
        (BounceClass::Soft, Some("nobody@reader.test".to_string()))
    );
}

#[test]
fn exchange_names_an_unknown_recipient_by_its_code() {
    assert_eq!(
        read(EXCHANGE_MSEXCH),
        (BounceClass::Hard, Some("left@corp.reader.test".to_string()))
    );
}

#[test]
fn the_reference_s_wordings_of_a_disabled_account_or_an_oversized_message_outrank_5_1_1() {
    let refused = |diagnostic| {
        postfix_dsn(
            "reader@reader.test",
            "5.1.1",
            "mx.reader.test",
            diagnostic,
            Some("RCPT TO"),
        )
    };
    let suspended = refused("550 5.1.1 <reader@reader.test>: user suspended by the administrator");
    assert_eq!(class(&suspended), BounceClass::Soft);
    let too_big = refused("552 5.1.1 exceeded maximum inbound message size for this list");
    assert_eq!(class(&too_big), BounceClass::Soft);
    let locked = refused("550 5.1.1 Mailbox is frozen until the owner logs in");
    assert_eq!(class(&locked), BounceClass::Soft);
}

#[test]
fn a_missing_mailbox_in_the_reference_s_words_at_rcpt_is_hard_whatever_else_it_says() {
    let at = |diagnostic, command| {
        postfix_dsn(
            "gone@reader.test",
            "5.0.0",
            "mx.reader.test",
            diagnostic,
            command,
        )
    };
    for diagnostic in [
        "550 Bad-Recipient, see https://mx.reader.test/refusals",
        "550 gone@reader.test is not an active address at this host",
        "553 sorry, badrcptto: that address is blocked (#5.7.1)",
        "550 5.7.1 Recipient address rejected: user gone@reader.test does not exist",
    ] {
        assert_eq!(
            class(&at(diagnostic, Some("RCPT TO"))),
            BounceClass::Hard,
            "{diagnostic}"
        );
        // Said to the message, the same words are a filter's.
        assert_eq!(
            class(&at(diagnostic, Some("end of DATA"))),
            BounceClass::Soft,
            "{diagnostic}"
        );
    }
}

#[test]
fn a_multi_line_reply_quoting_the_address_does_not_end_the_report_on_it() {
    let raw = postfix_dsn(
        "gone@reader.test",
        "5.0.0",
        "mx.reader.test",
        "550-gone@reader.test: no such user here\n    550 see https://mx.reader.test/help",
        Some("RCPT TO"),
    );
    assert_eq!(
        read(&raw),
        (BounceClass::Hard, Some("gone@reader.test".to_string()))
    );
}

#[test]
fn a_delay_is_read_by_its_reason_like_a_failure() {
    let delayed = |status, diagnostic, command| {
        postfix_dsn(
            "gone@reader.test",
            status,
            "mx.reader.test",
            diagnostic,
            command,
        )
        .replace("Action: failed", "Action: delayed")
    };
    let unknown = delayed(
        "4.1.1",
        "450 4.1.1 <gone@reader.test>: Recipient address rejected: unknown user",
        Some("RCPT TO"),
    );
    assert_eq!(class(&unknown), BounceClass::Hard);
    // The reference's wording of a missing domain, under a temporary code.
    let no_domain = delayed(
        "4.4.3",
        "Host or domain name not found. Name service error for name=reader.test type=MX: Host not found, try again",
        None,
    );
    assert_eq!(class(&no_domain), BounceClass::Hard);
    let waiting = delayed(
        "4.4.1",
        "connect to mx.reader.test: Connection timed out",
        None,
    );
    assert_eq!(class(&waiting), BounceClass::Soft);
}

#[test]
fn a_user_unknown_code_outranks_the_step_and_trouble_on_the_way() {
    let refused = |diagnostic, command| {
        postfix_dsn(
            "gone@reader.test",
            "5.1.1",
            "mx.reader.test",
            diagnostic,
            command,
        )
    };
    let at_mail = refused(
        "550 5.1.1 <gone@reader.test>: user unknown",
        Some("MAIL FROM"),
    );
    assert_eq!(class(&at_mail), BounceClass::Hard);
    let looping = refused(
        "550 5.1.1 Mail forwarding loop for gone@reader.test",
        Some("RCPT TO"),
    );
    assert_eq!(class(&looping), BounceClass::Hard);
    // A refusal of the sender at MAIL FROM is still one.
    let sender = refused(
        "550 5.1.1 Sender address rejected: domain of sender not found",
        Some("MAIL FROM"),
    );
    assert_eq!(class(&sender), BounceClass::Soft);
}

#[test]
fn a_code_the_server_quoted_replaces_the_status_field() {
    let raw = postfix_dsn(
        "reader@reader.test",
        "5.1.1",
        "mx.reader.test",
        "550 5.7.1 Message refused by local policy",
        Some("RCPT TO"),
    );
    assert_eq!(class(&raw), BounceClass::Soft);
}

#[test]
fn a_sendmail_transcript_names_the_refused_step() {
    let rcpt = SENDMAIL_TRANSCRIPT.replace("{COMMAND}", "RCPT To:<gone@reader.test>");
    assert_eq!(
        read(&rcpt),
        (BounceClass::Hard, Some("gone@reader.test".to_string()))
    );
    let data = SENDMAIL_TRANSCRIPT.replace("{COMMAND}", "DATA");
    assert_eq!(
        read(&data),
        (BounceClass::Soft, Some("gone@reader.test".to_string()))
    );
}

#[test]
fn these_messages_read_the_same_in_every_line_ending() {
    let transcript = SENDMAIL_TRANSCRIPT.replace("{COMMAND}", "RCPT To:<gone@reader.test>");
    for raw in [
        MAIL_LOCAL,
        SES_INBOUND_RULE,
        EXCHANGE_MSEXCH,
        transcript.as_str(),
    ] {
        let lf = classify(raw.as_bytes());
        for ending in [LineEnding::Crlf, LineEnding::Cr] {
            assert_eq!(classify(&ending.apply(raw.as_bytes())), lf);
        }
    }
}

/// Sendmail quoting mail.local's refusal, with an X-Unix diagnostic.
const MAIL_LOCAL: &str = r#"Return-Path: <>
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.reader.test>
To: bounces@sender.test
Subject: Returned mail: see transcript for details
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-Id: <b1@mx.reader.test>
Auto-Submitted: auto-generated (failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b2"

--b2

The original message was received at Mon, 07 Dec 2026 09:59:58 +0000
from mta.sender.test [192.0.2.20]

   ----- The following addresses had permanent fatal errors -----
<local@reader.test>
    (reason: 554 5.0.0 Service unavailable)

   ----- Transcript of session follows -----
mail.local: unknown user: local
554 5.0.0 <local@reader.test>... Service unavailable

--b2
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.reader.test
Arrival-Date: Mon, 07 Dec 2026 09:59:58 +0000

Final-Recipient: RFC822; local@reader.test
Action: failed
Status: 5.0.0
Diagnostic-Code: X-Unix; 554 5.0.0 Service unavailable

--b2
Content-Type: message/rfc822

Return-Path: <bounces@sender.test>
From: news@sender.test
To: local@reader.test
Subject: Spring news
Message-Id: <spring-b1@sender.test>
Date: Mon, 07 Dec 2026 09:59:00 +0000

Hello.

--b2--
"#;

/// An Amazon SES receiving rule set's bounce action.
const SES_INBOUND_RULE: &str = r#"Return-Path: <>
From: postmaster@reader.test
To: bounces@sender.test
Subject: Delivery Status Notification (Failure)
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <c1@email.amazonses.com>
MIME-Version: 1.0
Content-Type: multipart/report; boundary="b3"; report-type=delivery-status
X-SES-Outgoing: 2026.12.07-192.0.2.30
Feedback-ID: 1.us-west-2.example=:AmazonSES

--b3
Content-Type: text/plain; charset=us-ascii
Content-Description: Notification

This message could not be delivered.
--b3
Content-Type: message/delivery-status
Content-Description: Delivery Status Notification

Reporting-MTA: dns; inbound-smtp.us-west-2.amazonaws.com
Arrival-Date: Mon, 07 Dec 2026 09:59:58 +0000

Action: failed
Final-Recipient: rfc822; nobody@reader.test
Diagnostic-Code: smtp; 550 5.1.1 Mailbox does not exist
Status: 5.1.1

--b3
Content-Type: text/rfc822-headers
Content-Description: Undelivered Message Headers

From: news@sender.test
To: nobody@reader.test
Subject: Spring news
Message-ID: <spring-c1@sender.test>
Date: Mon, 07 Dec 2026 09:59:00 +0000

--b3--
"#;

/// Exchange 5.5/2000 Internet Mail Service.
const EXCHANGE_MSEXCH: &str = r#"Return-Path: <>
From: System Administrator <postmaster@corp.reader.test>
To: bounces@sender.test
Subject: Undeliverable: Spring news
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <d1@corp.reader.test>
X-Mailer: Internet Mail Service (5.5.2653.19)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b4"

--b4
Content-Type: text/plain

Your message

  To:      Left Company
  Subject: Spring news
  Sent:    Mon, 07 Dec 2026 09:59:00 +0000

did not reach the following recipient(s):

left@corp.reader.test on Mon, 07 Dec 2026 10:00:00 +0000
    The recipient name is not recognized
    MSEXCH:IMS:Corp:READER:MAIL1 0 (000C05A6) Unknown Recipient

--b4
Content-Type: message/rfc822

From: news@sender.test
To: left@corp.reader.test
Subject: Spring news
Message-ID: <spring-d1@sender.test>
Date: Mon, 07 Dec 2026 09:59:00 +0000

Hello.

--b4--
"#;

/// Sendmail's report of a refusal it relayed, the step shown only in the transcript;
/// `{COMMAND}` is the last command sent.
const SENDMAIL_TRANSCRIPT: &str = r#"Return-Path: <>
From: Mail Delivery Subsystem <MAILER-DAEMON@relay.sender.test>
To: bounces@sender.test
Subject: Returned mail: see transcript for details
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-Id: <b4@relay.sender.test>
Auto-Submitted: auto-generated (failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b5"

--b5

The original message was received at Mon, 07 Dec 2026 09:59:58 +0000
from mta.sender.test [192.0.2.20]

   ----- The following addresses had permanent fatal errors -----
<gone@reader.test>
    (reason: 550 5.7.1 No such user gone)

   ----- Transcript of session follows -----
... while talking to mx.reader.test.:
>>> {COMMAND}
<<< 550 5.7.1 No such user gone
550 5.1.1 <gone@reader.test>... User unknown

--b5
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.sender.test
Arrival-Date: Mon, 07 Dec 2026 09:59:58 +0000

Final-Recipient: RFC822; gone@reader.test
Action: failed
Status: 5.7.1
Remote-MTA: DNS; mx.reader.test
Diagnostic-Code: SMTP; 550 5.7.1 No such user gone

--b5
Content-Type: message/rfc822

Return-Path: <bounces@sender.test>
From: news@sender.test
To: gone@reader.test
Subject: Spring news
Message-Id: <spring-b4@sender.test>
Date: Mon, 07 Dec 2026 09:59:00 +0000

Hello.

--b5--
"#;
