//! Tracking over real HTTP on both engines: the open pixel, click redirects, bad and
//! rotated tokens, machine verdicts (the rendered honeypot link among them), view
//! online, health and metrics, and no event lost under load.

use crate::support;
use crate::support::http;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use http::{FOREIGN_KEY, OLD_KEY, Seeded, TestServer, keys, seed, server_keys, wait_for_events};
use mailcast::links::{HONEYPOT_LINK_ID, Token};
use mailcast::render::{CampaignRenderer, LinkSettings, RecipientContext, RenderSpec};
use mailcast::store::{Claim, DeliveryOutcome, Store, TrackingEvent, TrackingKind};
use mailcast::time::Clock;
use support::for_each_engine;

const SALE_WITH_UTM: &str =
    "https://shop.example.com/sale?colour=red&utm_campaign=spring&utm_source=mailcast";

async fn events(store: &Store, seeded: &Seeded) -> Vec<TrackingEvent> {
    store.tracking_events(seeded.campaign_id).await.unwrap()
}

#[tokio::test]
async fn open_pixel_is_an_uncached_gif_and_records_the_open() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let url = server.token_url(&Token::open(seeded.campaign_id, seeded.ada), &server_keys());

        let response = server.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{engine}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "image/gif");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("no-store")
        );
        assert_eq!(headers["pragma"], "no-cache");
        let body = response.bytes().await.unwrap();
        assert!(
            body.starts_with(b"GIF89a") && body.len() == 43,
            "{engine}: {body:?}"
        );
        let head = server.client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-type"], "image/gif");
        server.stop().await;

        let stored = events(&store, &seeded).await;
        assert_eq!(stored.len(), 2, "{engine}: {stored:?}");
        let (get, head) = (&stored[0], &stored[1]);
        assert_eq!((get.kind.as_str(), get.recipient_id), ("open", seeded.ada));
        assert_eq!(get.verdict, "human", "{engine}: {get:?}");
        assert_eq!(get.ip.as_deref(), Some("127.0.0.1"));
        assert!(get.user_agent.as_deref().unwrap().contains("Firefox"));
        assert_eq!(
            head.verdict, "machine",
            "{engine}: a HEAD request is a link checker"
        );
        assert!(head.reason.as_deref().unwrap().contains("HEAD"), "{head:?}");
    })
    .await;
}

#[tokio::test]
async fn click_redirects_to_the_stored_target_with_utm_whatever_the_request_says() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let token = Token::click(seeded.campaign_id, seeded.grace, seeded.sale_link);
        let url = server.token_url(&token, &server_keys());

        let tricked = format!("{url}?url=https://evil.example/&next=https://evil.example/");
        let response = server.client.get(&tricked).send().await.unwrap();
        assert_eq!(response.status(), 302, "{engine}");
        assert_eq!(response.headers()["location"], SALE_WITH_UTM, "{engine}");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        server.stop().await;

        let stored = events(&store, &seeded).await;
        assert_eq!(stored.len(), 1, "{engine}");
        assert_eq!(stored[0].kind, "click");
        assert_eq!(stored[0].link_id, Some(seeded.sale_link));
        assert_eq!(stored[0].recipient_id, seeded.grace);
        assert_eq!(stored[0].verdict, "human", "{engine}: {:?}", stored[0]);
    })
    .await;
}

