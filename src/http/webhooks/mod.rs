//! Where sending providers report bounces and complaints over HTTP:
//!
//! | route | provider | authenticated by |
//! |-------|----------|------------------|
//! | `POST /webhooks/ses` | Amazon SES, through an SNS HTTPS subscription | SNS's RSA signature, with the certificate at its `SigningCertURL` (Amazon's hosts only) |
//! | `POST /webhooks/sendgrid` | SendGrid's signed event webhook | ECDSA P-256 over the timestamp and the body |
//! | `POST /webhooks/postmark` | Postmark's bounce, spam complaint and delivery webhooks | the HTTP Basic credentials set on the webhook |
//! | `POST /webhooks/mailgun` | Mailgun's webhooks | HMAC-SHA256 of the timestamp and a token |
//!
//! A provider whose secret is not configured answers 404. A request without credentials
//! or signature answers 401; one whose signature does not match, or whose timestamp is
//! more than ten minutes from the server's clock, 403; nothing of it is stored. A signed
//! body that lacks what an event needs answers 400 naming the field.
//!
//! Each event is stored as a bounce ([`WebhookEvent::document`]) and applied as bounces
//! received by mail are ([`bounce::process`]): the same event delivered twice is the
//! same row, applied once.

mod certificates;
mod mailgun;
mod postmark;
mod sendgrid;
mod ses;

use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::post;
use serde::Serialize;
use serde_json::Value;

use super::error::HttpError;
use super::state::AppState;
use crate::bounce::{self, BounceSettings, EventError, PauseThresholds, WebhookEvent};
use crate::links::KeyRing;
use crate::store::{IncomingBounce, SoftBouncePolicy, Store};
use crate::time::Clock;

pub use mailgun::MailgunKey;
pub use postmark::PostmarkAuth;
pub use sendgrid::SendGridKey;
pub use ses::SesWebhook;

/// Which providers' webhooks are served (None: that route answers 404), and how their
/// events are applied.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub ses: Option<SesWebhook>,
    pub sendgrid: Option<SendGridKey>,
    pub postmark: Option<PostmarkAuth>,
    pub mailgun: Option<MailgunKey>,
    /// Soft-bounce policy and pause thresholds, as for bounces received by mail.
    pub bounces: BounceSettings,
}

impl WebhookSettings {
    /// No provider configured; events would be applied with the default policy.
    pub fn none(keys: KeyRing) -> WebhookSettings {
        WebhookSettings {
            ses: None,
            sendgrid: None,
            postmark: None,
            mailgun: None,
            bounces: BounceSettings {
                return_path: None,
                keys,
                soft: SoftBouncePolicy::default(),
                pause: PauseThresholds::default(),
            },
        }
    }
}

/// A provider secret or setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct WebhookSettingError {
    pub setting: &'static str,
    pub problem: String,
}

impl WebhookSettingError {
    fn new(setting: &'static str, problem: impl fmt::Display) -> WebhookSettingError {
        WebhookSettingError {
            setting,
            problem: problem.to_string(),
        }
    }
}

/// What the webhook handlers share.
pub(super) struct Hooks {
    store: Store,
    settings: WebhookSettings,
    clock: Clock,
    certificates: certificates::Certificates,
    tokens: mailgun::Tokens,
}

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let hooks = Arc::new(Hooks {
        store: state.store.clone(),
        settings: state.settings.webhooks.clone(),
        clock: state.settings.clock.clone(),
        certificates: certificates::Certificates::new(),
        tokens: mailgun::Tokens::default(),
    });
    Router::new()
        .route("/webhooks/ses", post(ses::receive))
        .route("/webhooks/sendgrid", post(sendgrid::receive))
        .route("/webhooks/postmark", post(postmark::receive))
        .route("/webhooks/mailgun", post(mailgun::receive))
        .with_state(hooks)
}

/// What a webhook request did, as the provider is told: events read, of them stored
/// for the first time, and events about no delivery outcome (opens, deferrals …).
#[derive(Debug, Default, Serialize)]
pub(super) struct Received {
    events: usize,
    stored: usize,
    ignored: usize,
}

impl Hooks {
    /// Stores each event (found again by its digest when it came before) and applies
    /// it; one applied before is not applied again.
    async fn apply(
        &self,
        events: &[WebhookEvent],
        ignored: usize,
    ) -> Result<Json<Received>, HttpError> {
        let mut stored = 0;
        for event in events {
            let raw = event.document();
            let incoming = IncomingBounce {
                raw: &raw,
                envelope_from: None,
                envelope_to: &[],
                received_at: self.clock.now(),
            };
            let row = bounce::store(&self.store, &incoming).await?;
            stored += usize::from(row.new);
            bounce::process(&self.store, &self.settings.bounces, row.id).await?;
        }
        Ok(Json(Received {
            events: events.len(),
            stored,
            ignored,
        }))
    }

    /// Applies one provider event, or counts it as ignored.
    async fn apply_one(&self, event: Option<WebhookEvent>) -> Result<Json<Received>, HttpError> {
        match event {
            Some(event) => self.apply(&[event], 0).await,
            None => self.apply(&[], 1).await,
        }
    }
}

fn not_configured(provider: &str) -> HttpError {
    HttpError::NotFound(format!("no {provider} webhook is configured here"))
}

/// The body as JSON; anything else is a 400.
fn json_body(body: &[u8]) -> Result<Value, HttpError> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::BadRequest(format!("the body is not valid JSON: {e}")))
}

fn bad_event(error: EventError) -> HttpError {
    HttpError::BadRequest(error.to_string())
}

/// How far a provider's timestamp may be from the server's clock: older requests may
/// be replays.
const MAX_SKEW: u64 = 10 * 60;

/// Unix seconds from a provider, within [`MAX_SKEW`] of `now`.
fn fresh(timestamp: &str, now: i64) -> Result<i64, HttpError> {
    let at: i64 = timestamp.trim().parse().map_err(|_| {
        HttpError::Forbidden(format!("timestamp '{timestamp}' is not unix seconds"))
    })?;
    if now.abs_diff(at) > MAX_SKEW {
        return Err(HttpError::Forbidden(format!(
            "timestamp {at} is more than {} minutes from the server's clock ({now}): \
             a replay, or a clock that is wrong",
            MAX_SKEW / 60
        )));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fresh_within_ten_minutes_either_way() {
        assert_eq!(fresh("1000600", 1_000_000).unwrap(), 1_000_600);
        assert!(fresh(" 999400 ", 1_000_000).is_ok());
        assert!(matches!(
            fresh("999399", 1_000_000),
            Err(HttpError::Forbidden(_))
        ));
        assert!(matches!(
            fresh("1000601", 1_000_000),
            Err(HttpError::Forbidden(_))
        ));
        assert!(matches!(
            fresh("-9223372036854775808", 1_000_000),
            Err(HttpError::Forbidden(_))
        ));
        assert!(matches!(fresh("soon", 0), Err(HttpError::Forbidden(_))));
    }
}
