//! Campaign pages: the list (state, progress, human rates), a new draft from a template
//! and a segment, schedule / pause / resume / cancel through `dispatch` as the CLI
//! does, live progress, and the results.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};

use super::chart::{Series, line_chart, timeline_bucket_seconds, zero_filled};
use super::page::{AppError, found, money, not_found, one_page, page};
use super::session::SignedIn;
use crate::dispatch::{
    DispatchError, cancel_campaign, pause_campaign, resume_campaign, schedule_campaign,
};
use crate::http::api::campaigns::{NewCampaignBody, RESUME_SLOTS, create_checked};
use crate::http::error::{FieldErrors, HttpError};
use crate::http::state::AppState;
use crate::store::{Campaign, CampaignStats, HumanReach, LedgerCounts, StoreError};
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["campaigns.html", "campaign.html", "campaign_new.html",];

/// Campaigns a list page shows.
const PAGE_SIZE: i64 = 25;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/campaigns", get(list).post(create))
        .route("/app/campaigns/new", get(new_form))
        .route("/app/campaigns/{id}", get(show))
        .route("/app/campaigns/{id}/progress", get(progress))
        .route("/app/campaigns/{id}/{action}", post(act))
}

#[derive(Debug, Serialize)]
struct Row {
    campaign: Campaign,
    ledger: LedgerCounts,
    total: i64,
    done: i64,
    percent: i64,
    reach: HumanReach,
    open_rate: String,
    click_rate: String,
    send_at: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    before: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let fetched = state
        .store
        .campaign_page(query.before, PAGE_SIZE + 1)
        .await?;
    let (campaigns, more) = one_page(fetched, PAGE_SIZE as usize);
    let older = campaigns.last().filter(|_| more).map(|c| c.id);
    let mut rows = Vec::with_capacity(campaigns.len());
    for campaign in campaigns {
        rows.push(row(&state, campaign).await?);
    }
    let data = serde_json::json!({ "rows": rows, "older": older, "newer": query.before.is_some() });
    let body = state
        .views
        .render("campaigns.html", Some(&signed_in), "campaigns", &data)?;
    Ok(page(body))
}

async fn row(state: &AppState, campaign: Campaign) -> Result<Row, StoreError> {
    let ledger = state.store.ledger_counts(campaign.id).await?;
    let reach = state.store.human_reach(campaign.id).await?;
    Ok(Row::new(campaign, ledger, reach))
}

impl Row {
    fn new(campaign: Campaign, ledger: LedgerCounts, reach: HumanReach) -> Row {
        let total = ledger.total();
        let done = progress_of(&ledger);
        let delivered = ledger.sent + ledger.bounced;
        Row {
            send_at: campaign.send_at.map(format_timestamp),
            campaign,
            total,
            done,
            percent: percent(done, total),
            open_rate: rate(reach.opened, delivered),
            click_rate: rate(reach.clicked, delivered),
            reach,
            ledger,
        }
    }
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 { 0 } else { part * 100 / whole }
}

/// Deliveries handled: neither waiting to be sent nor being sent.
fn progress_of(ledger: &LedgerCounts) -> i64 {
    ledger.total() - ledger.pending - ledger.sending - ledger.deferred
}

fn rate(part: i64, whole: i64) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct NewCampaignForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    from_email: String,
    #[serde(default)]
    from_name: String,
    /// `datetime-local` (UTC) or empty for now.
    #[serde(default)]
    send_at: String,
}

