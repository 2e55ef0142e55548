use serde_json::{Value, json};

use super::*;
use crate::bounce::{BounceClass, parse};

fn read_event(provider: WebhookProvider, event: Value) -> Report {
    let event = WebhookEvent::new(provider, event)
        .expect("a valid event")
        .expect("an outcome");
    parse(&event.document())
}

fn class_of(provider: WebhookProvider, event: Value) -> BounceClass {
    read_event(provider, event).bounces[0].class
}

fn ignored(provider: WebhookProvider, event: Value) -> bool {
    WebhookEvent::new(provider, event)
        .expect("a valid event")
        .is_none()
}

fn refused(provider: WebhookProvider, event: Value) -> String {
    WebhookEvent::new(provider, event)
        .expect_err("an invalid event")
        .to_string()
}

fn sendgrid_bounce(kind: &str, reason: &str) -> Value {
    json!({
        "email": "ann@example.com",
        "event": "bounce",
        "type": kind,
        "status": "5.0.0",
        "reason": reason,
        "sg_event_id": "ZGVsaXZlcmVk",
        "smtp-id": "<7.12.mailcast@shop.example.com>",
        "timestamp": 1_700_000_000
    })
}

#[test]
fn the_document_is_the_same_bytes_whatever_the_key_order() {
    let a: Value =
        serde_json::from_str(r#"{"event":"spamreport","email":"a@example.com","sg_event_id":"x"}"#)
            .unwrap();
    let b: Value =
        serde_json::from_str(r#"{"sg_event_id":"x","email":"a@example.com","event":"spamreport"}"#)
            .unwrap();
    let doc = |v| {
        WebhookEvent::new(WebhookProvider::SendGrid, v)
            .unwrap()
            .unwrap()
            .document()
    };
    let first = doc(a);
    assert_eq!(first, doc(b));
    assert_eq!(
        String::from_utf8(first).unwrap(),
        r#"{"webhook":"sendgrid","event":{"email":"a@example.com","event":"spamreport","sg_event_id":"x"}}"#
    );
}

#[test]
fn a_document_reads_as_its_provider_event_and_mail_does_not() {
    let report = read_event(
        WebhookProvider::SendGrid,
        sendgrid_bounce("bounce", "550 5.1.1 <ann@example.com>: user unknown"),
    );
    assert_eq!(report.webhook, Some(WebhookProvider::SendGrid));
    assert_eq!(
        report.original.message_id.as_deref(),
        Some("7.12.mailcast@shop.example.com")
    );
    let bounce = &report.bounces[0];
    assert_eq!(bounce.class, BounceClass::Hard);
    assert_eq!(bounce.recipient.as_deref(), Some("ann@example.com"));
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"), "the remote's code");
    assert_eq!(
        bounce.message_id.as_deref(),
        Some("7.12.mailcast@shop.example.com")
    );

    let mail = parse(b"From: a@example.com\nSubject: {\"webhook\":\"ses\"}\n\nhello\n");
    assert_eq!(mail.webhook, None);
    assert_eq!(
        parse(b"{\"webhook\":\"nobody\",\"event\":{}}").webhook,
        None
    );
}

#[test]
fn sendgrid_bounces_are_hard_for_the_address_and_soft_when_blocked() {
    let sg = WebhookProvider::SendGrid;
    let unknown = "550 5.1.1 The email account that you tried to reach does not exist";
    assert_eq!(
        class_of(sg, sendgrid_bounce("bounce", unknown)),
        BounceClass::Hard
    );
    assert_eq!(
        class_of(sg, sendgrid_bounce("blocked", unknown)),
        BounceClass::Soft
    );
    let full = "552 5.2.2 mailbox full";
    assert_eq!(
        class_of(sg, sendgrid_bounce("bounce", full)),
        BounceClass::Soft
    );
    assert_eq!(
        class_of(sg, sendgrid_bounce("bounce", "no reason given")),
        BounceClass::Hard,
        "permanent on SendGrid's word when the reason says nothing known"
    );
    let mut invalid = sendgrid_bounce("bounce", "552 5.2.2 mailbox full");
    invalid["bounce_classification"] = json!("Invalid Address");
    assert_eq!(class_of(sg, invalid), BounceClass::Hard);
}

#[test]
fn sendgrid_complaints_drops_and_deliveries() {
    let sg = WebhookProvider::SendGrid;
    let event = |kind: &str, reason: &str| json!({"email": "ann@example.com", "event": kind, "reason": reason, "sg_event_id": kind});
    assert_eq!(
        class_of(sg, event("spamreport", "")),
        BounceClass::Complaint
    );
    assert_eq!(class_of(sg, event("delivered", "")), BounceClass::Delivered);
    assert_eq!(
        class_of(sg, event("dropped", "Bounced Address")),
        BounceClass::Hard
    );
    assert_eq!(
        class_of(sg, event("dropped", "Spam Reporting Address")),
        BounceClass::Complaint
    );
    assert!(ignored(sg, event("dropped", "Unsubscribed Address")));
    for kind in ["deferred", "processed", "open", "click", "unsubscribe"] {
        assert!(ignored(sg, event(kind, "")), "{kind}");
    }
}

#[test]
fn sendgrid_events_name_what_they_lack() {
    let sg = WebhookProvider::SendGrid;
    assert_eq!(
        refused(sg, json!({"email": "a@example.com"})),
        "event: is missing"
    );
    assert_eq!(refused(sg, json!({"event": "bounce"})), "email: is missing");
    assert_eq!(
        refused(sg, json!({"event": "bounce", "email": 7})),
        "email: is not a string"
    );
    assert_eq!(refused(sg, json!([1])), "the event is not a JSON object");
    let error = WebhookEvent::new(sg, json!({"event": "bounce"})).unwrap_err();
    assert_eq!(error.at("[3]").to_string(), "[3].email: is missing");
}

fn mailgun_failed(severity: &str, message: &str) -> Value {
    json!({
        "event": "failed",
        "id": "G9Bn5sl1TC6dE1YLNSYcdQ",
        "timestamp": 1_700_000_000.5,
        "severity": severity,
        "reason": "generic",
        "recipient": "ben@example.com",
        "delivery-status": {"code": 550, "message": message, "description": ""},
        "message": {"headers": {"message-id": "7.13.mailcast@shop.example.com"}}
    })
}

#[test]
fn mailgun_failures_by_severity() {
    let mg = WebhookProvider::Mailgun;
    let unknown = "5.1.1 The email account that you tried to reach does not exist";
    let report = read_event(mg, mailgun_failed("permanent", unknown));
    assert_eq!(report.bounces[0].class, BounceClass::Hard);
    assert_eq!(
        report.bounces[0].recipient.as_deref(),
        Some("ben@example.com")
    );
    assert_eq!(
        report.original.message_id.as_deref(),
        Some("7.13.mailcast@shop.example.com")
    );
    assert_eq!(
        class_of(mg, mailgun_failed("temporary", unknown)),
        BounceClass::Soft
    );
    let blocked = "5.7.1 Message rejected as spam by Content Filtering";
    assert_eq!(
        class_of(mg, mailgun_failed("permanent", blocked)),
        BounceClass::Soft
    );
    let mut suppressed = mailgun_failed("permanent", "");
    suppressed["reason"] = json!("suppress-bounce");
    assert_eq!(class_of(mg, suppressed), BounceClass::Hard);
    assert_eq!(
        refused(mg, mailgun_failed("sometimes", unknown)),
        "severity: is neither permanent nor temporary"
    );
}

#[test]
fn mailgun_complaints_deliveries_and_the_rest() {
    let mg = WebhookProvider::Mailgun;
    let event = |kind: &str| json!({"event": kind, "recipient": "ben@example.com", "id": kind});
    assert_eq!(class_of(mg, event("complained")), BounceClass::Complaint);
    assert_eq!(class_of(mg, event("delivered")), BounceClass::Delivered);
    for kind in ["accepted", "opened", "clicked", "unsubscribed", "rejected"] {
        assert!(ignored(mg, event(kind)), "{kind}");
    }
    assert_eq!(
        refused(mg, json!({"event": "failed"})),
        "recipient: is missing"
    );
}

fn postmark(record: &str, kind: &str) -> Value {
    json!({
        "RecordType": record,
        "ID": 4_323_372_036_u64,
        "Type": kind,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": "cat@example.com",
        "Recipient": "cat@example.com",
        "BouncedAt": "2026-12-01T13:28:10Z"
    })
}

#[test]
fn postmark_bounce_types_and_records() {
    let pm = WebhookProvider::Postmark;
    let report = read_event(pm, postmark("Bounce", "HardBounce"));
    assert_eq!(report.bounces[0].class, BounceClass::Hard);
    assert_eq!(report.bounces[0].status.as_deref(), Some("5.1.1"));
    assert_eq!(
        report.original.message_id, None,
        "Postmark's MessageID is its own"
    );
    assert_eq!(report.webhook, Some(pm));
    for (kind, class) in [
        ("BadEmailAddress", BounceClass::Hard),
        ("SoftBounce", BounceClass::Soft),
        ("Transient", BounceClass::Soft),
        ("DnsError", BounceClass::Soft),
        ("SpamComplaint", BounceClass::Complaint),
        ("AutoResponder", BounceClass::AutoReply),
    ] {
        assert_eq!(class_of(pm, postmark("Bounce", kind)), class, "{kind}");
    }
    for kind in ["Subscribe", "ManuallyDeactivated", "Unknown"] {
        assert!(ignored(pm, postmark("Bounce", kind)), "{kind}");
    }
    assert_eq!(
        class_of(pm, postmark("SpamComplaint", "SpamComplaint")),
        BounceClass::Complaint
    );
    assert_eq!(
        class_of(pm, postmark("Delivery", "")),
        BounceClass::Delivered
    );
    assert!(ignored(pm, postmark("Open", "")));
    assert_eq!(
        refused(
            pm,
            json!({"RecordType": "Bounce", "Email": "cat@example.com"})
        ),
        "Type: is missing"
    );
}

#[test]
fn ses_notifications_read_as_by_mail() {
    let ses = WebhookProvider::Ses;
    let notification = json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [{
                "emailAddress": "dan@example.com",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
            }]
        },
        "mail": {"commonHeaders": {"messageId": "<7.14.mailcast@shop.example.com>"}}
    });
    let report = read_event(ses, notification);
    assert_eq!(report.bounces[0].class, BounceClass::Hard);
    assert_eq!(
        report.bounces[0].recipient.as_deref(),
        Some("dan@example.com")
    );
    assert_eq!(
        report.original.message_id.as_deref(),
        Some("7.14.mailcast@shop.example.com")
    );
    let complaint = json!({
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "dan@example.com"}]}
    });
    assert_eq!(class_of(ses, complaint), BounceClass::Complaint);
    assert!(ignored(
        ses,
        json!({"notificationType": "AmazonSnsSubscriptionSucceeded"})
    ));
    assert_eq!(
        refused(ses, json!({"notificationType": "Bounce", "bounce": {}})),
        "bounce.bouncedRecipients: names no recipient"
    );
    assert_eq!(
        refused(ses, json!({"mail": {}})),
        "notificationType: is missing"
    );
}
