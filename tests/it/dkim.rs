//! DKIM signatures hold for an independent verifier (dkimpy, `python3-dkim`): RSA and
//! Ed25519 keys in every accepted format, campaign and triggered messages, over SMTP
//! (with and without pipelining) and into the outbox; and the Subject a recipient's
//! first name makes is folded, encoded and decoded back exactly by a strict parser.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mail_parser::MessageParser;
use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, Transport, TriggeredSend, check_send, enqueue_send,
    schedule_campaign, spawn_worker, unique_worker_name,
};
use mailcast::domain::{CampaignKind, CampaignStatus};
use mailcast::links::KeyRing;
use mailcast::render::{
    CampaignRenderer, DkimAlgorithm, DkimSettings, LinkSettings, RecipientContext, RenderSpec,
};
use mailcast::store::{CampaignSettings, NewTemplate, Recipient, Store, Template};
use serde_json::json;
use sqlx::types::Json;
use support::dkimpy::{self, TestKey, Verdict};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::smtp::SmtpServer;
use support::{campaign, for_each_engine, recipient};

const DOMAIN: &str = "shop.example.com";
const SELECTOR: &str = "s1";
const SUBJECT: &str = "Picks for {{ recipient.first_name }}";

/// First names that stress the Subject: plain; non-ASCII; one that reads as an
/// encoded-word; one word of 2,000 characters (a 2,009-octet line, unfolded); many
/// words; repeated spaces and a tab.
fn first_names() -> Vec<String> {
    vec![
        "Ada".to_string(),
        "Zoë Ångström-Łukasiewicz 李小龍 🎉 Ünïcödé".to_string(),
        "=?utf-8?b?SGFja2Vk?=".to_string(),
        "x".repeat(2000),
        "Jean-Baptiste Emmanuel Zorg of the Very Long Family Name, who has more words \
         in his name than fit on one line of seventy-eight columns, twice over at least"
            .to_string(),
        "two  spaces\tand a tab".to_string(),
    ]
}

struct Key {
    label: &'static str,
    settings: DkimSettings,
    record: &'static str,
}

fn dkim(algorithm: DkimAlgorithm, private_key: &str) -> DkimSettings {
    DkimSettings {
        domain: DOMAIN.to_string(),
        selector: SELECTOR.to_string(),
        algorithm,
        private_key: private_key.to_string(),
    }
}

/// Every key format mailcast reads, for both algorithms.
fn keys() -> Vec<Key> {
    let key = |label, algorithm, pem: fn(&TestKey) -> &String, test: &'static TestKey| Key {
        label,
        settings: dkim(algorithm, pem(test)),
        record: &test.record,
    };
    let (rsa, ed25519) = (dkimpy::rsa_key(), dkimpy::ed25519_key());
    vec![
        key("RSA PKCS#8", DkimAlgorithm::Rsa, |k| &k.pkcs8, rsa),
        key("RSA PKCS#1", DkimAlgorithm::Rsa, |k| &k.legacy, rsa),
        key(
            "Ed25519 PKCS#8",
            DkimAlgorithm::Ed25519,
            |k| &k.pkcs8,
            ed25519,
        ),
        key(
            "Ed25519 seed",
            DkimAlgorithm::Ed25519,
            |k| &k.legacy,
            ed25519,
        ),
    ]
}

fn spec(marketing: bool) -> RenderSpec {
    RenderSpec {
        campaign_id: 42,
        campaign_name: "Weekly picks".to_string(),
        marketing,
        template: Template {
            id: 1,
            name: "picks".to_string(),
            subject: SUBJECT.to_string(),
            preheader: None,
            html: r#"<p>Hello   {{ recipient.first_name }},   here	are your picks. </p>
<p><a href="https://shop.example.com/sale">Sale</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>"#
                .to_string(),
            text: None,
        },
        from_name: "Northwind Shop".to_string(),
        from_email: "news@shop.example.com".to_string(),
        reply_to: Some("help@shop.example.com".to_string()),
        settings: CampaignSettings::default(),
        links: LinkSettings {
            base_url: "https://t.example.com".to_string(),
            keyring: KeyRing::development(),
            list_id_domain: "lists.shop.example.com".to_string(),
        },
    }
}

