//! `/healthz` (the store answers) and `/metrics` (Prometheus text format).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::feedback_metrics::FeedbackRow;
use super::metrics::Snapshot;
use super::state::AppState;

/// A health check must answer quickly even when the store does not.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(STORE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Json(json!({ "status": "ok", "store": "ok" })).into_response(),
        Ok(Err(error)) => unhealthy(error.to_string()),
        Err(_) => unhealthy(format!("no answer within {}s", STORE_TIMEOUT.as_secs())),
    }
}

fn unhealthy(reason: String) -> Response {
    tracing::warn!(%reason, "health check: store unreachable");
    let body = json!({ "status": "unavailable", "store": reason });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let deliveries = tokio::time::timeout(STORE_TIMEOUT, state.store.delivery_totals()).await;
    let deliveries = match deliveries {
        Ok(Ok(counts)) => Some(counts),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot read delivery totals");
            None
        }
        Err(_) => None,
    };
    let waiting = match deliveries {
        Some(_) => tokio::time::timeout(STORE_TIMEOUT, state.store.waiting_totals())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let feedback = match deliveries {
        Some(_) => feedback_rows(&state).await,
        None => None,
    };
    let snapshot = Snapshot {
        events_queued: state.events.queued(),
        store_up: deliveries.is_some(),
        deliveries,
        waiting,
        feedback,
    };
    let content_type = [(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )];
    (content_type, state.metrics.render(&snapshot)).into_response()
}

/// The watched campaigns' bounce and complaint rates, or None (logged) when the store
/// cannot give them within the scrape's time.
async fn feedback_rows(state: &AppState) -> Option<Arc<Vec<FeedbackRow>>> {
    let rows = state
        .metrics
        .feedback
        .rows(&state.store, &state.settings.clock);
    match tokio::time::timeout(STORE_TIMEOUT, rows).await {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot read bounce and complaint rates");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: bounce and complaint rates took too long; left out");
            None
        }
    }
}
