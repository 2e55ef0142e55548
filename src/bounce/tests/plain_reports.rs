//! Reports written for the project in the shapes the non-DSN rules and the DSN
//! recipient rules read: plain-text gateway notices, Gmail's numbered SMTP steps,
//! reports with broken or missing headers. Each expectation is the reference's (Sisimai
//! 4.25.15) reading of the same message, except where a test says otherwise.

use super::*;

/// (class, recipient) of each bounce.
fn read(raw: &str) -> Vec<(BounceClass, Option<String>)> {
    classify(raw.as_bytes())
        .into_iter()
        .map(|b| (b.class, b.recipient))
        .collect()
}

fn one(class: BounceClass, recipient: &str) -> Vec<(BounceClass, Option<String>)> {
    vec![(class, Some(recipient.to_string()))]
}

#[test]
fn a_gateway_notice_without_a_dsn_is_a_bounce() {
    // The reference reads nothing from this short copy; from the real notice it reads
    // a soft bounce ("onhold") for the named recipient, as here.
    assert_eq!(
        read(EXCHANGE_PLAIN),
        one(BounceClass::Soft, "reader@corp.reader.test")
    );
    assert_eq!(
        read(POSTPONED),
        one(BounceClass::Soft, "reader@reader.test")
    );
}

#[test]
fn gmail_state_numbers_name_the_refused_step() {
    assert_eq!(
        read(GMAIL_STATE_14),
        one(BounceClass::Hard, "gone@reader.test")
    );
    assert_eq!(
        read(GMAIL_STATE_17),
        one(BounceClass::Soft, "gone@reader.test")
    );
}

#[test]
fn blank_lines_before_the_headers_do_not_hide_the_report() {
    assert_eq!(
        read(GMAIL_BLANK_FIRST_LINE),
        one(BounceClass::Hard, "gone@reader.test")
    );
}

#[test]
fn a_delivery_status_report_is_a_bounce_by_its_structure() {
    assert_eq!(
        read(REPORT_WITHOUT_FROM),
        one(BounceClass::Soft, "reader@reader.test")
    );
}

#[test]
fn the_original_address_a_report_names_is_the_recipient() {
    assert_eq!(
        read(MESSAGING_SERVER),
        one(BounceClass::Soft, "reader@reader.test")
    );
}

#[test]
fn a_feedback_report_with_a_broken_boundary_still_names_its_recipient() {
    assert_eq!(
        read(ARF_UNFOLDED_BOUNDARY),
        one(BounceClass::Complaint, "reader@isp.test")
    );
}

#[test]
fn not_receiving_a_copy_does_not_start_the_returned_copy() {
    assert_eq!(read(MDAEMON), one(BounceClass::Soft, "reader@reader.test"));
}

#[test]
fn these_reports_read_the_same_in_every_line_ending() {
    let all = [
        EXCHANGE_PLAIN,
        GMAIL_STATE_14,
        GMAIL_BLANK_FIRST_LINE,
        REPORT_WITHOUT_FROM,
        MESSAGING_SERVER,
        ARF_UNFOLDED_BOUNDARY,
        MDAEMON,
        POSTPONED,
    ];
    for raw in all {
        let lf = classify(raw.as_bytes());
        for ending in [LineEnding::Crlf, LineEnding::Cr] {
            assert_eq!(classify(&ending.apply(raw.as_bytes())), lf);
        }
    }
}

/// Exchange-era gateway text with no DSN: "Did not reach the following recipient".
const EXCHANGE_PLAIN: &str = r#"From: Postmaster <>
To: bounces@sender.test
Subject: Undeliverable: reader@corp.reader.test
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <u1@gw.reader.test>
Content-Type: text/plain; charset="us-ascii"

Your Message

To:      <reader@corp.reader.test>
Subject: Weekly letter
Date:    Mon, 07 Dec 2026 09:59:00 +0000

Did not reach the following recipient: reader@corp.reader.test
"#;

/// Gmail relaying another server's refusal, with the step as a state number.
const GMAIL_STATE_14: &str = r#"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: list@sender.test
Subject: Delivery Status Notification (Failure)
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <g1@google.test>
Content-Type: text/plain; charset=UTF-8

Delivery to the following recipient failed permanently:

     gone@reader.test

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient domain. The error that the other server returned was: 550 550 Address unknown (state 14).

   ----- Original message -----

From: list@sender.test
To: gone@reader.test
Subject: Weekly letter
"#;