fn context(id: i64, first_name: &str) -> RecipientContext {
    RecipientContext {
        recipient: Recipient {
            id,
            email: format!("person{id}@example.org"),
            first_name: Some(first_name.to_string()),
            last_name: None,
            country: None,
            city: None,
            attributes: Json(json!({})),
            locale: None,
            timezone: None,
            status: "active".to_string(),
            created_at: 1_700_000_000,
        },
        segments: vec![],
        recommendations: vec![],
        cart: vec![],
        trigger: None,
    }
}

/// What must hold for every message mailcast sends: dkimpy accepts the signature, which
/// names only headers the message has (Content-Type among them); no line passes 998
/// octets and no Subject line 78; a strict parser decodes the Subject to `subject`.
fn assert_sound(raw: &[u8], verdict: &Verdict, subject: &str, what: &str) {
    let text = String::from_utf8_lossy(raw);
    assert!(
        verdict.ok,
        "{what}: dkimpy rejects: {}\n{text}",
        verdict.detail
    );
    assert_eq!(
        verdict.asked,
        [format!("{SELECTOR}._domainkey.{DOMAIN}.")],
        "{what}"
    );
    let parsed = MessageParser::default()
        .parse(raw)
        .unwrap_or_else(|| panic!("{what}: mail-parser cannot parse\n{text}"));
    let present: Vec<String> = parsed
        .headers()
        .iter()
        .map(|h| h.name().to_ascii_lowercase())
        .collect();
    for name in &verdict.signed_headers {
        assert!(present.contains(name), "{what}: h= names {name}, absent");
    }
    for name in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "content-type",
    ] {
        assert!(
            verdict.signed_headers.iter().any(|h| h == name),
            "{what}: {name} unsigned: {:?}",
            verdict.signed_headers
        );
    }
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "{what}: a {}-octet line", line.len());
    }
    let head = &text[..text.find("\r\n\r\n").expect("a header block")];
    let subject_lines = head
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Subject:"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
        .map(|(_, l)| l);
    for line in subject_lines {
        assert!(
            line.len() <= 78,
            "{what}: Subject line of {}: {line}",
            line.len()
        );
    }
    assert_eq!(parsed.subject(), Some(subject), "{what}: decoded Subject");
}

