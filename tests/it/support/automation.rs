//! Automations in a test: an engine on a clock the test moves, a worker that sends
//! what runs put in the ledger to a real SMTP server, and events as a CRM pushes them.

use std::sync::Arc;

use mailcast::automation::{AutomationEngine, EngineSettings, TickReport, load_automation};
use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{Dispatcher, WorkerHandle, spawn_worker, unique_worker_name};
use mailcast::store::{NewEvent, NewProduct, NewTemplate, Store};
use mailcast::time::Clock;

use super::campaign::{WorkerOptions, dispatcher_configured};
use super::smtp::SmtpServer;

/// A marketing template showing the recipient's cart and the automation's data.
pub const CART_HTML: &str = r#"<html><body>
<p>Hi {{ recipient.first_name | default(value="there") }}, still thinking it over?</p>
{% for item in cart %}<p>In your cart: {{ item.name }}</p>{% endfor %}
{% if trigger and trigger.product %}<p>Since your {{ trigger.kind }} of {{ trigger.product.name }} at {{ trigger.occurred_at }}</p>{% endif %}
<a href="https://shop.example.com/cart">Back to your cart</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>
</body></html>"#;

pub async fn store_template(store: &Store, name: &str, html: &str) {
    store
        .upsert_template(&NewTemplate {
            name: name.into(),
            subject: format!("{name} for {{{{ recipient.first_name }}}}"),
            preheader: None,
            html: html.into(),
            text: None,
        })
        .await
        .unwrap();
}

pub async fn store_product(store: &Store, sku: &str, name: &str) -> i64 {
    store
        .upsert_products(&[NewProduct {
            sku: sku.into(),
            name: name.into(),
            url: format!("https://shop.example.com/p/{sku}"),
            image_url: None,
            price_cents: 4_999,
            currency: "EUR".into(),
            category: "shoes".into(),
            in_stock: true,
        }])
        .await
        .unwrap();
    store.product_ids(&[sku]).await.unwrap()[sku]
}

/// Loads `source`, panicking with every problem when it is refused.
pub async fn load(store: &Store, source: &str) {
    if let Err(error) = load_automation(store, source).await {
        panic!("automation refused:\n{error}");
    }
}

/// An engine of its own (one "worker process") on `clock`.
pub fn engine(store: &Store, clock: &Clock) -> Arc<AutomationEngine> {
    let settings = EngineSettings::new(unique_worker_name(), clock.clone(), chrono_tz::UTC);
    AutomationEngine::new(
        store.clone(),
        mailcast::dispatch::JobQueue::new(store),
        settings,
    )
}

/// Ticks until no due run is left: what one moment of the test's clock does.
pub async fn tick(engine: &AutomationEngine) -> TickReport {
    engine.drain().await.expect("automation tick")
}

/// A worker sending to `smtp` on `clock`, leaving automation runs to the test's engine.
pub async fn worker(
    store: &Store,
    smtp: &SmtpServer,
    clock: &Clock,
) -> (Arc<Dispatcher>, WorkerHandle) {
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let dispatcher = dispatcher_configured(store, &config, &WorkerOptions::default(), |s| {
        s.clock = clock.clone();
        s.automations = false;
    })
    .await;
    let handle = spawn_worker(dispatcher.clone());
    (dispatcher, handle)
}

/// One event as a CRM pushes it; `external_id` makes a second push of it a no-op.
pub async fn push_event(
    store: &Store,
    external_id: &str,
    email: &str,
    kind: &str,
    product_id: Option<i64>,
    at: i64,
) -> u64 {
    let recipient = store
        .recipient_by_email(&mailcast::domain::EmailAddress::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no recipient {email}"));
    store
        .insert_events(&[NewEvent {
            external_id: Some(external_id.into()),
            recipient_id: recipient.id,
            kind: kind.into(),
            product_id,
            amount_cents: (kind == "purchase").then_some(4_999),
            occurred_at: at,
            properties: serde_json::Map::new(),
        }])
        .await
        .unwrap()
}
