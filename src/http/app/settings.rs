//! The settings page: API keys (listed by name; an admin creates one, shown once, or
//! revokes one after confirming), what the delivery ledger says about sending through
//! the relays, which link key signs and which still verify, and the dashboard's users.
//! Keys are made and dropped by the same calls as `mailcast api-key create|revoke`.
//!
//! This process does not talk to the SMTP relays (the worker does), and the ledger
//! does not record which relay took a message: the page shows what the store knows
//! and says so.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};

use super::page::{AppError, field_error, not_found, path_segment};
use super::session::SignedIn;
use crate::accounts::Role;
use crate::http::error::FieldErrors;
use crate::http::state::AppState;
use crate::http::{generate_api_key, hash_api_key};
use crate::links::KEYS_ENV;
use crate::store::StoreError;
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] = super::page::app_templates!["settings.html"];

/// The longest API key name the form accepts.
const MAX_KEY_NAME: usize = 100;
/// Error texts of deferred deliveries the page lists.
const DEFERRAL_REASONS: i64 = 5;
/// Deferred deliveries whose errors are grouped: enough to see the common ones, few
/// enough to stay fast when a relay is down and millions wait.
const DEFERRAL_SAMPLE: i64 = 1000;
/// Self-paused campaigns the page lists.
const SELF_PAUSED: i64 = 10;
/// The window of the outcome counts.
const RECENT_SECONDS: i64 = 60 * 60;
/// Error texts are cut to this many characters.
const ERROR_CHARS: usize = 300;
/// The section the page belongs to (the highlighted navigation item).
const SECTION: &str = "settings";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/settings", get(show))
        .route("/app/settings/api-keys", post(create_key))
        .route(
            "/app/settings/api-keys/{name}/revoke",
            get(confirm_revoke).post(revoke),
        )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowQuery {
    /// What the action redirected here from did: `revoked`.
    done: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    name: String,
}

/// What the page says about the request that led to it.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    form: KeyForm,
    errors: Option<FieldErrors>,
    /// The key just created: its only showing.
    new_key: Option<NewKey>,
    notice: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct NewKey {
    name: String,
    key: String,
}

async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, AppError> {
    let notice = match query.done.as_deref() {
        Some("revoked") => Some("The API key was revoked: requests with it now get 401."),
        _ => None,
    };
    let outcome = Outcome {
        notice,
        ..Outcome::default()
    };
    settings_page(&state, &signed_in, outcome, StatusCode::OK).await
}

