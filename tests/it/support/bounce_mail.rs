//! Bounces written for the tests: an RFC 3464 delivery status notification and an
//! RFC 5965 complaint, sent to a return path and quoting the original's Message-ID.

/// A DSN sent to `to`, reporting `recipient` with `status` and `diagnostic`, quoting
/// the headers of a message with `message_id`.
pub fn dsn(to: &str, recipient: &str, status: &str, diagnostic: &str, message_id: &str) -> Vec<u8> {
    let action = if status.starts_with('5') {
        "failed"
    } else {
        "delayed"
    };
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-{status}-{recipient}@mx.example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered to {recipient}.\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Shop <news@shop.example.com>\r\n\
         To: {recipient}\r\n\
         Subject: Picks\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

/// A feedback report: `recipient` marked the message `message_id` as spam.
pub fn complaint(to: &str, recipient: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: Feedback Loop <fbl@isp.example.net>\r\n\
         To: {to}\r\n\
         Subject: Abuse report\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"b4\"\r\n\
         \r\n\
         --b4\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an email abuse report.\r\n\
         \r\n\
         --b4\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: <{recipient}>\r\n\
         \r\n\
         --b4\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         From: Shop <news@shop.example.com>\r\n\
         To: {recipient}\r\n\
         Subject: Picks\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         Buy.\r\n\
         --b4--\r\n"
    )
    .into_bytes()
}
