//! Triggered sends: one message to one recipient, now. Each becomes a single-recipient
//! campaign whose only delivery is put straight into the ledger and handed to the
//! worker (`DeliverBatch`), so it gets the same consent re-check, rendering, retries and
//! at-most-once outcome recording as any campaign message; its opens and clicks show
//! in its statistics.
//!
//! `Idempotency-Key` is required. The first answer for a key is stored for 24 hours:
//! the same key with the same body gets that answer again (and sends nothing); with a
//! different body, a 422; while the first request is still being handled, a 409.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Caller;
use super::body::parse;
use super::campaigns::compiles;
use crate::dispatch::DeliverBatch;
use crate::domain::{CampaignKind, CampaignStatus, DeliveryStatus, EmailAddress};
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::store::{CampaignSettings, IdempotencyClaim, NewCampaign, Recipient};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// How long the first answer for a key is kept.
pub(crate) const KEY_TTL_SECONDS: i64 = 24 * 3600;
const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    /// Name of a stored template.
    template: String,
    /// The recipient: must exist (upsert it first).
    email: String,
    from_email: String,
    #[serde(default)]
    from_name: String,
    reply_to: Option<String>,
    /// `transactional` (default) or `marketing` (needs an unsubscribe link).
    #[serde(default = "transactional")]
    kind: CampaignKind,
    /// Topic the recipient must be subscribed to.
    topic: Option<String>,
    #[serde(default)]
    utm: BTreeMap<String, String>,
}

fn transactional() -> CampaignKind {
    CampaignKind::Transactional
}

#[derive(Debug, Serialize)]
struct Accepted {
    send_id: i64,
    campaign: String,
    recipient_id: i64,
    status: &'static str,
}

pub(crate) async fn send(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let key = idempotency_key(&headers)?;
    let request: SendBody = parse(&body)?;
    let checked = check(&state, request).await?;
    let hash = request_hash(&body);
    let store = &state.store;
    match store
        .claim_idempotency_key(caller.id, &key, &hash, KEY_TTL_SECONDS)
        .await?
    {
        IdempotencyClaim::Fresh => {}
        IdempotencyClaim::Replay {
            request_hash,
            status,
            body,
        } => {
            return replay(&hash, &request_hash, status, body);
        }
        IdempotencyClaim::InProgress { request_hash } if request_hash != hash => {
            return Err(reused_key());
        }
        IdempotencyClaim::InProgress { .. } => {
            return Err(HttpError::Conflict(
                "a request with this Idempotency-Key is still being handled; retry shortly".into(),
            ));
        }
    }
    match enqueue(&state, checked).await {
        Ok(accepted) => {
            let body = serde_json::to_string(&accepted).expect("answer serialises");
            store
                .complete_idempotency_key(caller.id, &key, StatusCode::ACCEPTED.as_u16(), &body)
                .await?;
            Ok(json_response(StatusCode::ACCEPTED, body, false))
        }
        Err(error) => {
            // Nothing was sent: the client may retry with the same key.
            if let Err(release) = store.release_idempotency_key(caller.id, &key).await {
                tracing::error!(%release, "cannot release an idempotency key");
            }
            Err(error)
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, HttpError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::trim))
        .ok_or_else(|| {
            HttpError::BadRequest(
                "an Idempotency-Key header is required: a unique value per message, reused when retrying".into(),
            )
        })?
        .map_err(|_| HttpError::BadRequest("the Idempotency-Key header is not visible ASCII".into()))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(HttpError::BadRequest(format!(
            "the Idempotency-Key must have 1 to {MAX_KEY_LEN} characters"
        )));
    }
    Ok(key.to_string())
}

/// The body's JSON in a canonical form (object keys sorted), hashed: whitespace and
/// key order do not make a retry a different request.
fn request_hash(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    hex::encode(Sha256::digest(&canonical))
}

fn reused_key() -> HttpError {
    HttpError::field(
        "Idempotency-Key",
        "was already used with a different request body; use a new key for a new message",
    )
}