async fn settings_page(
    state: &AppState,
    signed_in: &SignedIn,
    outcome: Outcome,
    status: StatusCode,
) -> Result<Response, AppError> {
    let is_admin = signed_in.role == Role::Admin;
    let keys: Vec<KeyRow> = state
        .store
        .api_key_listing()
        .await?
        .into_iter()
        .map(|key| KeyRow::new(key.name, key.created_at, key.internal))
        .collect();
    let users = if is_admin {
        let users = state.store.users().await?;
        let rows: Vec<UserRow> = users
            .into_iter()
            .map(|u| UserRow {
                email: u.email,
                role: u.role,
                created_at: format_timestamp(u.created_at),
            })
            .collect();
        Some(rows)
    } else {
        None
    };
    let data = serde_json::json!({
        "outcome": outcome,
        "keys": keys,
        "sending": sending(state).await?,
        "link_keys": link_keys(state).await?,
        "users": users,
    });
    state
        .views
        .respond(status, "settings.html", signed_in, SECTION, &data)
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct KeyRow {
    name: String,
    created_at: String,
    /// `mailcast send`'s idempotency scope, not a key: not offered for revoking.
    internal: bool,
    revoke_path: String,
}

impl KeyRow {
    fn new(name: String, created_at: i64, internal: bool) -> KeyRow {
        KeyRow {
            revoke_path: revoke_path(&name),
            created_at: format_timestamp(created_at),
            name,
            internal,
        }
    }
}

#[derive(Debug, Serialize)]
struct UserRow {
    email: String,
    role: String,
    created_at: String,
}

fn revoke_path(name: &str) -> String {
    format!("/app/settings/api-keys/{}/revoke", path_segment(name))
}

/// What the store knows about sending: outcomes of the last hour, deliveries waiting
/// to retry and their commonest errors, campaigns that paused themselves, relays named
/// by campaigns.
async fn sending(state: &AppState) -> Result<serde_json::Value, StoreError> {
    let now = state.settings.clock.now();
    let since = now - RECENT_SECONDS;
    let reasons: Vec<serde_json::Value> = state
        .store
        .deferral_reasons(DEFERRAL_SAMPLE, DEFERRAL_REASONS)
        .await?
        .into_iter()
        .map(|r| serde_json::json!({ "error": shortened(&r.error, ERROR_CHARS), "count": r.count }))
        .collect();
    Ok(serde_json::json!({
        "since": format_timestamp(since),
        "recent": state.store.outcomes_since(since).await?,
        "deferred_now": state.store.deferred_count().await?,
        "deferral_reasons": reasons,
        "sample": DEFERRAL_SAMPLE,
        "self_paused": state.store.self_paused_campaigns(SELF_PAUSED).await?,
        "relays": state.store.relays_in_use().await?,
    }))
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Where the link keys of this server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum KeySource {
    /// `MAILCAST_LINK_KEYS`.
    Configured,
    /// Generated for this database and stored in it.
    Stored,
    /// Handed to the server when it started (tests, embedding).
    Given,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct LinkKeyRow {
    id: u8,
    signs: bool,
    /// When it was generated, for a key stored in the database.
    created_at: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct LinkKeys {
    source: KeySource,
    env: &'static str,
    signing_id: u8,
    keys: Vec<LinkKeyRow>,
    /// The public development key signs new links.
    development_signs: bool,
    /// The public development key verifies links (signing or not).
    development_accepted: bool,
}

async fn link_keys(state: &AppState) -> Result<LinkKeys, StoreError> {
    let ring = &state.settings.keyring;
    let ring_ids: Vec<u8> = ring.ids().collect();
    let stored: Vec<(i64, i64)> = state
        .store
        .stored_link_key_ids()
        .await?
        .into_iter()
        .map(|key| (key.id, key.created_at))
        .collect();
    let configured = std::env::var(KEYS_ENV).is_ok_and(|spec| !spec.trim().is_empty());
    Ok(LinkKeys {
        source: key_source(configured, &ring_ids, &stored),
        env: KEYS_ENV,
        signing_id: ring.signing_id(),
        keys: link_key_rows(&ring_ids, &stored),
        development_signs: ring.is_development(),
        development_accepted: ring.contains_development_key(),
    })
}

fn key_source(configured: bool, ring_ids: &[u8], stored: &[(i64, i64)]) -> KeySource {
    let stored_ids = stored.iter().map(|&(id, _)| id);
    if configured {
        KeySource::Configured
    } else if ring_ids.iter().map(|&id| i64::from(id)).eq(stored_ids) {
        KeySource::Stored
    } else {
        KeySource::Given
    }
}

/// The ring's key ids in order (the signing one first), with the creation time of
/// those stored in the database.
fn link_key_rows(ring_ids: &[u8], stored: &[(i64, i64)]) -> Vec<LinkKeyRow> {
    ring_ids
        .iter()
        .enumerate()
        .map(|(position, &id)| LinkKeyRow {
            id,
            signs: position == 0,
            created_at: stored
                .iter()
                .find(|&&(stored_id, _)| stored_id == i64::from(id))
                .map(|&(_, created_at)| format_timestamp(created_at)),
        })
        .collect()
}

async fn create_key(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Form(form): Form<KeyForm>,
) -> Result<Response, AppError> {
    signed_in.require_admin()?;
    let name = match checked_key_name(&form.name) {
        Ok(name) => name,
        Err(message) => {
            let outcome = refused_form(form, message);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return settings_page(&state, &signed_in, outcome, status).await;
        }
    };
    let key = generate_api_key();
    match state.store.create_api_key(&name, &hash_api_key(&key)).await {
        Ok(_) => {
            let outcome = Outcome {
                new_key: Some(NewKey { name, key }),
                ..Outcome::default()
            };
            settings_page(&state, &signed_in, outcome, StatusCode::OK).await
        }
        Err(StoreError::Invalid(message)) => {
            let outcome = refused_form(form, message);
            settings_page(&state, &signed_in, outcome, StatusCode::CONFLICT).await
        }
        Err(other) => Err(other.into()),
    }
}

fn refused_form(form: KeyForm, message: String) -> Outcome {
    Outcome {
        form,
        errors: Some(field_error("name", message)),
        ..Outcome::default()
    }
}

/// The name trimmed, or why it cannot be a key's name.
fn checked_key_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the key a name, such as the system that will use it.".into());
    }
    if name.chars().count() > MAX_KEY_NAME {
        return Err(format!("A name has at most {MAX_KEY_NAME} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err("A name cannot hold control characters such as line breaks.".into());
    }
    Ok(name.to_string())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    confirm: Option<String>,
}

async fn confirm_revoke(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    signed_in.require_admin()?;
    known_key(&state, &name).await?;
    confirmation_page(&state, &signed_in, &name, None, StatusCode::OK)
}

async fn revoke(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, AppError> {
    signed_in.require_admin()?;
    known_key(&state, &name).await?;
    if form.confirm.is_none_or(|value| value.is_empty()) {
        let message = "Tick the box to confirm that this key should stop working.";
        let errors = field_error("confirm", message);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return confirmation_page(&state, &signed_in, &name, Some(&errors), status);
    }
    if !state.store.revoke_api_key(&name).await? {
        return Err(not_found("API key", &name));
    }
    Ok(Redirect::to("/app/settings?done=revoked").into_response())
}

/// Refuses a name no key has (404), and the internal scope `mailcast send` and test
/// sends keep their idempotency keys under: it is not a key, and revoking it would
/// drop those keys.
async fn known_key(state: &AppState, name: &str) -> Result<(), AppError> {
    let listing = state.store.api_key_listing().await?;
    if listing.iter().any(|key| key.name == name && !key.internal) {
        Ok(())
    } else {
        Err(not_found("API key", name))
    }
}

fn confirmation_page(
    state: &AppState,
    signed_in: &SignedIn,
    name: &str,
    errors: Option<&FieldErrors>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let data = serde_json::json!({
        "revoking": { "name": name, "action": revoke_path(name) },
        "errors": errors,
    });
    state
        .views
        .respond(status, "settings.html", signed_in, SECTION, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_trimmed_and_checked() {
        assert_eq!(checked_key_name("  crm  ").as_deref(), Ok("crm"));
        assert!(checked_key_name("   ").is_err());
        assert!(checked_key_name("a\nb").is_err());
        assert!(checked_key_name(&"x".repeat(MAX_KEY_NAME)).is_ok());
        assert!(checked_key_name(&"x".repeat(MAX_KEY_NAME + 1)).is_err());
    }

    #[test]
    fn revoke_paths_encode_the_name() {
        assert_eq!(revoke_path("crm"), "/app/settings/api-keys/crm/revoke");
        assert_eq!(
            revoke_path("a b/c"),
            "/app/settings/api-keys/a%20b%2Fc/revoke"
        );
    }

    #[test]
    fn key_rows_carry_their_revoke_path() {
        let row = KeyRow::new("shop crm".into(), 0, false);
        assert_eq!(row.revoke_path, "/app/settings/api-keys/shop%20crm/revoke");
        assert_eq!(row.created_at, "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn link_key_source_is_told() {
        let stored = [(2, 200), (1, 100)];
        assert_eq!(key_source(true, &[2, 1], &stored), KeySource::Configured);
        assert_eq!(key_source(false, &[2, 1], &stored), KeySource::Stored);
        assert_eq!(key_source(false, &[0], &stored), KeySource::Given);
        assert_eq!(key_source(false, &[1, 2], &stored), KeySource::Given);
    }

    #[test]
    fn the_first_link_key_signs_and_stored_ones_have_an_age() {
        let rows = link_key_rows(&[2, 1], &[(1, 0)]);
        assert_eq!(
            rows,
            vec![
                LinkKeyRow {
                    id: 2,
                    signs: true,
                    created_at: None
                },
                LinkKeyRow {
                    id: 1,
                    signs: false,
                    created_at: Some("1970-01-01T00:00:00+00:00".into())
                },
            ]
        );
    }

    #[test]
    fn long_errors_are_shortened() {
        assert_eq!(shortened("short", 10), "short");
        assert_eq!(shortened("ééééé", 3), "ééé…");
        assert_eq!(shortened("exact", 5), "exact");
    }
}
