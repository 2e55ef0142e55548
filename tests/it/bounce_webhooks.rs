//! Providers' bounce and complaint webhooks against the real HTTP server, on both
//! engines. For SES (through SNS), SendGrid, Postmark and Mailgun: a signed bounce
//! marks the delivery bounced and suppresses the address, a complaint suppresses it and
//! unsubscribes it, the same event twice is one stored row applied once, and a
//! tampered, unsigned or stale request is refused with nothing stored.

use crate::support;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailcast::domain::{DeliveryStatus, EmailAddress};
use mailcast::http::{MailgunKey, PostmarkAuth, SendGridKey, SesWebhook, WebhookSettings};
use mailcast::store::{BounceRecord, COMPLAINT_REASON, HARD_BOUNCE_REASON, Store};
use mailcast::time::Clock;
use serde_json::{Value, json};
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::http::TestServer;
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::webhooks::{CertServer, SendGridSigner, SnsSigner, mailgun_signature};
use support::{for_each_engine, recipient};

/// A campaign sent to three readers, and the Message-ID each message had.
struct Sent {
    campaign: i64,
    message_ids: HashMap<String, String>,
}

impl Sent {
    fn message_id(&self, email: &str) -> &str {
        &self.message_ids[email]
    }
}

async fn send_to_readers(store: &Store) -> Sent {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news", "deals"]),
            recipient("ben@example.com", "Ben", &["news", "deals"]),
            recipient("cat@example.com", "Cat", &["news"]),
        ])
        .await
        .unwrap();
    let relay = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let campaign = create_campaign(store, "spring", "news", HTML).await;
    run_to_done(store, campaign, &relay.url(), &WorkerOptions::default()).await;
    let message_ids = relay
        .received()
        .into_iter()
        .map(|m| (m.to[0].clone(), m.message_id()))
        .collect();
    relay.stop();
    Sent {
        campaign,
        message_ids,
    }
}

/// The HTTP server with the webhooks `configure` sets, on a manual clock.
async fn serve(store: &Store, configure: impl FnOnce(&mut WebhookSettings)) -> (TestServer, Clock) {
    let mut settings = support::http::settings();
    let clock = Clock::manual(mailcast::time::now());
    settings.clock = clock.clone();
    configure(&mut settings.webhooks);
    (TestServer::start_with(store, settings).await, clock)
}