#[test]
fn rendered_messages_verify_for_every_key_format_and_subject() {
    if !dkimpy::present() {
        return;
    }
    for key in keys() {
        for marketing in [true, false] {
            let renderer = CampaignRenderer::new(spec(marketing))
                .expect("compiles")
                .with_dkim(&key.settings)
                .expect("the key is read");
            let rendered: Vec<_> = first_names()
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    renderer
                        .render(&context(i as i64 + 1, name))
                        .expect("renders")
                })
                .collect();
            let raws: Vec<Vec<u8>> = rendered.iter().map(|m| m.raw.clone()).collect();
            let verdicts = dkimpy::verify_all(&raws, SELECTOR, DOMAIN, key.record);
            for (message, verdict) in rendered.iter().zip(&verdicts) {
                let what = format!(
                    "{} marketing={marketing} {:.40}",
                    key.label, message.subject
                );
                assert_sound(&message.raw, verdict, &message.subject, &what);
                let lists = verdict
                    .signed_headers
                    .iter()
                    .any(|h| h == "list-unsubscribe");
                assert_eq!(lists, marketing, "{what}: List-Unsubscribe signed");
                assert!(
                    verdict.signed_headers.iter().any(|h| h == "reply-to"),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn an_encoded_word_in_a_first_name_reads_literally() {
    let renderer = CampaignRenderer::new(spec(true)).expect("compiles");
    let message = renderer
        .render(&context(1, "=?utf-8?b?SGFja2Vk?="))
        .expect("renders");
    assert_eq!(message.subject, "Picks for =?utf-8?b?SGFja2Vk?=");
    let parsed = MessageParser::default()
        .parse(&message.raw)
        .expect("parses");
    assert_eq!(parsed.subject(), Some("Picks for =?utf-8?b?SGFja2Vk?="));
    let text = String::from_utf8_lossy(&message.raw);
    assert!(
        !text.contains("Subject: Picks for =?utf-8?b?SGFja2Vk?="),
        "written raw, a receiver shows \"Picks for Hacked\"\n{text}"
    );
}

/// The verifier is not a rubber stamp: changing a signed header or the body fails it,
/// while refolding headers (as relays may) does not, under relaxed canonicalisation.
#[test]
fn dkimpy_rejects_a_changed_message_and_accepts_a_refolded_one() {
    if !dkimpy::present() {
        return;
    }
    for key in [&keys()[0], &keys()[2]] {
        let renderer = CampaignRenderer::new(spec(true))
            .expect("compiles")
            .with_dkim(&key.settings)
            .expect("the key is read");
        let name = "Jean-Baptiste Emmanuel Zorg of the Very Long Family Name, and more words";
        let message = renderer.render(&context(7, name)).expect("renders");
        let raw = String::from_utf8(message.raw.clone()).expect("ASCII");
        let changed_subject = raw.replacen("Subject: Picks", "Subject: Picks!", 1);
        let changed_body = raw.replacen("Sale", "Sa1e", 1);
        let changed_list = raw.replacen("List-Unsubscribe-Post: ", "List-Unsubscribe-Post:  X ", 1);
        let added_from = format!("From: Mallory <m@evil.example>\r\n{raw}");
        let refolded = raw
            .replace("\r\n ", "\r\n\t  ")
            .replacen("Subject: ", "Subject:   ", 1);
        assert_ne!(refolded, raw, "something was refolded");
        let variants = [
            raw.clone(),
            changed_subject,
            changed_body,
            changed_list,
            added_from,
            refolded,
        ];
        let raws: Vec<Vec<u8>> = variants.iter().map(|v| v.clone().into_bytes()).collect();
        let verdicts = dkimpy::verify_all(&raws, SELECTOR, DOMAIN, key.record);
        let accepted: Vec<bool> = verdicts.iter().map(|v| v.ok).collect();
        assert_eq!(
            accepted,
            [true, false, false, false, false, true],
            "{}: as sent, Subject, body, List-Unsubscribe-Post, a second From, refolded: {:?}",
            key.label,
            verdicts.iter().map(|v| &v.detail).collect::<Vec<_>>()
        );
    }
}

#[test]
fn bad_keys_and_names_are_refused_with_the_reason() {
    let rsa = dkimpy::rsa_key();
    let cases = [
        (dkim(DkimAlgorithm::Ed25519, "not a key"), "base64"),
        (dkim(DkimAlgorithm::Ed25519, "AAAA"), "32 bytes"),
        (dkim(DkimAlgorithm::Ed25519, &rsa.pkcs8), "RSA key"),
        (
            dkim(
                DkimAlgorithm::Rsa,
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n",
            ),
            "not a supported key",
        ),
        (
            DkimSettings {
                selector: "s1; x=1".to_string(),
                ..dkim(DkimAlgorithm::Rsa, &rsa.pkcs8)
            },
            "selector",
        ),
        (
            DkimSettings {
                domain: "shop.example.com\r\nBcc: x@y".to_string(),
                ..dkim(DkimAlgorithm::Rsa, &rsa.pkcs8)
            },
            "domain",
        ),
    ];
    for (settings, reason) in cases {
        let renderer = CampaignRenderer::new(spec(true)).expect("compiles");
        match renderer.with_dkim(&settings) {
            Ok(_) => panic!("{settings:?} accepted"),
            Err(error) => assert!(error.to_string().contains(reason), "{error}"),
        }
    }
}

#[test]
fn key_files_in_every_format_are_read_with_their_algorithm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let formats = [
        (&dkimpy::rsa_key().pkcs8, DkimAlgorithm::Rsa),
        (&dkimpy::rsa_key().legacy, DkimAlgorithm::Rsa),
        (&dkimpy::ed25519_key().pkcs8, DkimAlgorithm::Ed25519),
        (&dkimpy::ed25519_key().legacy, DkimAlgorithm::Ed25519),
    ];
    for (i, (key, algorithm)) in formats.into_iter().enumerate() {
        let path = dir.path().join(format!("key{i}"));
        std::fs::write(&path, format!("{key}\n")).expect("write key");
        let settings = DkimSettings::from_key_file(DOMAIN, SELECTOR, &path).expect("read");
        assert_eq!(settings.algorithm, algorithm, "{key}");
    }
}

// ---- Through the worker: campaign and triggered sends, SMTP and the outbox ----

async fn dkim_dispatcher(store: &Store, config: &TransportConfig, key: &Key) -> Arc<Dispatcher> {
    let transport = Transport::new(config, 4).await.expect("transport");
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost:8080".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.dkim = Some(key.settings.clone());
    Dispatcher::new(store.clone(), transport, settings)
}

/// Subscribes a recipient per first name to `topic`; returns their addresses and names.
async fn seed_recipients(store: &Store, topic: &str) -> BTreeMap<String, String> {
    let people: BTreeMap<String, String> = first_names()
        .into_iter()
        .enumerate()
        .map(|(i, name)| (format!("{topic}{i}@example.org"), name))
        .collect();
    let new: Vec<_> = people
        .iter()
        .map(|(email, name)| recipient(email, name, &[topic]))
        .collect();
    store.upsert_recipients(&new).await.expect("recipients");
    people
}

/// Starts a worker on `dispatcher` and waits until every campaign in `ids` is done.
async fn run_to_done(dispatcher: Arc<Dispatcher>, ids: &[i64]) {
    let store = dispatcher.store.clone();
    let worker = spawn_worker(dispatcher);
    for id in ids {
        campaign::wait_for_status(&store, *id, CampaignStatus::Done, Duration::from_secs(60)).await;
    }
    worker.shutdown().await.expect("worker stops");
}

/// Schedules the campaign and runs it to done with `dispatcher`.
async fn send_campaign(dispatcher: Arc<Dispatcher>, campaign_id: i64) {
    schedule_campaign(&dispatcher.store, &dispatcher.queue, campaign_id)
        .await
        .expect("scheduled");
    run_to_done(dispatcher, &[campaign_id]).await;
}

/// Checks every received message against the recipient it went to.
fn assert_all_sound(
    received: &[(String, Vec<u8>)],
    people: &BTreeMap<String, String>,
    key: &Key,
    what: &str,
) {
    assert_eq!(received.len(), people.len(), "{what}: one message each");
    let raws: Vec<Vec<u8>> = received.iter().map(|(_, raw)| raw.clone()).collect();
    let verdicts = dkimpy::verify_all(&raws, SELECTOR, DOMAIN, key.record);
    for ((to, raw), verdict) in received.iter().zip(&verdicts) {
        let name = &people[to];
        let subject = format!("Picks for {name}");
        assert_sound(raw, verdict, &subject, &format!("{what} to {to}"));
    }
}

fn smtp_messages(received: Vec<support::smtp::Received>) -> Vec<(String, Vec<u8>)> {
    received
        .into_iter()
        .map(|r| (r.to[0].clone(), r.data))
        .collect()
}

fn outbox_messages(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("outbox")
        .map(|entry| std::fs::read(entry.expect("entry").path()).expect("read .eml"))
        .map(|raw| {
            let parsed = MessageParser::default().parse(&raw).expect("parses");
            let to = parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address());
            (to.expect("a To address").to_string(), raw)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_messages_verify_over_smtp_pipelined_smtp_and_in_the_outbox() {
    if !dkimpy::present() {
        return;
    }
    for_each_engine(|store, engine| async move {
        for (k, key) in [&keys()[0], &keys()[2]].into_iter().enumerate() {
            let what = format!("{engine} {}", key.label);
            let topic = format!("t{k}");
            let people = seed_recipients(&store, &topic).await;
            let html = campaign::HTML;

            let smtp = SmtpServer::start();
            let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
            let id = campaign::create_campaign(&store, &format!("smtp{k}"), &topic, html).await;
            send_campaign(dkim_dispatcher(&store, &config, key).await, id).await;
            assert_all_sound(
                &smtp_messages(smtp.received()),
                &people,
                key,
                &format!("{what} SMTP"),
            );

            let scripted = ScriptedServer::start(accept_all(), always_accept_dot()).await;
            let config = TransportConfig::Smtp(SmtpUrl::parse(&scripted.url()).unwrap());
            let id = campaign::create_campaign(&store, &format!("piped{k}"), &topic, html).await;
            send_campaign(dkim_dispatcher(&store, &config, key).await, id).await;
            assert!(
                scripted.pipelined() > 0,
                "{what}: the pipelined path was taken"
            );
            let received = smtp_messages(scripted.received());
            scripted.stop();
            assert_all_sound(&received, &people, key, &format!("{what} pipelined SMTP"));

            let outbox = tempfile::tempdir().expect("outbox dir");
            let config = TransportConfig::Outbox(outbox.path().to_path_buf());
            let id = campaign::create_campaign(&store, &format!("file{k}"), &topic, html).await;
            send_campaign(dkim_dispatcher(&store, &config, key).await, id).await;
            assert_all_sound(
                &outbox_messages(outbox.path()),
                &people,
                key,
                &format!("{what} outbox"),
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_messages_verify_over_smtp_and_in_the_outbox() {
    if !dkimpy::present() {
        return;
    }
    for_each_engine(|store, engine| async move {
        store
            .upsert_template(&NewTemplate {
                name: "receipt".into(),
                subject: SUBJECT.into(),
                preheader: None,
                html: "<p>Thanks {{ recipient.first_name }}, order {{ data.order }}.</p>".into(),
                text: None,
            })
            .await
            .expect("template");
        let people = seed_recipients(&store, "orders").await;
        for (k, key) in [&keys()[1], &keys()[3]].into_iter().enumerate() {
            let what = format!("{engine} {} triggered", key.label);
            let smtp = SmtpServer::start();
            let outbox = tempfile::tempdir().expect("outbox dir");
            let configs = [
                TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap()),
                TransportConfig::Outbox(outbox.path().to_path_buf()),
            ];
            for config in &configs {
                let dispatcher = dkim_dispatcher(&store, config, key).await;
                let links = LinkSettings::new(
                    dispatcher.settings.base_url.clone(),
                    dispatcher.settings.keyring.clone(),
                );
                let mut send_ids = Vec::new();
                for email in people.keys() {
                    let send = TriggeredSend {
                        template: "receipt".into(),
                        email: email.clone(),
                        from_email: "orders@shop.example.com".into(),
                        from_name: "Shop".into(),
                        reply_to: None,
                        kind: CampaignKind::Transactional,
                        topic: None,
                        utm: BTreeMap::new(),
                        data: json!({ "order": format!("A-{k}") })
                            .as_object()
                            .cloned()
                            .unwrap(),
                    };
                    let checked = check_send(&store, &links, send).await.expect("valid send");
                    let queued = enqueue_send(&store, &dispatcher.queue, checked)
                        .await
                        .expect("queued");
                    send_ids.push(queued.send_id);
                }
                run_to_done(dispatcher, &send_ids).await;
            }
            assert_all_sound(
                &smtp_messages(smtp.received()),
                &people,
                key,
                &format!("{what} SMTP"),
            );
            assert_all_sound(
                &outbox_messages(outbox.path()),
                &people,
                key,
                &format!("{what} outbox"),
            );
        }
    })
    .await;
}