/// The same refusal, at state 17 (after DATA).
const GMAIL_STATE_17: &str = r#"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: list@sender.test
Subject: Delivery Status Notification (Failure)
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <g2@google.test>
Content-Type: text/plain; charset=UTF-8

Delivery to the following recipient failed permanently:

     gone@reader.test

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient domain. The error that the other server returned was: 550 550 Address unknown (state 17).

   ----- Original message -----

From: list@sender.test
To: gone@reader.test
Subject: Weekly letter
"#;

/// A stored Gmail report whose first line is blank spaces.
const GMAIL_BLANK_FIRST_LINE: &str = r#"      
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: list@sender.test
Subject: Delivery Status Notification (Failure)
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <g3@google.test>
Content-Type: text/plain; charset=UTF-8

Delivery to the following recipient failed permanently:

     gone@reader.test

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient domain. The error that the other server returned was: 550 5.1.1 The email account that you tried to reach does not exist.

   ----- Original message -----

From: list@sender.test
To: gone@reader.test
Subject: Weekly letter
"#;

/// A multipart/report of delivery status with no From, an encoded Subject and an empty status part.
const REPORT_WITHOUT_FROM: &str = r#"Return-Path: <MAILER-DAEMON@relay.sender.test>
Date: Mon, 07 Dec 2026 10:00:00 +0100
Message-Id: <s1@gw.reader.test>
Subject: =?UTF-8?Q?Utilisateur_non_recens=C3=A9?=
To: list@sender.test
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r1"

--r1
Content-Type: text/plain; charset="UTF-8"

A message could not be delivered to:
reader@reader.test
Subject: Weekly letter
The address above does not exist.

--r1
Content-Type: message/delivery-status

Reporting-MTA: gw.reader.test

--r1--
"#;

/// Messaging Server (PMDF) naming the address the sender wrote as "Original address".
const MESSAGING_SERVER: &str = r#"From: PMDF e-Mail Interconnect <postmaster@mail.reader.test>
To: list@sender.test
Subject: Delivery Notification: Delivery has failed
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-id: <m1@mail.reader.test>
MIME-version: 1.0
Content-type: multipart/report; report-type=delivery-status; boundary="m2"

--m2
Content-type: text/plain; charset=us-ascii

This report relates to a message you sent with the following header fields:

  From: list@sender.test
  To: reader@reader.test

Your message cannot be delivered to the following recipients:

  Recipient address: R123@mail.reader.test
  Original address: reader@reader.test
-SYSTEM-F-EXDISKQUOTA, disk quota exceeded

--m2
Content-type: message/DELIVERY-STATUS

Reporting-MTA: dns;mail.reader.test

Action: failed
Status: 5.0.0
Original-recipient: rfc822;reader@reader.test
Final-recipient: rfc822;R123@mail.reader.test

--m2--
"#;

/// A feedback report whose boundary parameter was not folded onto its own line.
const ARF_UNFOLDED_BOUNDARY: &str = r#"From: <abuse@isp.test>
Date: Mon, 07 Dec 2026 10:00:00 +0000
Subject: FW: Weekly letter
To: <fbl@sender.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
boundary="f1"

--f1
Content-Type: text/plain

This is an email abuse report.

--f1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Reporter/1.0
Version: 1
Original-Mail-From: <list@sender.test>
Original-Rcpt-To: <reader@isp.test>

--f1--
"#;

/// MDaemon listing the failed address after "> ".
const MDAEMON: &str = r#"From: MDaemon@mx.reader.test
To: list@sender.test
Subject: Permanent Delivery Failure
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <d1@mx.reader.test>
Content-Type: text/plain; charset=US-ASCII

The attached message had PERMANENT fatal delivery errors!

YOUR MESSAGE WAS NOT DELIVERED!

The following addresses did NOT receive a copy of your message:

> reader@reader.test

--- Session Transcript ---
 250 <list@sender.test>, Sender ok
 RCPT To:<reader@reader.test>
 552 Mailbox full
"#;

/// A delay notice for a full mailbox, from a Postmaster address.
const POSTPONED: &str = r#"From: <Postmaster@reader.test>
To: <list@sender.test>
Subject: Mail Delivery Warning
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <p1@reader.test>
Content-Type: text/plain; charset="us-ascii"

This is an advisory-only email.  Please do not reply to it.

Delivery of email to this address

"reader@reader.test"

has been postponed due to a full mailbox.

We will continue to try to deliver your message over the next few days.
"#;
