//! Automations: store a definition (a new version when it changed), read one with its
//! figures, pause and resume. The same load and checks as `mailcast automation load`.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use crate::automation::definition::Definition;
use crate::automation::{AutomationError, LoadOutcome, load_automation};
use crate::http::error::{FieldErrors, HttpError};
use crate::http::state::AppState;
use crate::store::{AutomationStats, StoredAutomation};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDefinition {
    /// The definition as a TOML document, as in `automations/*.toml`.
    definition: String,
}

/// Stores the definition as the automation `name`'s newest version (creating the
/// automation). Refused whole (422, one message per problem) when any part is wrong.
pub(crate) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewDefinition>,
) -> Result<Json<LoadOutcome>, HttpError> {
    let parsed = crate::automation::definition::parse(&body.definition).map_err(refused)?;
    if parsed.name != name {
        let message = format!("names `{}`, not `{name}` as the path does", parsed.name);
        return Err(HttpError::field("definition", message));
    }
    match load_automation(&state.store, &body.definition).await {
        Ok(loaded) => Ok(Json(loaded)),
        Err(AutomationError::Definition(errors)) => Err(refused(errors)),
        Err(AutomationError::Store(error)) => Err(error.into()),
        Err(other) => Err(HttpError::Internal(other.to_string())),
    }
}

fn refused(errors: crate::automation::definition::DefinitionErrors) -> HttpError {
    let mut fields = FieldErrors::new();
    fields.insert(
        "definition".into(),
        errors.to_string().lines().map(str::to_string).collect(),
    );
    HttpError::invalid(fields)
}

#[derive(Debug, Serialize)]
pub(crate) struct Described {
    name: String,
    status: String,
    version: i64,
    updated_at: i64,
    definition: Definition,
    /// The TOML it was loaded from.
    source: String,
    stats: AutomationStats,
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<Described>>, HttpError> {
    let mut all = Vec::new();
    for automation in state.store.automations().await? {
        all.push(describe(&state, automation).await?);
    }
    Ok(Json(all))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Described>, HttpError> {
    let automation = find(&state, &name).await?;
    Ok(Json(describe(&state, automation).await?))
}

pub(crate) async fn stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<AutomationStats>, HttpError> {
    let automation = find(&state, &name).await?;
    Ok(Json(state.store.automation_stats(automation.id).await?))
}

pub(crate) async fn pause(
    state: State<AppState>,
    name: Path<String>,
) -> Result<Json<Described>, HttpError> {
    set_status(state, name, "paused").await
}

pub(crate) async fn resume(
    state: State<AppState>,
    name: Path<String>,
) -> Result<Json<Described>, HttpError> {
    set_status(state, name, "active").await
}

async fn set_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
    status: &str,
) -> Result<Json<Described>, HttpError> {
    if !state.store.set_automation_status(&name, status).await? {
        return Err(not_found(&name));
    }
    get(State(state), Path(name)).await
}

async fn find(state: &AppState, name: &str) -> Result<StoredAutomation, HttpError> {
    state
        .store
        .automation_by_name(name)
        .await?
        .ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> HttpError {
    HttpError::NotFound(format!("no automation named '{name}'"))
}

async fn describe(state: &AppState, automation: StoredAutomation) -> Result<Described, HttpError> {
    let definition: Definition = serde_json::from_str(&automation.definition)
        .map_err(|e| HttpError::Internal(format!("stored definition unreadable: {e}")))?;
    let stats = state.store.automation_stats(automation.id).await?;
    Ok(Described {
        name: automation.name,
        status: automation.status,
        version: automation.version,
        updated_at: automation.updated_at,
        definition,
        source: automation.source,
        stats,
    })
}
