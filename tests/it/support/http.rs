//! The HTTP server on a free loopback port over a test store, a client that does not
//! follow redirects, and a seeded campaign to click through.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mailcast::config::TransportConfig;
use mailcast::dispatch::{DispatchSettings, Dispatcher, Transport, unique_worker_name};
use mailcast::domain::CampaignKind;
use mailcast::http::{HttpServer, HttpSettings, WriterSettings, bind};
use mailcast::links::{KeyRing, Token, link_id};
use mailcast::store::{CampaignSettings, NewCampaign, NewTemplate, Store, TrackingKind};

use crate::support::recipient;

/// Signs new links.
pub const NEW_KEY: &str = "2:00112233445566778899aabbccddeeff";
/// Signed links until the last rotation; still listed, so its links still work.
pub const OLD_KEY: &str = "1:ffeeddccbbaa99887766554433221100";
/// A key the server does not list.
pub const FOREIGN_KEY: &str = "9:0f0e0d0c0b0a09080706050403020100";

/// A dispatcher writing `.eml` files into `outbox`, its links pointing at `base_url`.
pub async fn outbox_dispatcher(
    store: &Store,
    outbox: &std::path::Path,
    base_url: &str,
) -> Arc<Dispatcher> {
    let transport = Transport::new(&TransportConfig::Outbox(outbox.to_path_buf()), 4)
        .await
        .unwrap();
    let mut settings =
        DispatchSettings::new(unique_worker_name(), base_url.to_string(), server_keys());
    settings.poll_interval = Duration::from_millis(50);
    Dispatcher::new(store.clone(), transport, settings)
}

pub fn server_keys() -> KeyRing {
    KeyRing::parse(&format!("{NEW_KEY},{OLD_KEY}")).unwrap()
}

pub fn keys(spec: &str) -> KeyRing {
    KeyRing::parse(spec).unwrap()
}

pub fn settings() -> HttpSettings {
    let mut settings = HttpSettings::new("http://t.example.test".into(), server_keys());
    settings.writer = WriterSettings {
        max_delay: Duration::from_millis(10),
        ..WriterSettings::default()
    };
    settings
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    server: HttpServer,
}

impl TestServer {
    pub async fn start(store: &Store) -> TestServer {
        TestServer::start_with(store, settings()).await
    }

    pub async fn start_with(store: &Store, settings: HttpSettings) -> TestServer {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let server = HttpServer::start(listener, store.clone(), settings)
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
            .build()
            .unwrap();
        TestServer {
            base: format!("http://{}", server.local_addr()),
            client,
            store: store.clone(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token_url(&self, token: &Token, keys: &KeyRing) -> String {
        token.url(&self.base, keys)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Graceful shutdown: every queued event is stored when this returns.
    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// A campaign with a stored link, and two recipients to click it.
pub struct Seeded {
    pub campaign_id: i64,
    pub ada: i64,
    pub grace: i64,
    /// Stored without UTM parameters; the campaign's UTM settings are appended.
    pub sale_url: &'static str,
    pub sale_link: i64,
    pub shoes_link: i64,
}

pub const SALE_URL: &str = "https://shop.example.com/sale?colour=red";
pub const SHOES_URL: &str = "https://shop.example.com/shoes";

pub const TEMPLATE_HTML: &str = r#"<html><body>
<p>Hello {{ recipient.first_name | default(value="there") }}!</p>
<a href="https://shop.example.com/sale?colour=red">Sale</a>
<a href="https://shop.example.com/shoes">Shoes</a>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ view_online_url }}">View online</a></p>
</body></html>"#;

pub async fn template(store: &Store) -> i64 {
    store
        .upsert_template(&NewTemplate {
            name: "spring".into(),
            subject: "Spring picks for {{ recipient.first_name | default(value=\"you\") }}".into(),
            preheader: None,
            html: TEMPLATE_HTML.into(),
            text: None,
        })
        .await
        .unwrap()
}

pub async fn seed(store: &Store) -> Seeded {
    let mut ada = recipient("ada@example.com", "Ada", &["news", "offers"]);
    ada.country = Some("GB".into());
    store
        .upsert_recipients(&[ada, recipient("grace@example.org", "Grace", &["news"])])
        .await
        .unwrap();
    store
        .upsert_segment("britons", r#"country in ["GB"]"#, "")
        .await
        .unwrap();
    let template_id = template(store).await;
    let mut settings = CampaignSettings::default();
    settings.utm.insert("utm_source".into(), "mailcast".into());
    settings.utm.insert("utm_campaign".into(), "spring".into());
    settings.declared_segments = vec!["britons".into()];
    let campaign_id = store
        .create_campaign(&NewCampaign {
            name: "spring".into(),
            kind: CampaignKind::Marketing,
            template_id,
            segment_id: None,
            topic: Some("news".into()),
            from_name: "Shop".into(),
            from_email: "news@shop.example.com".into(),
            reply_to: None,
            send_at: None,
            settings,
        })
        .await
        .unwrap();
    let (sale_link, shoes_link) = (link_id(SALE_URL), link_id(SHOES_URL));
    store
        .store_links(
            campaign_id,
            &[
                (sale_link, SALE_URL.to_string()),
                (shoes_link, SHOES_URL.to_string()),
            ],
        )
        .await
        .unwrap();
    let id = |email: &str| {
        let store = store.clone();
        let email = email.to_string();
        async move {
            let address = mailcast::domain::EmailAddress::parse(&email).unwrap();
            store
                .recipient_by_email(&address)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    Seeded {
        campaign_id,
        ada: id("ada@example.com").await,
        grace: id("grace@example.org").await,
        sale_url: SALE_URL,
        sale_link,
        shoes_link,
    }
}

/// Waits until the store holds `n` events of `kind` (the writer flushes in the
/// background).
pub async fn wait_for_events(store: &Store, kind: TrackingKind, n: i64) {
    let count = super::eventually(
        &format!("{n} {kind:?} events"),
        Duration::from_secs(20),
        async || match store.count_tracking_events(kind).await.unwrap() {
            count if count >= n => Ok(count),
            count => Err(format!("{count} stored")),
        },
    )
    .await;
    assert_eq!(count, n, "more {kind:?} events than expected");
}

/// A key for the CRM API, created as `mailcast api-key create` does.
pub async fn api_key(store: &Store, name: &str) -> String {
    let key = mailcast::http::generate_api_key();
    store
        .create_api_key(name, &mailcast::http::hash_api_key(&key))
        .await
        .unwrap();
    key
}
