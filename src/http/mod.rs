//! The HTTP side (DESIGN.md): one axum server for recipients' clicks, mail providers'
//! one-click unsubscribes, CRMs and operators.
//!
//! | route | what |
//! |-------|------|
//! | `GET|HEAD /o/{token}` | open pixel (1×1 GIF, never cached) |
//! | `GET|HEAD /c/{token}` | 302 to the campaign's stored link, with its UTM parameters |
//! | `GET|HEAD /v/{token}` | the message, rendered again ("view online") |
//! | `GET|HEAD /u/{token}` | preferences page: topics and an unsubscribe button; changes nothing |
//! | `POST /u/{token}` | `List-Unsubscribe=One-Click` (RFC 8058) or the page's topic form |
//! | `/api/…` | the CRM API ([`api_routes`], `/api/openapi.json`) |
//! | `/app/…` | the marketers' dashboard (signed-in users; `app`) |
//! | `GET /healthz`, `GET /metrics` | store reachable; Prometheus text (with bounce and complaint rates per campaign and declared segment) |
//! | `POST /webhooks/{ses,sendgrid,postmark,mailgun}` | providers' bounces and complaints (`webhooks`) |
//!
//! Every connection is bounded ([`HttpLimits`]): header, body and idle timeouts, a cap
//! on open connections, and a body limit per kind of route, checked against the
//! announced length before any of the body is read.
//!
//! A bad token is a 404 and records nothing. Opens, clicks and unsubscribes go through
//! a bounded, batched writer ([`WriterSettings`]) with a human/machine verdict
//! ([`verdict`]); graceful shutdown drains it.
//!
//! ```no_run
//! # async fn demo(store: mailcast::store::Store) -> Result<(), mailcast::http::ServeError> {
//! use mailcast::http::{HttpSettings, bind, serve};
//! let settings = HttpSettings::new("https://t.example.com".into(), mailcast::links::KeyRing::development());
//! let listener = bind("127.0.0.1:8080").await?;
//! serve(listener, store, settings, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod api;
mod app;
mod connection;
mod error;
mod feedback_metrics;
mod limits;
mod metrics;
mod observe;
mod ops;
mod pages;
mod recent;
mod server;
mod state;
mod tracking;
mod unsubscribe;
pub mod verdict;
mod view;
mod webhooks;
mod writer;

pub use api::{OPENAPI, api_routes, generate_api_key, hash_api_key};
pub use error::{FieldErrors, HttpError};
pub use limits::{BodyTimedOut, HttpLimits};
pub use server::{HttpServer, HttpSettings, ServeError, bind, serve};
pub use verdict::{HONEYPOT_LINK_ID, TimingRules, honeypot_token};
pub use webhooks::{
    MailgunKey, PostmarkAuth, SendGridKey, SesWebhook, WebhookSettingError, WebhookSettings,
};
pub use writer::WriterSettings;
