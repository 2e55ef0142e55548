//! Campaigns: create a draft, read it, schedule, pause, resume, cancel, statistics.
//! State changes go through `dispatch`, exactly as the CLI's do; a change the campaign's
//! state does not allow is a 409.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use crate::dispatch::{cancel_campaign, pause_campaign, resume_campaign, schedule_campaign};
use crate::domain::{CampaignKind, EmailAddress};
use crate::experiment::{Experiment, ExperimentInput};
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::render::LinkSettings;
use crate::schedule::{LocalSendTime, QuietHours};
use crate::store::{
    Campaign, CampaignSettings, CampaignStats, LedgerCounts, NewCampaign, StoreError,
};

/// Delivery jobs enqueued when a campaign resumes (as from the CLI).
pub(crate) const RESUME_SLOTS: usize = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCampaignBody {
    name: String,
    /// Name of a stored template.
    template: String,
    /// Name of a stored segment; every consented recipient when absent.
    segment: Option<String>,
    /// Topic recipients must be subscribed to.
    topic: Option<String>,
    from_email: String,
    #[serde(default)]
    from_name: String,
    reply_to: Option<String>,
    /// RFC 3339 or unix seconds; now when absent.
    send_at: Option<serde_json::Value>,
    #[serde(default = "marketing")]
    kind: CampaignKind,
    #[serde(default)]
    utm: BTreeMap<String, String>,
    #[serde(default)]
    declared_segments: Vec<String>,
    /// A wall time without offset (`2026-12-08T09:00`) each recipient gets in their own
    /// time zone; `send_at` must then be absent.
    local_send_time: Option<String>,
    /// Quiet hours for this campaign (`21:00-08:00`), or `off`; the worker's when absent.
    quiet_hours: Option<String>,
    /// Variants, and a test share, wait, metric and holdout (see `ExperimentInput`).
    experiment: Option<ExperimentInput>,
    /// How long after a human click a purchase is still the campaign's (`5d`).
    attribution_window: Option<String>,
    /// View-through window (`1d`); off when absent.
    view_through: Option<String>,
}

fn marketing() -> CampaignKind {
    CampaignKind::Marketing
}

#[derive(Debug, Serialize)]
pub(crate) struct CampaignView {
    #[serde(flatten)]
    campaign: Campaign,
    deliveries: LedgerCounts,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewCampaignBody>,
) -> Result<(StatusCode, Json<CampaignView>), HttpError> {
    let id = create_checked(&state, body).await?;
    Ok((StatusCode::CREATED, Json(view(&state, id).await?)))
}

/// Checks a new campaign (every field at once) and stores it as a draft; the API and
/// the dashboard's form both create campaigns here.
pub(crate) async fn create_checked(
    state: &AppState,
    body: NewCampaignBody,
) -> Result<i64, HttpError> {
    let campaign = check(state, body).await?;
    if state
        .store
        .campaign_by_name(&campaign.name)
        .await?
        .is_some()
    {
        return Err(HttpError::Conflict(format!(
            "a campaign named '{}' exists already",
            campaign.name
        )));
    }
    let id = state.store.create_campaign(&campaign).await?;
    tracing::info!(campaign_id = id, name = %campaign.name, "campaign created");
    Ok(id)
}

/// Every field's problem at once, then the template compiled as the worker will.
async fn check(state: &AppState, body: NewCampaignBody) -> Result<NewCampaign, HttpError> {
    let mut errors = FieldErrors::new();
    let send_at = check_fields(&body, &mut errors);
    let template = state.store.template_by_name(&body.template).await?;
    if template.is_none() {
        let message = format!("no template named '{}'", body.template);
        add_error(&mut errors, "template", message);
    }
    let segment_id = segment_ids(state, &body, &mut errors).await?;
    let experiment = experiment(state, &body, &mut errors).await?;
    let window = |field: &str, text: &Option<String>, errors: &mut FieldErrors| {
        let parsed = text
            .as_deref()
            .map(|t| crate::automation::definition::units::duration(t.trim()));
        match parsed {
            Some(Err(message)) => {
                add_error(errors, field, message);
                None
            }
            other => other.and_then(Result::ok),
        }
    };
    let attribution_window = window("attribution_window", &body.attribution_window, &mut errors);
    let view_through_window = window("view_through", &body.view_through, &mut errors);
    let Some(template) = template.filter(|_| errors.is_empty()) else {
        return Err(HttpError::invalid(errors));
    };
    let campaign = NewCampaign {
        name: body.name.trim().to_string(),
        kind: body.kind,
        template_id: template.id,
        segment_id,
        topic: body.topic,
        from_name: body.from_name,
        from_email: body.from_email,
        reply_to: body.reply_to,
        send_at,
        settings: CampaignSettings {
            utm: body.utm,
            declared_segments: body.declared_segments,
            local_send_time: body.local_send_time,
            quiet_hours: body.quiet_hours,
            experiment,
            attribution_window,
            view_through_window,
            ..CampaignSettings::default()
        },
    };
    compiles(state, &campaign, template)?;
    Ok(campaign)
}