/// POSTs `body` with `headers`; the status and the answer (JSON when it is).
async fn post(
    server: &TestServer,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut request = server.client.post(server.url(path)).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn received(events: usize, stored: usize, ignored: usize) -> Value {
    json!({"events": events, "stored": stored, "ignored": ignored})
}

async fn status_of(store: &Store, sent: &Sent, email: &str) -> DeliveryStatus {
    let found = store
        .deliveries_in(sent.campaign, DeliveryStatus::ALL)
        .await
        .unwrap();
    let delivery = found.iter().find(|d| d.email == email).expect("a delivery");
    delivery.status.parse().unwrap()
}

async fn suppressed(store: &Store, email: &str) -> Option<String> {
    let address = EmailAddress::parse(email).unwrap();
    store.suppression(&address).await.unwrap().map(|s| s.reason)
}

async fn topics(store: &Store, email: &str) -> Vec<String> {
    let address = EmailAddress::parse(email).unwrap();
    let recipient = store.recipient_by_email(&address).await.unwrap().unwrap();
    store.subscribed_topics(recipient.id).await.unwrap()
}

async fn rows(store: &Store) -> Vec<BounceRecord> {
    store.received_bounces(100, 0).await.unwrap()
}

/// What a hard bounce for `ann` and a complaint from `ben` must have done, and that
/// `cat` was left alone.
async fn ann_bounced_ben_complained(store: &Store, sent: &Sent, engine: &str) {
    assert_eq!(
        status_of(store, sent, "ann@example.com").await,
        DeliveryStatus::Bounced,
        "{engine}"
    );
    assert_eq!(
        suppressed(store, "ann@example.com").await.as_deref(),
        Some(HARD_BOUNCE_REASON),
        "{engine}"
    );
    assert_eq!(
        suppressed(store, "ben@example.com").await.as_deref(),
        Some(COMPLAINT_REASON),
        "{engine}"
    );
    assert!(
        topics(store, "ben@example.com").await.is_empty(),
        "{engine}: ben unsubscribed"
    );
    assert_eq!(
        topics(store, "ann@example.com").await.len(),
        2,
        "{engine}: a bounce unsubscribes nobody"
    );
    assert_eq!(
        status_of(store, sent, "cat@example.com").await,
        DeliveryStatus::Sent,
        "{engine}"
    );
    assert_eq!(suppressed(store, "cat@example.com").await, None, "{engine}");
}

// --- SendGrid -------------------------------------------------------------------------

const SG_SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const SG_TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

fn sendgrid_events(sent: &Sent, email: &str, event: &str) -> Vec<u8> {
    json!([
        {"email": email, "event": "open", "sg_event_id": format!("open-{email}"), "timestamp": 1_765_000_000},
        {
            "email": email,
            "event": event,
            "type": "bounce",
            "status": "5.0.0",
            "reason": format!("550 5.1.1 <{email}>: Recipient address rejected: User unknown"),
            "sg_event_id": format!("{event}-{email}"),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "smtp-id": sent.message_id(email),
            "timestamp": 1_765_000_000
        }
    ])
    .to_string()
    .into_bytes()
}

async fn sendgrid(
    server: &TestServer,
    signer: &SendGridSigner,
    at: i64,
    body: &[u8],
    signed: &[u8],
) -> (u16, Value) {
    let headers = [
        (SG_SIGNATURE, signer.sign(at, signed)),
        (SG_TIMESTAMP, at.to_string()),
    ];
    post(server, "/webhooks/sendgrid", &headers, body).await
}

#[tokio::test]
async fn sendgrid_signed_events_bounce_and_complain_once_and_nothing_else_is_taken() {
    let signer = &SendGridSigner::new();
    for_each_engine(|store, engine| async move {
        let sent = send_to_readers(&store).await;
        let key = SendGridKey::parse(&signer.public_key).unwrap();
        let (server, clock) = serve(&store, |w| w.sendgrid = Some(key)).await;

        let bounce = sendgrid_events(&sent, "ann@example.com", "bounce");
        let answer = sendgrid(&server, signer, clock.now(), &bounce, &bounce).await;
        assert_eq!(answer, (200, received(1, 1, 1)), "{engine}");
        let again = sendgrid(&server, signer, clock.now(), &bounce, &bounce).await;
        assert_eq!(
            again,
            (200, received(1, 0, 1)),
            "{engine}: the same event again"
        );
        let complaint = sendgrid_events(&sent, "ben@example.com", "spamreport");
        let answer = sendgrid(&server, signer, clock.now(), &complaint, &complaint).await;
        assert_eq!(answer, (200, received(1, 1, 1)), "{engine}");
        let stored = rows(&store).await;
        assert_eq!(stored.len(), 2, "{engine}: one row per event: {stored:?}");
        assert!(
            stored
                .iter()
                .all(|r| r.matched_by.as_deref() == Some("message_id")),
            "{engine}"
        );
        ann_bounced_ben_complained(&store, &sent, engine).await;

        let cat = sendgrid_events(&sent, "cat@example.com", "bounce");
        let mut tampered = cat.clone();
        let at = tampered.iter().position(|&b| b == b'c').unwrap();
        tampered[at] = b'd';
        let (status, answer) = sendgrid(&server, signer, clock.now(), &tampered, &cat).await;
        assert_eq!(status, 403, "{engine}: {answer}");
        let unsigned = post(
            &server,
            "/webhooks/sendgrid",
            &[(SG_TIMESTAMP, clock.now().to_string())],
            &cat,
        )
        .await;
        assert_eq!(unsigned.0, 401, "{engine}: {unsigned:?}");
        let signed_at = clock.now();
        clock.advance(601);
        let (status, answer) = sendgrid(&server, signer, signed_at, &cat, &cat).await;
        assert_eq!(status, 403, "{engine}: stale: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("10 minutes"),
            "{answer}"
        );
        assert_eq!(
            rows(&store).await.len(),
            2,
            "{engine}: nothing refused was stored"
        );
        assert_eq!(
            status_of(&store, &sent, "cat@example.com").await,
            DeliveryStatus::Sent,
            "{engine}"
        );

        let fresh = sendgrid(&server, signer, clock.now(), &cat, &cat).await;
        assert_eq!(
            fresh,
            (200, received(1, 1, 1)),
            "{engine}: the same body signed now"
        );
        server.stop().await;
    })
    .await;
}

// --- Mailgun --------------------------------------------------------------------------

const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

fn mailgun_event(sent: &Sent, email: &str, event: &str) -> Value {
    let message_id = sent.message_id(email).trim_matches(['<', '>']);
    json!({
        "event": event,
        "id": format!("{event}-{email}"),
        "timestamp": 1_765_000_000.25,
        "severity": "permanent",
        "reason": "bounce",
        "recipient": email,
        "delivery-status": {
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": ""
        },
        "message": {"headers": {"message-id": message_id, "to": email}}
    })
}

async fn mailgun(server: &TestServer, signature: Value, data: &Value) -> (u16, Value) {
    let body = json!({"signature": signature, "event-data": data}).to_string();
    post(server, "/webhooks/mailgun", &[], body.as_bytes()).await
}

#[tokio::test]
async fn mailgun_signed_events_bounce_and_complain_once_and_nothing_else_is_taken() {
    for_each_engine(|store, engine| async move {
        let sent = send_to_readers(&store).await;
        let key = MailgunKey::new(MAILGUN_KEY).unwrap();
        let (server, clock) = serve(&store, |w| w.mailgun = Some(key)).await;
        let sign = |token: &str| mailgun_signature(MAILGUN_KEY, clock.now(), token);

        let failed = mailgun_event(&sent, "ann@example.com", "failed");
        assert_eq!(
            mailgun(&server, sign("token-1"), &failed).await,
            (200, received(1, 1, 0)),
            "{engine}"
        );
        let retried = mailgun(&server, sign("token-1"), &failed).await;
        assert_eq!(
            retried,
            (200, received(1, 0, 0)),
            "{engine}: the same request again"
        );
        let resent = mailgun(&server, sign("token-2"), &failed).await;
        assert_eq!(
            resent,
            (200, received(1, 0, 0)),
            "{engine}: the same event, signed anew"
        );
        let complained = mailgun_event(&sent, "ben@example.com", "complained");
        assert_eq!(
            mailgun(&server, sign("token-3"), &complained).await,
            (200, received(1, 1, 0)),
            "{engine}"
        );
        assert_eq!(rows(&store).await.len(), 2, "{engine}");
        ann_bounced_ben_complained(&store, &sent, engine).await;

        let cat = mailgun_event(&sent, "cat@example.com", "failed");
        let mut forged = sign("token-4");
        let hex = forged["signature"].as_str().unwrap().to_string();
        let flipped = if hex.starts_with('0') { "1" } else { "0" };
        forged["signature"] = json!(format!("{flipped}{}", &hex[1..]));
        let (status, answer) = mailgun(&server, forged, &cat).await;
        assert_eq!(status, 403, "{engine}: {answer}");
        let (status, answer) = mailgun(&server, sign("token-1"), &cat).await;
        assert_eq!(
            status, 403,
            "{engine}: a used token with another event: {answer}"
        );
        let unsigned = post(
            &server,
            "/webhooks/mailgun",
            &[],
            json!({"event-data": cat}).to_string().as_bytes(),
        )
        .await;
        assert_eq!(unsigned.0, 401, "{engine}: {unsigned:?}");
        let stale = mailgun_signature(MAILGUN_KEY, clock.now() - 601, "token-5");
        let (status, answer) = mailgun(&server, stale, &cat).await;
        assert_eq!(status, 403, "{engine}: stale: {answer}");
        assert_eq!(
            rows(&store).await.len(),
            2,
            "{engine}: nothing refused was stored"
        );
        assert_eq!(
            suppressed(&store, "cat@example.com").await,
            None,
            "{engine}"
        );

        let (status, answer) = mailgun(&server, sign("token-6"), &json!({"event": "failed"})).await;
        assert_eq!(status, 400, "{engine}");
        assert_eq!(
            answer["error"], "event-data.recipient: is missing",
            "{engine}"
        );
        server.stop().await;
    })
    .await;
}

// --- Postmark -------------------------------------------------------------------------

fn postmark_record(record: &str, kind: &str, email: &str, id: u64) -> Vec<u8> {
    json!({
        "RecordType": record,
        "ID": id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "news@shop.example.com",
        "BouncedAt": "2026-12-01T13:28:10Z",
        "Inactive": true,
        "CanActivate": true,
        "Subject": "Picks for you"
    })
    .to_string()
    .into_bytes()
}

fn basic(credentials: &str) -> [(&'static str, String); 1] {
    [(
        "Authorization",
        format!("Basic {}", BASE64.encode(credentials)),
    )]
}

#[tokio::test]
async fn postmark_records_with_its_credentials_bounce_and_complain_once_by_address() {
    for_each_engine(|store, engine| async move {
        let sent = send_to_readers(&store).await;
        let auth = PostmarkAuth::parse("postmark:correct-horse").unwrap();
        let (server, _) = serve(&store, |w| w.postmark = Some(auth)).await;
        let good = basic("postmark:correct-horse");

        let bounce = postmark_record("Bounce", "HardBounce", "ann@example.com", 42);
        let answer = post(&server, "/webhooks/postmark", &good, &bounce).await;
        assert_eq!(answer, (200, received(1, 1, 0)), "{engine}");
        let again = post(&server, "/webhooks/postmark", &good, &bounce).await;
        assert_eq!(
            again,
            (200, received(1, 0, 0)),
            "{engine}: the same record again"
        );
        let complaint = postmark_record("SpamComplaint", "SpamComplaint", "ben@example.com", 43);
        let answer = post(&server, "/webhooks/postmark", &good, &complaint).await;
        assert_eq!(answer, (200, received(1, 1, 0)), "{engine}");
        let stored = rows(&store).await;
        assert_eq!(stored.len(), 2, "{engine}");
        assert!(
            stored
                .iter()
                .all(|r| r.matched_by.as_deref() == Some("address")),
            "{engine}: Postmark quotes no Message-ID of ours: {stored:?}"
        );
        ann_bounced_ben_complained(&store, &sent, engine).await;

        let cat = postmark_record("Bounce", "HardBounce", "cat@example.com", 44);
        let wrong = basic("postmark:correct-horsf");
        let response = server
            .client
            .post(server.url("/webhooks/postmark"))
            .header("Authorization", &wrong[0].1)
            .body(cat.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{engine}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{engine}"
        );
        let (status, _) = post(&server, "/webhooks/postmark", &[], &cat).await;
        assert_eq!(status, 401, "{engine}: no credentials");
        assert_eq!(
            rows(&store).await.len(),
            2,
            "{engine}: nothing refused was stored"
        );
        assert_eq!(
            suppressed(&store, "cat@example.com").await,
            None,
            "{engine}"
        );

        let (status, answer) = post(
            &server,
            "/webhooks/postmark",
            &good,
            br#"{"RecordType":"Bounce","Type":"HardBounce"}"#,
        )
        .await;
        assert_eq!(
            (status, &answer["error"]),
            (400, &json!("Email: is missing")),
            "{engine}"
        );
        server.stop().await;
    })
    .await;
}

// --- Amazon SES through SNS -----------------------------------------------------------

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-bounces";

fn sns_notification(certs: &CertServer, id: &str, ses: Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": TOPIC,
        "Message": ses.to_string(),
        "Timestamp": "2026-12-07T12:00:00.000Z",
        "SigningCertURL": certs.url("SimpleNotificationService-test.pem"),
        "UnsubscribeURL": certs.url("unsubscribe")
    })
}

