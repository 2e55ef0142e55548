//! The per-recipient Tera context. Field names here are the template language a
//! marketer writes against; templates/README.md documents them.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Serialize;
use tera::Value;

use super::RecipientContext;
use crate::store::{Product, Recipient};

/// Per-recipient URLs, signed by the renderer.
pub(crate) struct Urls {
    pub unsubscribe: String,
    pub preferences: String,
    pub view_online: String,
    pub open_pixel: String,
    pub honeypot: String,
}

#[derive(Serialize)]
struct RecipientView<'a> {
    id: i64,
    email: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    full_name: Option<String>,
    country: Option<&'a str>,
    city: Option<&'a str>,
    locale: Option<&'a str>,
    timezone: Option<&'a str>,
    attributes: &'a serde_json::Value,
}

impl<'a> RecipientView<'a> {
    fn new(r: &'a Recipient) -> Self {
        let first_name = present(&r.first_name);
        let last_name = present(&r.last_name);
        let full_name = match (first_name, last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l).map(str::to_string),
        };
        Self {
            id: r.id,
            email: &r.email,
            first_name,
            last_name,
            full_name,
            country: present(&r.country),
            city: present(&r.city),
            locale: present(&r.locale),
            timezone: present(&r.timezone),
            attributes: &r.attributes.0,
        }
    }
}

/// A short digest of the recipient's data as templates see it: which version of the
/// recipient a message was rendered for.
pub fn recipient_digest(recipient: &Recipient) -> String {
    use base64::Engine;
    use sha2::Digest;
    let view = serde_json::to_vec(&RecipientView::new(recipient)).expect("recipient serialises");
    let hash = sha2::Sha256::digest(&view);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash[..8])
}

/// Blank strings count as missing, so `default(value=…)` applies to them.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Serialize)]
struct ProductView<'a> {
    id: i64,
    sku: &'a str,
    name: &'a str,
    url: &'a str,
    image_url: Option<&'a str>,
    /// Formatted for display: `€12.50`, `$3.00`, `12.50 CHF`.
    price: String,
    price_cents: i64,
    currency: &'a str,
    category: &'a str,
    in_stock: bool,
}

impl<'a> ProductView<'a> {
    fn new(p: &'a Product) -> Self {
        Self {
            id: p.id,
            sku: &p.sku,
            name: &p.name,
            url: &p.url,
            image_url: p.image_url.as_deref(),
            price: format_price(p.price_cents, &p.currency),
            price_cents: p.price_cents,
            currency: &p.currency,
            category: &p.category,
            in_stock: p.in_stock,
        }
    }
}

/// Products repeat across a campaign's recipients: each one's template value is built
/// once. An entry is reused only while the product is unchanged.
#[derive(Default)]
pub(crate) struct ProductCache {
    values: RwLock<HashMap<i64, (Product, Value)>>,
}

const PRODUCT_CACHE_LIMIT: usize = 50_000;

impl ProductCache {
    fn value(&self, product: &Product) -> Value {
        let cached = self.values.read().ok().and_then(|values| {
            values
                .get(&product.id)
                .filter(|(known, _)| same_product(known, product))
                .map(|(_, value)| value.clone())
        });
        if let Some(value) = cached {
            return value;
        }
        let value = Value::from_serializable(&ProductView::new(product));
        if let Ok(mut values) = self.values.write()
            && values.len() < PRODUCT_CACHE_LIMIT
        {
            values.insert(product.id, (product.clone(), value.clone()));
        }
        value
    }
}

fn same_product(a: &Product, b: &Product) -> bool {
    a.price_cents == b.price_cents
        && a.in_stock == b.in_stock
        && a.name == b.name
        && a.url == b.url
        && a.image_url == b.image_url
        && a.currency == b.currency
        && a.sku == b.sku
        && a.category == b.category
}

/// Formats integer cents with the currency's usual symbol.
pub fn format_price(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let amount = format!("{}.{:02}", (cents / 100).abs(), (cents % 100).abs());
    let symbol = match currency.to_ascii_uppercase().as_str() {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    };
    match symbol {
        Some(symbol) => format!("{sign}{symbol}{amount}"),
        None => format!("{sign}{amount} {currency}"),
    }
}

