//! The whole path once, end to end: ledger, apalis jobs, Tera render, a real SMTP
//! server started inside the test.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, Transport, schedule_campaign, spawn_worker, unique_worker_name,
};
use mailcast::domain::{CampaignKind, CampaignStatus, EmailAddress};
use mailcast::links::KeyRing;
use mailcast::store::{CampaignSettings, NewCampaign, NewTemplate, Store};
use support::smtp::SmtpServer;
use support::{for_each_engine, recipient};

const HTML: &str = r#"<html><body>
<p>Hello {{ recipient.first_name | default(value="there") }}, picks for {{ recipient.email }}.</p>
<a href="https://shop.example.com/sale">Shop the sale</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>
</body></html>"#;

async fn dispatcher_for(store: &Store, smtp: &SmtpServer) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let transport = Transport::new(&config, 4).await.unwrap();
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost:8080".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = 7;
    settings.slots = 2;
    Dispatcher::new(store.clone(), transport, settings)
}

async fn wait_for(store: &Store, campaign_id: i64, status: CampaignStatus) {
    support::campaign::wait_for_status(store, campaign_id, status, Duration::from_secs(60)).await
}

#[tokio::test]
async fn every_expected_recipient_gets_exactly_one_personal_message_over_smtp() {
    for_each_engine(|store, engine| async move {
        let mut people = vec![
            recipient("ada@example.com", "Ada", &["newsletter"]),
            recipient("grace@example.org", "Grace", &["newsletter"]),
            recipient("linus@example.net", "Linus", &["newsletter"]),
            recipient("no.consent@example.com", "Nobody", &["promotions"]),
            recipient("bounced@example.com", "Bounced", &["newsletter"]),
        ];
        for i in 0..20 {
            people.push(recipient(
                &format!("reader{i}@example.com"),
                &format!("Reader{i}"),
                &["newsletter"],
            ));
        }
        let mut unnamed = recipient("anon@example.com", "x", &["newsletter"]);
        unnamed.first_name = None;
        people.push(unnamed);
        store.upsert_recipients(&people).await.unwrap();
        store
            .suppress(
                &EmailAddress::parse("bounced@example.com").unwrap(),
                "hard bounce",
            )
            .await
            .unwrap();

        let template_id = store
            .upsert_template(&NewTemplate {
                name: "picks".into(),
                subject: "Picks for {{ recipient.first_name | default(value=\"you\") }}".into(),
                preheader: None,
                html: HTML.into(),
                text: None,
            })
            .await
            .unwrap();
        let campaign_id = store
            .create_campaign(&NewCampaign {
                name: "weekly".into(),
                kind: CampaignKind::Marketing,
                template_id,
                segment_id: None,
                topic: Some("newsletter".into()),
                from_name: "Shop".into(),
                from_email: "news@shop.example.com".into(),
                reply_to: None,
                send_at: None,
                settings: CampaignSettings::default(),
            })
            .await
            .unwrap();

        let smtp = SmtpServer::start();
        let dispatcher = dispatcher_for(&store, &smtp).await;
        schedule_campaign(&store, &dispatcher.queue, campaign_id)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for(&store, campaign_id, CampaignStatus::Done).await;
        worker.shutdown().await.unwrap();

        let received = smtp.received();
        let mut expected: Vec<String> = people
            .iter()
            .map(|p| p.email.key())
            .filter(|e| e != "no.consent@example.com" && e != "bounced@example.com")
            .collect();
        expected.sort();
        let mut got: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
        got.sort();
        assert_eq!(
            got, expected,
            "{engine}: each expected recipient exactly once, nobody else"
        );

        for message in &received {
            let to = &message.to[0];
            let person = people.iter().find(|p| &p.email.key() == to).unwrap();
            let text = message.text();
            let greeting = match &person.first_name {
                Some(name) => format!("Hello {name}"),
                None => "Hello there".to_string(),
            };
            assert!(
                text.contains(&greeting),
                "{engine}: {to} lacks '{greeting}'"
            );
            assert!(
                text.contains(to.as_str()),
                "{engine}: {to} lacks own address"
            );
            assert!(
                !text.contains("https://shop.example.com/sale"),
                "{engine}: link not tracked"
            );
        }
        let counts = store.ledger_counts(campaign_id).await.unwrap();
        assert_eq!(counts.sent as usize, expected.len(), "{engine}: {counts:?}");
    })
    .await;
}

#[tokio::test]
async fn a_campaign_segment_picks_the_audience_and_declared_segments_choose_blocks() {
    use mailcast::store::{CampaignSettings, NewCampaign, NewTemplate};
    use support::campaign::{WorkerOptions, run_to_done};

    for_each_engine(|store, engine| async move {
        let mut people = Vec::new();
        for (email, country, tier) in [
            ("jonas@example.de", "DE", "gold"),
            ("mia@example.de", "DE", "bronze"),
            ("sam@example.com", "US", "gold"),
        ] {
            let mut person = recipient(email, "P", &["news"]);
            person.country = Some(country.into());
            person.attributes.insert("tier".into(), tier.into());
            people.push(person);
        }
        store.upsert_recipients(&people).await.unwrap();
        let germany = store
            .upsert_segment("germany", r#"country == "DE""#, "")
            .await
            .unwrap();
        store
            .upsert_segment("vip", r#"attr.tier == "gold""#, "")
            .await
            .unwrap();
        let template_id = store
            .upsert_template(&NewTemplate {
                name: "blocks".into(),
                subject: "Hello".into(),
                preheader: None,
                html:
                    r#"<p>{% if "vip" in segments %}VIP-BLOCK{% else %}REGULAR-BLOCK{% endif %}</p>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>"#
                        .into(),
                text: None,
            })
            .await
            .unwrap();
        let campaign = store
            .create_campaign(&NewCampaign {
                name: "de-only".into(),
                kind: CampaignKind::Marketing,
                template_id,
                segment_id: Some(germany),
                topic: Some("news".into()),
                from_name: "Shop".into(),
                from_email: "news@shop.example.com".into(),
                reply_to: None,
                send_at: None,
                settings: CampaignSettings {
                    declared_segments: vec!["vip".into()],
                    ..CampaignSettings::default()
                },
            })
            .await
            .unwrap();
        let smtp = SmtpServer::start();
        let counts = run_to_done(&store, campaign, &smtp.url(), &WorkerOptions::default()).await;
        assert_eq!(counts.sent, 2, "{engine}: only the German recipients");
        for message in smtp.received() {
            let parsed = mail_parser::MessageParser::default()
                .parse(&message.data)
                .unwrap();
            let html = parsed.body_html(0).unwrap().to_string();
            let expected = if message.to[0] == "jonas@example.de" {
                "VIP-BLOCK"
            } else {
                "REGULAR-BLOCK"
            };
            assert!(
                html.contains(expected),
                "{engine}: {} lacks {expected}",
                message.to[0]
            );
        }
    })
    .await;
}