fn ses_bounce(sent: &Sent, email: &str) -> Value {
    json!({
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": format!("bounce-{email}"),
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{
                "emailAddress": email,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
            }],
            "timestamp": "2026-12-07T12:00:00.000Z"
        },
        "mail": {
            "messageId": "0000014a-f4d4-4f89-93d2-example",
            "destination": [email],
            "commonHeaders": {"messageId": sent.message_id(email), "to": [email]}
        }
    })
}

fn ses_complaint(sent: &Sent, email: &str) -> Value {
    json!({
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": format!("complaint-{email}"),
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse"
        },
        "mail": {"commonHeaders": {"messageId": sent.message_id(email)}}
    })
}

async fn sns(server: &TestServer, message: &Value) -> (u16, Value) {
    post(server, "/webhooks/ses", &[], message.to_string().as_bytes()).await
}

#[tokio::test]
async fn ses_messages_signed_by_sns_bounce_and_complain_once_and_nothing_else_is_taken() {
    let signer = &SnsSigner::new();
    for_each_engine(|store, engine| async move {
        let sent = send_to_readers(&store).await;
        let certs = CertServer::start(signer.certificate.clone()).await;
        let ses = SesWebhook::new(vec![TOPIC.into()], Some(&certs.base)).unwrap();
        let (server, _) = serve(&store, |w| w.ses = Some(ses)).await;

        let confirmation = signer.sign(
            json!({
                "Type": "SubscriptionConfirmation",
                "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                "Token": "2336412f37fb687f5d51e6e2425f004a",
                "TopicArn": TOPIC,
                "Message": format!("You have chosen to subscribe to the topic {TOPIC}."),
                "SubscribeURL": certs.url("confirm?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425f004a"),
                "Timestamp": "2026-12-07T11:59:00.000Z",
                "SigningCertURL": certs.url("SimpleNotificationService-test.pem")
            }),
            2,
        );
        assert_eq!(sns(&server, &confirmation).await, (200, received(0, 0, 0)), "{engine}");
        assert!(
            certs.requests().contains(&"/sns/confirm?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425f004a".to_string()),
            "{engine}: the SubscribeURL was fetched: {:?}",
            certs.requests()
        );

        let bounce = signer.sign(sns_notification(&certs, "n-1", ses_bounce(&sent, "ann@example.com")), 1);
        assert_eq!(sns(&server, &bounce).await, (200, received(1, 1, 0)), "{engine}: version 1");
        assert_eq!(sns(&server, &bounce).await, (200, received(1, 0, 0)), "{engine}: SNS retried it");
        let mut complaint = sns_notification(&certs, "n-2", ses_complaint(&sent, "ben@example.com"));
        complaint["Subject"] = json!("Amazon SES Email Event Notification");
        let complaint = signer.sign(complaint, 2);
        assert_eq!(sns(&server, &complaint).await, (200, received(1, 1, 0)), "{engine}: version 2");
        let stored = rows(&store).await;
        assert_eq!(stored.len(), 2, "{engine}");
        assert!(stored.iter().all(|r| r.matched_by.as_deref() == Some("message_id")), "{engine}");
        ann_bounced_ben_complained(&store, &sent, engine).await;

        let cat = signer.sign(sns_notification(&certs, "n-3", ses_bounce(&sent, "cat@example.com")), 2);
        let mut tampered = cat.clone();
        tampered["Message"] = json!(cat["Message"].as_str().unwrap().replace("5.1.1", "5.1.2"));
        let (status, answer) = sns(&server, &tampered).await;
        assert_eq!(status, 403, "{engine}: {answer}");
        let mut unsigned = cat.clone();
        unsigned.as_object_mut().unwrap().remove("Signature");
        assert_eq!(sns(&server, &unsigned).await.0, 401, "{engine}");
        let port = certs.base.trim_start_matches("http://127.0.0.1:").trim_end_matches("/sns/");
        let mut elsewhere = cat.clone();
        elsewhere["SigningCertURL"] = json!(format!("http://localhost:{port}/sns/elsewhere.pem"));
        let (status, answer) = sns(&server, &signer.sign(elsewhere, 2)).await;
        assert_eq!(status, 403, "{engine}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("SigningCertURL"), "{answer}");
        let mut amazon_lookalike = cat.clone();
        amazon_lookalike["SigningCertURL"] = json!("https://sns.eu-west-1.amazonaws.com.example.net/cert.pem");
        assert_eq!(sns(&server, &signer.sign(amazon_lookalike, 2)).await.0, 403, "{engine}");
        assert!(
            !certs.requests().iter().any(|r| r.contains("elsewhere")),
            "{engine}: a certificate on another host is not fetched"
        );
        let mut other_topic = cat.clone();
        other_topic["TopicArn"] = json!("arn:aws:sns:eu-west-1:999999999999:someone-else");
        assert_eq!(sns(&server, &signer.sign(other_topic, 2)).await.0, 403, "{engine}");
        assert_eq!(rows(&store).await.len(), 2, "{engine}: nothing refused was stored");
        assert_eq!(suppressed(&store, "cat@example.com").await, None, "{engine}");

        let certificate_fetches = certs.requests().iter().filter(|r| r.ends_with(".pem")).count();
        assert_eq!(certificate_fetches, 1, "{engine}: the certificate is cached by URL");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_provider_without_its_secret_is_not_served() {
    let db = support::TestDb::sqlite().await;
    let server = TestServer::start(&db.store).await;
    for provider in ["ses", "sendgrid", "postmark", "mailgun"] {
        let (status, answer) = post(&server, &format!("/webhooks/{provider}"), &[], b"{}").await;
        assert_eq!(status, 404, "{provider}: {answer}");
    }
    assert!(rows(&db.store).await.is_empty());
    server.stop().await;
    db.drop_database().await;
}

/// SQLite migration 0018 rebuilds `bounces` to allow `matched_by = 'address'`: rows
/// survive, and ids go on from where the old table's sequence was.
#[tokio::test]
async fn sqlite_bounces_rebuild_keeps_rows_and_the_id_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("before-0018.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name("mailcast_migrations");
    migrator.run_to(17, &pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO bounces (id, digest, raw, received_at, matched_by, class)
         VALUES (1, 'a', x'00', 1, 'message_id', 'hard'), (7, 'b', x'00', 2, NULL, NULL);
         DELETE FROM bounces WHERE id = 7;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&path.to_string_lossy()).await.unwrap();
    let kept = rows(&store).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].id, kept[0].matched_by.as_deref()),
        (1, Some("message_id"))
    );
    let incoming = mailcast::store::IncomingBounce {
        raw: b"new",
        envelope_from: None,
        envelope_to: &[],
        received_at: 3,
    };
    let stored = store.store_bounce(&incoming).await.unwrap();
    assert_eq!(stored.id, 8, "no id is handed out twice");
    store.close().await;
}