/// `trigger`: the event's kind, time (RFC 3339), amount (formatted, in the event's
/// product's currency when it has one), properties and product.
fn trigger_value(trigger: &crate::store::TriggerEvent, products: &ProductCache) -> Value {
    let mut map = tera::Map::default();
    map.insert("kind".into(), Value::from(trigger.kind.as_str()));
    let at = crate::time::format_timestamp(trigger.occurred_at);
    map.insert("occurred_at".into(), Value::from(at.as_str()));
    let amount = trigger
        .amount_cents
        .map(|cents| format!("{}.{:02}", cents / 100, cents % 100));
    map.insert("amount".into(), Value::from_serializable(&amount));
    map.insert(
        "properties".into(),
        Value::from_serializable(&trigger.properties),
    );
    let product = trigger.product.as_ref().map(|p| products.value(p));
    map.insert("product".into(), product.unwrap_or(Value::none()));
    Value::from(map)
}

/// The cart total, when every item shares one currency.
fn cart_total(cart: &[Product]) -> Option<String> {
    let currency = &cart.first()?.currency;
    if cart.iter().any(|p| &p.currency != currency) {
        return None;
    }
    Some(format_price(
        cart.iter().map(|p| p.price_cents).sum(),
        currency,
    ))
}

/// Everything a body or subject template sees, except `campaign`, which lives in the
/// campaign's global context.
pub(crate) fn build(ctx: &RecipientContext, urls: &Urls, products: &ProductCache) -> tera::Context {
    let mut context = tera::Context::new();
    context.insert("recipient", &RecipientView::new(&ctx.recipient));
    context.insert("segments", &ctx.segments);
    let recommendations: Vec<Value> = ctx
        .recommendations
        .iter()
        .map(|r| {
            let mut map = tera::Map::default();
            map.insert("product".into(), products.value(&r.product));
            map.insert("reason".into(), Value::from(r.reason.as_str()));
            Value::from(map)
        })
        .collect();
    context.insert_value("recommendations", Value::from(recommendations));
    let cart: Vec<Value> = ctx.cart.iter().map(|p| products.value(p)).collect();
    context.insert_value("cart", Value::from(cart));
    context.insert("cart_total", &cart_total(&ctx.cart));
    let trigger = ctx.trigger.as_ref().map(|t| trigger_value(t, products));
    context.insert_value("trigger", trigger.unwrap_or(Value::none()));
    context.insert("unsubscribe_url", &urls.unsubscribe);
    context.insert("preferences_url", &urls.preferences);
    context.insert("view_online_url", &urls.view_online);
    context.insert("open_pixel_url", &urls.open_pixel);
    context.insert("honeypot_url", &urls.honeypot);
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(price_cents: i64) -> Product {
        Product {
            id: 1,
            sku: "S1".into(),
            name: "Shoe".into(),
            url: "https://shop.example/p/1".into(),
            image_url: None,
            price_cents,
            currency: "EUR".into(),
            category: "shoes".into(),
            in_stock: true,
        }
    }

    #[test]
    fn cached_products_follow_changes() {
        let cache = ProductCache::default();
        let price = |v: Value| {
            v.get_from_path("price")
                .and_then(|p| p.as_str().map(str::to_string))
        };
        assert_eq!(
            price(cache.value(&product(1250))).as_deref(),
            Some("€12.50")
        );
        assert_eq!(
            price(cache.value(&product(1250))).as_deref(),
            Some("€12.50")
        );
        assert_eq!(price(cache.value(&product(999))).as_deref(), Some("€9.99"));
    }

    #[test]
    fn prices_use_symbols_where_known() {
        assert_eq!(format_price(1250, "EUR"), "€12.50");
        assert_eq!(format_price(5, "usd"), "$0.05");
        assert_eq!(format_price(-199, "GBP"), "-£1.99");
        assert_eq!(format_price(1000, "CHF"), "10.00 CHF");
    }
}
