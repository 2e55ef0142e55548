//! The suppression list: list it, show why an address is on it (reason, and the
//! campaign, delivery and SMTP reply that caused it), take an address off it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use crate::domain::EmailAddress;
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::store::Suppression;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Serialize)]
pub(crate) struct SuppressionPage {
    suppressions: Vec<Suppression>,
    limit: i64,
    offset: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Removed {
    removed: bool,
    suppression: Suppression,
}

/// `GET /api/suppressions?limit=&offset=`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<SuppressionPage>, HttpError> {
    let limit = number(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let offset = number(&query, "offset", 0, 0..=i64::MAX)?;
    let suppressions = state.store.suppressions(limit, offset).await?;
    Ok(Json(SuppressionPage {
        suppressions,
        limit,
        offset,
    }))
}

/// `GET /api/suppressions/{email}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Json<Suppression>, HttpError> {
    let email = parse_email(&email)?;
    state
        .store
        .suppression(&email)
        .await?
        .map(Json)
        .ok_or_else(|| not_suppressed(&email))
}

/// `DELETE /api/suppressions/{email}`: later campaigns may mail the address again.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Json<Removed>, HttpError> {
    let email = parse_email(&email)?;
    let suppression = state
        .store
        .remove_suppression(&email)
        .await?
        .ok_or_else(|| not_suppressed(&email))?;
    tracing::info!(reason = %suppression.reason, "suppression removed through the API");
    Ok(Json(Removed {
        removed: true,
        suppression,
    }))
}

fn parse_email(text: &str) -> Result<EmailAddress, HttpError> {
    EmailAddress::parse(text).map_err(|e| HttpError::field("email", e.to_string()))
}

fn not_suppressed(email: &EmailAddress) -> HttpError {
    HttpError::NotFound(format!("'{email}' is not on the suppression list"))
}

fn number(
    query: &BTreeMap<String, String>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, HttpError> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    text.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            HttpError::field(
                name,
                format!(
                    "must be a whole number from {} to {}, not '{text}'",
                    range.start(),
                    range.end()
                ),
            )
        })
}