/// The token with one character of its payload changed.
fn tampered(token: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    bytes[3] ^= 0x01;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn bad_tokens_get_404_and_record_nothing() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let ours = server_keys();
        let (c, r) = (seeded.campaign_id, seeded.ada);
        let click = Token::click(c, r, seeded.sale_link);
        let paths = [
            format!("/c/{}", tampered(&click.sign(&ours))),
            format!("/c/{}", click.sign(&keys(FOREIGN_KEY))),
            format!("/c/{}", Token::open(c, r).sign(&ours)),
            format!("/c/{}", Token::click(c, r, 123_456).sign(&ours)),
            format!(
                "/c/{}",
                Token::click(c + 1000, r, seeded.sale_link).sign(&ours)
            ),
            "/c/not-a-token".to_string(),
            format!("/c/{}", "A".repeat(300)),
            format!("/o/{}", tampered(&Token::open(c, r).sign(&ours))),
            format!("/o/{}", Token::open(c, r).sign(&keys(FOREIGN_KEY))),
            format!("/o/{}", click.sign(&ours)),
            format!("/u/{}", Token::open(c, r).sign(&ours)),
            format!("/v/{}", tampered(&Token::view(c, r).sign(&ours))),
        ];
        for path in &paths {
            let response = server.get(path).await;
            assert_eq!(response.status(), 404, "{engine}: {path}");
            assert!(
                response.headers().get("location").is_none(),
                "{engine}: {path}"
            );
        }
        server.stop().await;
        for kind in TrackingKind::ALL {
            assert_eq!(
                store.count_tracking_events(kind).await.unwrap(),
                0,
                "{engine}: {kind:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn links_signed_with_a_retired_but_listed_key_still_work() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let before_rotation = keys(OLD_KEY);
        let click = Token::click(seeded.campaign_id, seeded.ada, seeded.sale_link);
        let response = server
            .client
            .get(server.token_url(&click, &before_rotation))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{engine}");
        assert_eq!(response.headers()["location"], SALE_WITH_UTM);
        let open = Token::open(seeded.campaign_id, seeded.ada);
        let response = server
            .client
            .get(server.token_url(&open, &before_rotation))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{engine}");
        server.stop().await;
        assert_eq!(events(&store, &seeded).await.len(), 2, "{engine}");
    })
    .await;
}

/// Marks Ada's message sent now, as the worker would.
async fn sent_just_now(store: &Store, seeded: &Seeded) {
    store
        .add_delivery(seeded.campaign_id, seeded.ada)
        .await
        .unwrap();
    let claimed = store
        .claim(&Claim {
            campaign_id: seeded.campaign_id,
            worker: "test".into(),
            limit: 10,
            lease_seconds: 60,
            after_id: 0,
            due: mailcast::time::now(),
            cap: None,
        })
        .await
        .unwrap();
    let outcomes: Vec<DeliveryOutcome> = claimed
        .iter()
        .map(|d| DeliveryOutcome::Sent {
            delivery_id: d.delivery_id,
            message_id: format!("<{}@test>", d.delivery_id),
        })
        .collect();
    store.record_outcomes("test", &outcomes).await.unwrap();
}

