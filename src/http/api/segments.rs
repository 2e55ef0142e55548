//! Segments: check an expression (count and a sample), store one by name, read one
//! back with its current count. The segment language and compiler are `crate::segment`.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::store::{Segment, SegmentCount, SqlFilter};

/// Addresses a check shows.
const SAMPLE: i64 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expression {
    expression: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Checked {
    count: SegmentCount,
    sample: Vec<String>,
}

pub(crate) async fn check(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Expression>,
) -> Result<Json<Checked>, HttpError> {
    let filter = compile(&state, &body.expression).await?;
    Ok(Json(measure(&state, &filter).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSegment {
    expression: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Stored {
    segment: Segment,
    #[serde(flatten)]
    checked: Checked,
}

/// Creates or replaces the segment `name`; refused (422) when the expression does
/// not compile.
pub(crate) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewSegment>,
) -> Result<Json<Stored>, HttpError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(HttpError::field("name", "must be 1 to 100 characters"));
    }
    // The same check as `mailcast segment save`: references must exist and must not
    // lead back to this segment.
    let definition = crate::segment::parse(&body.expression)
        .map_err(|e| HttpError::field("expression", e.to_string()))?;
    let filter =
        crate::segment::check_definition(&state.store, &name, &definition, crate::time::now())
            .await
            .map_err(|e| HttpError::field("expression", e.to_string()))?;
    let store = &state.store;
    store
        .upsert_segment(&name, &body.expression, &body.description)
        .await?;
    let segment = store
        .segment_by_name(&name)
        .await?
        .ok_or_else(|| HttpError::Internal(format!("segment '{name}' vanished")))?;
    let checked = measure(&state, &filter).await?;
    Ok(Json(Stored { segment, checked }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Stored>, HttpError> {
    let segment = state
        .store
        .segment_by_name(&name)
        .await?
        .ok_or_else(|| HttpError::NotFound(format!("no segment named '{name}'")))?;
    let filter = compile(&state, &segment.expression).await?;
    let checked = measure(&state, &filter).await?;
    Ok(Json(Stored { segment, checked }))
}

async fn compile(state: &AppState, expression: &str) -> Result<SqlFilter, HttpError> {
    crate::segment::compile_text(&state.store, expression, crate::time::now())
        .await
        .map_err(|e| HttpError::field("expression", e.to_string()))
}

async fn measure(state: &AppState, filter: &SqlFilter) -> Result<Checked, HttpError> {
    Ok(Checked {
        count: state.store.count_segment(filter, None).await?,
        sample: state
            .store
            .sample_segment(filter, SAMPLE)
            .await?
            .into_iter()
            .map(|r| r.email)
            .collect(),
    })
}