/// The checks that need no store; returns the send time when it is valid.
fn check_fields(body: &NewCampaignBody, errors: &mut FieldErrors) -> Option<i64> {
    if body.name.trim().is_empty() {
        add_error(errors, "name", "must not be empty");
    }
    if let Err(e) = EmailAddress::parse(&body.from_email) {
        add_error(errors, "from_email", e.to_string());
    }
    if let Some(Err(e)) = body.reply_to.as_deref().map(EmailAddress::parse) {
        add_error(errors, "reply_to", e.to_string());
    }
    if let Some(hours) = body.quiet_hours.as_deref().filter(|h| h.trim() != "off")
        && let Err(message) = hours.parse::<QuietHours>()
    {
        add_error(errors, "quiet_hours", message);
    }
    if let Some(local) = &body.local_send_time {
        if body.send_at.is_some() {
            add_error(
                errors,
                "send_at",
                "give send_at or local_send_time, not both",
            );
        }
        return match local.parse::<LocalSendTime>() {
            Ok(local) => Some(local.earliest()),
            Err(message) => {
                add_error(errors, "local_send_time", message);
                None
            }
        };
    }
    match body.send_at.as_ref().map(timestamp) {
        Some(Err(message)) => {
            add_error(errors, "send_at", message);
            None
        }
        other => other.and_then(Result::ok),
    }
}

/// The experiment, checked; its problems go into `errors` under `experiment.…`.
async fn experiment(
    state: &AppState,
    body: &NewCampaignBody,
    errors: &mut FieldErrors,
) -> Result<Option<Experiment>, HttpError> {
    let Some(input) = &body.experiment else {
        return Ok(None);
    };
    if body.local_send_time.is_some() {
        add_error(
            errors,
            "experiment",
            "variants are sent at send_at or their own send_at, not at local times",
        );
    }
    match crate::experiment::design::check_in(&state.store, input).await? {
        Ok(experiment) => Ok(Some(experiment)),
        Err(problems) => {
            for problem in problems {
                add_error(errors, &problem.field, problem.message);
            }
            Ok(None)
        }
    }
}

/// The audience segment's id; every named segment (declared ones too) must exist.
async fn segment_ids(
    state: &AppState,
    body: &NewCampaignBody,
    errors: &mut FieldErrors,
) -> Result<Option<i64>, HttpError> {
    let mut audience = None;
    for name in &body.declared_segments {
        if state.store.segment_by_name(name).await?.is_none() {
            add_error(
                errors,
                "declared_segments",
                format!("no segment named '{name}'"),
            );
        }
    }
    if let Some(name) = &body.segment {
        match state.store.segment_by_name(name).await? {
            Some(segment) => audience = Some(segment.id),
            None => add_error(errors, "segment", format!("no segment named '{name}'")),
        }
    }
    Ok(audience)
}

/// A template the worker would refuse (syntax, a marketing template without an
/// unsubscribe link, bad sender) is refused now instead.
pub(super) fn compiles(
    state: &AppState,
    campaign: &NewCampaign,
    template: crate::store::Template,
) -> Result<(), HttpError> {
    let links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    crate::dispatch::compiles(campaign, template, &links)
        .map_err(|message| HttpError::field("template", message))
}

pub(crate) fn timestamp(value: &serde_json::Value) -> Result<i64, String> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| "must be whole unix seconds".to_string()),
        serde_json::Value::String(s) => crate::time::parse_timestamp(s),
        _ => Err("must be unix seconds or an RFC 3339 time".to_string()),
    }
}

/// `{id}` from the path: a number, and a campaign that exists.
fn campaign_id(text: &str) -> Result<i64, HttpError> {
    text.parse()
        .map_err(|_| HttpError::BadRequest(format!("campaign id '{text}' is not a number")))
}

async fn view(state: &AppState, id: i64) -> Result<CampaignView, HttpError> {
    let campaign = state.store.campaign(id).await.map_err(not_found)?;
    let deliveries = state.store.ledger_counts(id).await?;
    Ok(CampaignView {
        campaign,
        deliveries,
    })
}

fn not_found(error: StoreError) -> HttpError {
    match error {
        StoreError::NotFound { what, name } => {
            HttpError::NotFound(format!("no {what} with id {name}"))
        }
        other => other.into(),
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, HttpError> {
    Ok(Json(view(&state, campaign_id(&id)?).await?))
}

pub(crate) async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, HttpError> {
    let id = existing(&state, &id).await?;
    schedule_campaign(&state.store, &state.queue, id).await?;
    Ok(Json(view(&state, id).await?))
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, HttpError> {
    let id = existing(&state, &id).await?;
    pause_campaign(&state.store, id).await?;
    Ok(Json(view(&state, id).await?))
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, HttpError> {
    let id = existing(&state, &id).await?;
    resume_campaign(&state.store, &state.queue, id, RESUME_SLOTS).await?;
    Ok(Json(view(&state, id).await?))
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, HttpError> {
    let id = existing(&state, &id).await?;
    cancel_campaign(&state.store, id).await?;
    Ok(Json(view(&state, id).await?))
}

/// JSON, or with `?format=csv` the rows of `mailcast campaign stats --format csv`.
pub(crate) async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<axum::response::Response, HttpError> {
    use axum::response::IntoResponse;
    let id = campaign_id(&id)?;
    let stats: CampaignStats = state
        .store
        .campaign_statistics(id)
        .await
        .map_err(not_found)?;
    match query.get("format").map(String::as_str) {
        None | Some("json") => Ok(Json(stats).into_response()),
        Some("csv") => Ok((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::store::stats_csv(&stats),
        )
            .into_response()),
        Some(other) => Err(HttpError::field(
            "format",
            format!("`{other}` is not a format: json or csv"),
        )),
    }
}

async fn existing(state: &AppState, id: &str) -> Result<i64, HttpError> {
    let id = campaign_id(id)?;
    state.store.campaign(id).await.map_err(not_found)?;
    Ok(id)
}