fn replay(hash: &str, stored_hash: &str, status: u16, body: String) -> Result<Response, HttpError> {
    if hash != stored_hash {
        return Err(reused_key());
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Ok(json_response(status, body, true))
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// A send whose every part was checked before anything is written.
struct Checked {
    campaign: NewCampaign,
    recipient: Recipient,
}

async fn check(state: &AppState, body: SendBody) -> Result<Checked, HttpError> {
    let mut errors = FieldErrors::new();
    let recipient = find_recipient(state, &body.email, &mut errors).await?;
    if let Err(e) = EmailAddress::parse(&body.from_email) {
        add_error(&mut errors, "from_email", e.to_string());
    }
    let template = state.store.template_by_name(&body.template).await?;
    if template.is_none() {
        let message = format!("no template named '{}'", body.template);
        add_error(&mut errors, "template", message);
    }
    let (Some(recipient), Some(template), true) = (recipient, template, errors.is_empty()) else {
        return Err(HttpError::invalid(errors));
    };
    let campaign = NewCampaign {
        name: format!(
            "send-{}-{:012x}",
            body.template,
            rand::random::<u64>() >> 16
        ),
        kind: body.kind,
        template_id: template.id,
        segment_id: None,
        topic: body.topic,
        from_name: body.from_name,
        from_email: body.from_email,
        reply_to: body.reply_to,
        send_at: None,
        settings: CampaignSettings {
            utm: body.utm,
            ..CampaignSettings::default()
        },
    };
    compiles(state, &campaign, template)?;
    Ok(Checked {
        campaign,
        recipient,
    })
}

async fn find_recipient(
    state: &AppState,
    email: &str,
    errors: &mut FieldErrors,
) -> Result<Option<Recipient>, HttpError> {
    let email = match EmailAddress::parse(email) {
        Ok(email) => email,
        Err(e) => {
            add_error(errors, "email", e.to_string());
            return Ok(None);
        }
    };
    let found = state.store.recipient_by_email(&email).await?;
    if found.is_none() {
        let message = format!("no recipient '{email}': upsert the recipient first");
        add_error(errors, "email", message);
    }
    Ok(found)
}

/// The single-recipient campaign, its delivery, and the job that sends it.
async fn enqueue(state: &AppState, checked: Checked) -> Result<Accepted, HttpError> {
    let id = state.store.create_campaign(&checked.campaign).await?;
    if let Err(error) = start(state, id, checked.recipient.id).await {
        // Whatever part was done must not send later, once the client has retried.
        if let Err(cancel) = crate::dispatch::cancel_campaign(&state.store, id).await {
            tracing::error!(campaign_id = id, %cancel, "cannot cancel a half-created triggered send");
        }
        return Err(error);
    }
    tracing::info!(
        campaign_id = id,
        recipient_id = checked.recipient.id,
        "triggered send queued"
    );
    Ok(Accepted {
        send_id: id,
        campaign: checked.campaign.name,
        recipient_id: checked.recipient.id,
        status: "queued",
    })
}

async fn start(state: &AppState, id: i64, recipient_id: i64) -> Result<(), HttpError> {
    let store = &state.store;
    store.add_delivery(id, recipient_id).await?;
    store
        .transition_campaign(id, &[CampaignStatus::Draft], CampaignStatus::Running)
        .await?;
    state
        .queue
        .push_deliver(DeliverBatch { campaign_id: id }, std::time::Duration::ZERO)
        .await?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct SendStatus {
    send_id: i64,
    campaign_status: String,
    delivery: Option<DeliveryState>,
}

#[derive(Debug, Serialize)]
struct DeliveryState {
    status: String,
    attempts: i64,
    last_error: Option<String>,
}

/// Where a triggered send is: the campaign's state and its one delivery's.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let id: i64 = id
        .parse()
        .map_err(|_| HttpError::BadRequest(format!("send id '{id}' is not a number")))?;
    let campaign = match state.store.campaign(id).await {
        Ok(campaign) => campaign,
        Err(crate::store::StoreError::NotFound { .. }) => {
            return Err(HttpError::NotFound(format!("no send with id {id}")));
        }
        Err(other) => return Err(other.into()),
    };
    let delivery = state
        .store
        .deliveries_in(id, DeliveryStatus::ALL)
        .await?
        .into_iter()
        .next()
        .map(|d| DeliveryState {
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
        });
    let status = SendStatus {
        send_id: id,
        campaign_status: campaign.status,
        delivery,
    };
    Ok(Json(
        serde_json::to_value(status).expect("status serialises"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_change_the_request_hash() {
        let a = request_hash(br#"{"email": "a@example.com", "template": "t"}"#);
        let b = request_hash(br#"{"template":"t","email":"a@example.com"}"#);
        let c = request_hash(br#"{"template":"u","email":"a@example.com"}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
