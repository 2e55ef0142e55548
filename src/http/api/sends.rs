//! `POST /api/sends`: triggered sends (see `crate::dispatch::TriggeredSend`).
//!
//! `Idempotency-Key` is required. The first answer for a key is stored for 24 hours:
//! the same key with the same body gets that answer again (and sends nothing); with a
//! different body, a 422; while the first request is still being handled, a 409.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Caller;
use super::body::parse;
use crate::dispatch::{
    CheckedSend, KeyedOutcome, KeyedSend, TriggeredError, TriggeredSend, check_send, send_once,
};
use crate::domain::{CampaignStatus, DeliveryStatus};
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::render::LinkSettings;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

pub(crate) async fn send(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let key = idempotency_key(&headers)?;
    let request: TriggeredSend = parse(&body)?;
    let checked = check(&state, request).await?;
    let hash = request_hash(&body);
    let keyed = KeyedSend {
        scope: caller.id,
        key: &key,
        request_hash: &hash,
    };
    let outcome = send_once(&state.store, &state.queue, &keyed, checked)
        .await
        .map_err(from_triggered)?;
    match outcome {
        KeyedOutcome::Queued { answer } => Ok(json_response(StatusCode::ACCEPTED, answer, false)),
        KeyedOutcome::Replayed { status, answer } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok(json_response(status, answer, true))
        }
        KeyedOutcome::KeyReused => Err(HttpError::field(
            "Idempotency-Key",
            "was already used with a different request body; use a new key for a new message",
        )),
        KeyedOutcome::InProgress => Err(HttpError::Conflict(
            "a request with this Idempotency-Key is still being handled; retry shortly".into(),
        )),
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

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

async fn check(state: &AppState, request: TriggeredSend) -> Result<CheckedSend, HttpError> {
    let links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    check_send(&state.store, &links, request)
        .await
        .map_err(from_triggered)
}

fn from_triggered(error: TriggeredError) -> HttpError {
    match error {
        TriggeredError::Invalid(problems) => HttpError::invalid(problems),
        TriggeredError::Store(e) => e.into(),
        TriggeredError::Queue(message) => HttpError::Unavailable(message),
    }
}

#[derive(Debug, Serialize)]
struct SendStatus {
    send_id: i64,
    campaign_status: CampaignStatus,
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