async fn new_form(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, AppError> {
    form_page(
        &state,
        &signed_in,
        &NewCampaignForm::default(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn form_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: &NewCampaignForm,
    errors: Option<&FieldErrors>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let segments: Vec<String> = state
        .store
        .segments()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let data = serde_json::json!({
        "form": form,
        "errors": errors,
        "templates": state.store.template_names().await?,
        "segments": segments,
        "topics": state.store.topic_names().await?,
    });
    let body = state
        .views
        .render("campaign_new.html", Some(signed_in), "campaigns", &data)?;
    Ok((status, page(body)).into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Form(form): Form<NewCampaignForm>,
) -> Result<Response, AppError> {
    let body = match api_body(&form) {
        Ok(body) => body,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_page(&state, &signed_in, &form, Some(&errors), status).await;
        }
    };
    match create_checked(&state, body).await {
        Ok(id) => Ok(Redirect::to(&format!("/app/campaigns/{id}")).into_response()),
        Err(HttpError::Invalid { fields, .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&state, &signed_in, &form, Some(&fields), status).await
        }
        Err(HttpError::Conflict(message)) => {
            let errors = FieldErrors::from([("name".to_string(), vec![message])]);
            form_page(
                &state,
                &signed_in,
                &form,
                Some(&errors),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// The form as the API's body, so that both are checked by the same code.
fn api_body(form: &NewCampaignForm) -> Result<NewCampaignBody, FieldErrors> {
    let optional = |text: &str| {
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    };
    let send_at = optional(&form.send_at).map(|local| {
        // `datetime-local` sends `2026-12-08T09:00`; the form says it is UTC.
        let with_seconds = if local.len() == 16 {
            format!("{local}:00")
        } else {
            local
        };
        format!("{with_seconds}Z")
    });
    let value = serde_json::json!({
        "name": form.name,
        "template": form.template,
        "segment": optional(&form.segment),
        "topic": optional(&form.topic),
        "from_email": form.from_email.trim(),
        "from_name": form.from_name,
        "send_at": send_at,
    });
    serde_json::from_value(value)
        .map_err(|e| FieldErrors::from([("form".to_string(), vec![e.to_string()])]))
}

async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    results_page(&state, &signed_in, id, &[], StatusCode::OK).await
}

#[derive(Debug, Serialize)]
struct ResultsPage {
    row: Row,
    stats: CampaignStats,
    chart: String,
    template: String,
    segment: Option<String>,
    problems: Vec<String>,
    revenue: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    live: bool,
}

async fn results_page(
    state: &AppState,
    signed_in: &SignedIn,
    id: i64,
    problems: &[String],
    status: StatusCode,
) -> Result<Response, AppError> {
    let campaign = existing(state, id).await?;
    // Both read a whole campaign's results: at once, they share the database's cores.
    let (stats, chart) = tokio::try_join!(
        state.store.campaign_statistics(id),
        engagement_chart(state, &campaign)
    )?;
    let template = state.store.template(campaign.template_id).await?.name;
    let segment = match campaign.segment_id {
        Some(segment) => Some(state.store.segment(segment).await?.name),
        None => None,
    };
    let data = ResultsPage {
        started_at: campaign.started_at.map(format_timestamp),
        finished_at: campaign.finished_at.map(format_timestamp),
        live: matches!(
            campaign.status,
            crate::domain::CampaignStatus::Scheduled | crate::domain::CampaignStatus::Running
        ),
        // The statistics hold the ledger and the human reach already.
        row: Row::new(
            campaign,
            stats.ledger,
            HumanReach {
                opened: stats.opens.unique_human,
                clicked: stats.clicks.unique_human,
            },
        ),
        revenue: money(stats.attributed.revenue_cents),
        stats,
        chart,
        template,
        segment,
        problems: problems.to_vec(),
    };
    let body = state
        .views
        .render("campaign.html", Some(signed_in), "campaigns", &data)?;
    Ok((status, page(body)).into_response())
}

async fn engagement_chart(state: &AppState, campaign: &Campaign) -> Result<String, StoreError> {
    // Opens go on arriving after the last message is sent: the span runs to now, at
    // most 30 days from the start.
    let first = campaign.started_at.unwrap_or_else(crate::time::now);
    let last = crate::time::now().clamp(first, first + 30 * 86_400);
    let bucket = timeline_bucket_seconds(first, last);
    let buckets = state.store.engagement_timeline(campaign.id, bucket).await?;
    let mut series = [
        Series::new("Human opens", "human open"),
        Series::new("Machine opens", "machine open"),
        Series::new("Human clicks", "human click"),
        Series::new("Machine clicks", "machine click"),
    ];
    for b in &buckets {
        let (human, machine) = if b.kind == "open" { (0, 1) } else { (2, 3) };
        series[human].points.push((b.bucket, b.human as f64));
        series[machine].points.push((b.bucket, b.machine as f64));
    }
    for one in &mut series {
        one.points = zero_filled(&one.points, bucket);
    }
    Ok(line_chart(&series, "Opens and clicks over time"))
}

/// The campaign `id`, or a 404 page.
async fn existing(state: &AppState, id: i64) -> Result<Campaign, AppError> {
    found(state.store.campaign(id).await)?.ok_or_else(|| not_found("campaign", &id.to_string()))
}

/// What the page polls while a campaign sends.
async fn progress(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    // Polled every second while sending: the ledger only, no engagement counts.
    let campaign = existing(&state, id).await?;
    let ledger = state.store.ledger_counts(id).await?;
    let (total, done) = (ledger.total(), progress_of(&ledger));
    Ok(Json(serde_json::json!({
        "status": campaign.status,
        "total": total,
        "done": done,
        "percent": percent(done, total),
        "sent": ledger.sent,
        "failed": ledger.failed,
        "suppressed": ledger.suppressed,
    })))
}

async fn act(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    existing(&state, id).await?;
    let outcome = match action.as_str() {
        "schedule" => schedule_campaign(&state.store, &state.queue, id).await,
        "pause" => pause_campaign(&state.store, id).await,
        "resume" => resume_campaign(&state.store, &state.queue, id, RESUME_SLOTS).await,
        "cancel" => cancel_campaign(&state.store, id).await,
        other => {
            return Err(HttpError::NotFound(format!("no campaign action '{other}'")).into());
        }
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/app/campaigns/{id}")).into_response()),
        Err(error) => {
            let (status, problems) = refusal(error)?;
            results_page(&state, &signed_in, id, &problems, status).await
        }
    }
}

/// A refused action as the lines the page lists; a fault of the server stays an error.
fn refusal(error: DispatchError) -> Result<(StatusCode, Vec<String>), AppError> {
    match error {
        DispatchError::Invalid { errors, .. } => Ok((StatusCode::UNPROCESSABLE_ENTITY, errors)),
        DispatchError::Campaign { reason, .. } => Ok((
            StatusCode::CONFLICT,
            vec![format!("This campaign {reason}.")],
        )),
        error @ (DispatchError::Render { .. } | DispatchError::Segment { .. }) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, vec![error.to_string()]))
        }
        other => Err(other.into()),
    }
}
