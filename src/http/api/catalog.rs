//! Behavioural events and the product catalogue, checked by the importer's rules.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::JsonBody;
use super::rows::{Naming, Row, import_rows};
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::import::ImportKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Events {
    events: Vec<Row>,
}

/// Appends events; an `event_id` already stored is skipped, so retries are harmless.
pub(crate) async fn record_events(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Events>,
) -> Result<Json<Value>, HttpError> {
    if body.events.is_empty() {
        return Err(HttpError::field("events", "is empty"));
    }
    let report = import_rows(
        &state.store,
        ImportKind::Events,
        &body.events,
        Naming::List("events"),
    )
    .await?;
    Ok(Json(
        json!({ "inserted": report.inserted, "skipped": report.skipped }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Products {
    products: Vec<Row>,
}

/// Inserts or updates products by `sku`.
pub(crate) async fn upsert_products(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Products>,
) -> Result<Json<Value>, HttpError> {
    if body.products.is_empty() {
        return Err(HttpError::field("products", "is empty"));
    }
    let report = import_rows(
        &state.store,
        ImportKind::Products,
        &body.products,
        Naming::List("products"),
    )
    .await?;
    Ok(Json(
        json!({ "inserted": report.inserted, "updated": report.updated }),
    ))
}