#[tokio::test]
async fn machine_opens_and_clicks_are_stored_with_a_reason() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        sent_just_now(&store, &seeded).await;
        let server = TestServer::start(&store).await;
        let keys = server_keys();
        let (c, ada, grace) = (seeded.campaign_id, seeded.ada, seeded.grace);
        let get = |token: Token, agent: &'static str| {
            let request = server.client.get(server.token_url(&token, &keys)).header("user-agent", agent);
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";
        // Apple Mail Privacy Protection fetches the pixel with a bare agent.
        assert_eq!(get(Token::open(c, grace), "Mozilla/5.0").await, 200);
        // A security gateway follows the link.
        assert_eq!(get(Token::click(c, grace, seeded.sale_link), "Barracuda Sentinel (EE)").await, 302);
        // Ada's message went out a moment ago: her click is a scanner's.
        assert_eq!(get(Token::click(c, ada, seeded.sale_link), browser).await, 302);
        // The hidden honeypot link.
        assert_eq!(get(mailcast::http::honeypot_token(c, grace), browser).await, 204);
        server.stop().await;

        let stored = events(&store, &seeded).await;
        let reasons: Vec<(&str, i64, &str, &str)> = stored
            .iter()
            .map(|e| (e.kind.as_str(), e.recipient_id, e.verdict.as_str(), e.reason.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(stored.len(), 4, "{engine}: {reasons:?}");
        assert!(stored.iter().all(|e| e.verdict == "machine"), "{engine}: {reasons:?}");
        for (index, expected) in ["Apple Mail Privacy Protection", "Barracuda", "after the message was sent", "honeypot"]
            .iter()
            .enumerate()
        {
            assert!(reasons[index].3.contains(expected), "{engine}: {expected} in {reasons:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn every_link_of_a_message_clicked_at_once_is_a_scanner() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let keys = server_keys();
        let (c, grace) = (seeded.campaign_id, seeded.grace);
        for (stored, link) in [seeded.sale_link, seeded.shoes_link]
            .into_iter()
            .enumerate()
        {
            let url = server.token_url(&Token::click(c, grace, link), &keys);
            assert_eq!(server.client.get(url).send().await.unwrap().status(), 302);
            // Written in separate batches: the first is stored as human, then revised
            // when the second arrives.
            wait_for_events(&store, TrackingKind::Click, stored as i64 + 1).await;
        }
        let url = server.token_url(&Token::click(c, seeded.ada, seeded.sale_link), &keys);
        assert_eq!(server.client.get(url).send().await.unwrap().status(), 302);
        server.stop().await;

        let stored = events(&store, &seeded).await;
        let verdicts: Vec<(i64, &str)> = stored
            .iter()
            .map(|e| (e.recipient_id, e.verdict.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            [
                (grace, "machine"),
                (grace, "machine"),
                (seeded.ada, "human")
            ],
            "{engine}: {stored:?}"
        );
        assert!(
            stored[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("several links"),
            "{engine}"
        );
    })
    .await;
}

/// Grace's message of the seeded campaign, rendered for links to `server`.
async fn render_for(store: &Store, seeded: &Seeded, server: &TestServer) -> (String, String) {
    let campaign = store.campaign(seeded.campaign_id).await.unwrap();
    let template = store.template(campaign.template_id).await.unwrap();
    let links = LinkSettings::new(server.base.clone(), server_keys());
    let renderer = CampaignRenderer::new(RenderSpec::from_campaign(&campaign, template, links));
    let recipient = store.recipient(seeded.grace).await.unwrap().unwrap();
    let context = RecipientContext {
        recipient,
        segments: Vec::new(),
        recommendations: Vec::new(),
        cart: Vec::new(),
        trigger: None,
    };
    let message = renderer.unwrap().render(&context).unwrap();
    store
        .store_links(seeded.campaign_id, &message.links)
        .await
        .unwrap();
    (message.html, message.text)
}

/// The start tags of the HTML's links, and their href values.
fn anchors(html: &str) -> Vec<(&str, &str)> {
    html.split("<a ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let href = tag.split("href=\"").nth(1)?.split('"').next()?;
            Some((tag, href))
        })
        .collect()
}

#[tokio::test]
async fn a_scanner_following_the_rendered_honeypot_link_is_a_machine_on_that_message() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let mut settings = http::settings();
        settings.writer.timing.burst = Duration::from_secs(1);
        let clock = Clock::manual(mailcast::time::now());
        settings.clock = clock.clone();
        let server = TestServer::start_with(&store, settings).await;
        let (html, text) = render_for(&store, &seeded, &server).await;
        let click_prefix = format!("{}/c/", server.base);
        let (hidden, visible): (Vec<_>, Vec<_>) = anchors(&html)
            .into_iter()
            .filter(|(_, href)| href.starts_with(&click_prefix))
            .partition(|(tag, _)| tag.contains("display:none"));
        assert_eq!(hidden.len(), 1, "{engine}: one honeypot link in {html}");
        let (tag, honeypot) = hidden[0];
        assert!(tag.contains(r#"aria-hidden="true""#) && tag.contains(r#"tabindex="-1""#));
        assert!(
            !text.contains(honeypot),
            "{engine}: not in the text part: {text}"
        );
        assert_eq!(visible.len(), 2, "{engine}: sale and shoes in {html}");

        // A scanner with a browser's agent requests every link of the message.
        let status = |url: &str| {
            let request = server.client.get(url);
            async move { request.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(status(honeypot).await, 204, "{engine}");
        for (_, href) in &visible {
            assert_eq!(status(href).await, 302, "{engine}");
        }
        // Later than the burst window, Grace herself clicks the sale link.
        clock.advance(3);
        assert_eq!(status(visible[0].1).await, 302, "{engine}");
        server.stop().await;

        let stored = events(&store, &seeded).await;
        let seen: Vec<(Option<i64>, &str, &str)> = stored
            .iter()
            .map(|e| {
                (
                    e.link_id,
                    e.verdict.as_str(),
                    e.reason.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(stored.len(), 4, "{engine}: {seen:?}");
        assert!(
            stored
                .iter()
                .all(|e| e.recipient_id == seeded.grace && e.kind == "click")
        );
        let (link, verdict, reason) = seen[0];
        assert_eq!(
            (link, verdict),
            (Some(HONEYPOT_LINK_ID), "machine"),
            "{engine}"
        );
        assert!(reason.contains("honeypot"), "{engine}: {seen:?}");
        for (link, verdict, reason) in &seen[1..3] {
            assert_ne!(*link, Some(HONEYPOT_LINK_ID));
            assert_eq!(*verdict, "machine", "{engine}: {seen:?}");
            assert!(reason.contains("several links"), "{engine}: {seen:?}");
        }
        assert_eq!(
            seen[3],
            (seen[1].0, "human", ""),
            "{engine}: the sale link again"
        );
    })
    .await;
}

#[tokio::test]
async fn every_answered_click_is_stored_under_load() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        // Clicks are stored for recipients who exist (an erased one's are dropped).
        let people: Vec<_> = (0..598)
            .map(|i| support::recipient(&format!("reader{i}@example.net"), "Reader", &[]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let server = TestServer::start(&store).await;
        let keys = server_keys();
        let mut addresses: Vec<String> = people.iter().map(|p| p.email.key()).collect();
        addresses.extend(["ada@example.com".into(), "grace@example.org".into()]);
        let keys_of: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let recipients = store.recipient_ids(&keys_of).await.unwrap();
        assert_eq!(recipients.len(), 600, "{engine}");
        let urls: Vec<String> = recipients
            .into_values()
            .map(|recipient| {
                server.token_url(
                    &Token::click(seeded.campaign_id, recipient, seeded.sale_link),
                    &keys,
                )
            })
            .collect();
        let answered = futures::stream::iter(urls)
            .map(|url| {
                let client = server.client.clone();
                async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
            })
            .buffer_unordered(48)
            .filter(|status| std::future::ready(matches!(status, Ok(302))))
            .count()
            .await;
        assert_eq!(answered, 600, "{engine}");
        server.stop().await;
        let stored = store
            .count_tracking_events(TrackingKind::Click)
            .await
            .unwrap();
        assert_eq!(
            stored, answered as i64,
            "{engine}: every answered click is stored"
        );
    })
    .await;
}

#[tokio::test]
async fn health_metrics_and_request_ids() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let server = TestServer::start(&store).await;
        let health = server.get("/healthz").await;
        assert_eq!(health.status(), 200, "{engine}");
        assert_eq!(
            health.json::<serde_json::Value>().await.unwrap()["status"],
            "ok"
        );

        let click = server.token_url(
            &Token::click(seeded.campaign_id, seeded.ada, seeded.sale_link),
            &server_keys(),
        );
        let answered = server
            .client
            .get(&click)
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .unwrap();
        assert_eq!(answered.headers()["x-request-id"], "trace-me-42");
        let generated = server.get("/c/not-a-token").await;
        assert_eq!(
            generated.headers()["x-request-id"].len(),
            16,
            "{engine}: an id is made up"
        );
        wait_for_events(&store, TrackingKind::Click, 1).await;

        let metrics = server.get("/metrics").await.text().await.unwrap();
        for line in [
            "mailcast_http_requests_total{route=\"/c/{token}\",status=\"302\"} 1",
            "mailcast_http_requests_total{route=\"/c/{token}\",status=\"404\"} 1",
            "mailcast_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
            "mailcast_tracking_events_written_total{kind=\"click\",verdict=\"human\"} 1",
            "mailcast_delivery_queue_depth 0",
            "mailcast_deliveries{status=\"sent\"} 0",
            "mailcast_store_up 1",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "{engine}: {line} missing from\n{metrics}"
            );
        }

        store.close().await;
        assert_eq!(
            server.get("/healthz").await.status(),
            503,
            "{engine}: store closed"
        );
        server.stop().await;
    })
    .await;
}
