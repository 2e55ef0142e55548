//! Automation pages: the list (status, version, runs entered, active and converted),
//! one automation's steps as a funnel with each step's figures and how its runs ended,
//! and pause / resume through the same store call as `mailcast automation pause|resume`
//! and the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;

use super::chart::bar_funnel;
use super::page::{AppError, not_found, path_segment};
use super::session::SignedIn;
use crate::automation::definition::{Definition, Sender};
use crate::automation::{describe_entry, describe_step, describe_trigger, event_text};
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::store::{AutomationStats, StepStats, StoredAutomation};
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["automations.html", "automation.html"];

/// The section the pages belong to (the highlighted navigation item).
const SECTION: &str = "automations";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/automations", get(list))
        .route("/app/automations/{name}", get(show))
        .route("/app/automations/{name}/{action}", post(act))
}

#[derive(Debug, Serialize)]
struct ListRow {
    name: String,
    href: String,
    status: String,
    version: i64,
    description: String,
    updated_at: String,
    entered: i64,
    active: i64,
    converted: i64,
}

async fn list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, AppError> {
    let mut rows = Vec::new();
    for automation in state.store.automations().await? {
        let stats = state.store.automation_stats(automation.id).await?;
        // One unreadable definition must not hide the others: it is named in its row.
        let description = match stored_definition(&automation) {
            Ok(definition) => definition.description,
            Err(error) => {
                tracing::warn!(automation = %automation.name, %error, "automations list");
                "(its stored definition cannot be read)".to_string()
            }
        };
        rows.push(ListRow {
            href: automation_path(&automation.name),
            name: automation.name,
            status: automation.status,
            version: automation.version,
            description,
            updated_at: format_timestamp(automation.updated_at),
            entered: stats.entered,
            active: stats.active,
            converted: stats.converted,
        });
    }
    let data = serde_json::json!({ "rows": rows });
    state.views.respond(
        StatusCode::OK,
        "automations.html",
        &signed_in,
        SECTION,
        &data,
    )
}

/// One step of the current version with its figures.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct StepRow {
    /// From 1.
    number: usize,
    id: String,
    /// What it does, as `mailcast automation show` says it.
    action: String,
    stats: StepStats,
}

/// Runs that ended for one reason.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct EndedRow {
    reason: String,
    label: String,
    count: i64,
}

#[derive(Debug, Serialize)]
struct DetailPage {
    name: String,
    href: String,
    status: String,
    paused: bool,
    version: i64,
    updated_at: String,
    description: String,
    trigger: String,
    entry: String,
    goal: Option<String>,
    sender: String,
    entered: i64,
    active: i64,
    converted: i64,
    ended: Vec<EndedRow>,
    steps: Vec<StepRow>,
    /// Figures of steps of earlier versions (runs that started on them).
    earlier: Vec<StepStats>,
    funnel: String,
}

async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let automation = state
        .store
        .automation_by_name(&name)
        .await?
        .ok_or_else(|| not_found("automation", &name))?;
    let definition = stored_definition(&automation)?;
    let stats = state.store.automation_stats(automation.id).await?;
    let steps = step_rows(&definition, automation.version, &stats);
    let goal = definition.goal.as_ref().map(event_text);
    let funnel_title = format!(
        "People who entered each step of version {}",
        automation.version
    );
    let data = DetailPage {
        funnel: bar_funnel(&funnel_bars(&steps, goal.is_some()), &funnel_title),
        href: automation_path(&automation.name),
        paused: automation.status == "paused",
        updated_at: format_timestamp(automation.updated_at),
        description: definition.description.clone(),
        trigger: describe_trigger(&definition.trigger),
        entry: describe_entry(&definition.entry),
        sender: sender_text(&definition.sender),
        goal,
        entered: stats.entered,
        active: stats.active,
        converted: stats.converted,
        ended: ended_rows(&stats),
        earlier: earlier_steps(automation.version, &stats),
        steps,
        name: automation.name,
        status: automation.status,
        version: automation.version,
    };
    state.views.respond(
        StatusCode::OK,
        "automation.html",
        &signed_in,
        SECTION,
        &data,
    )
}

/// Pause or resume, then back to the automation's page.
async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let status = match action.as_str() {
        "pause" => "paused",
        "resume" => "active",
        other => {
            return Err(HttpError::NotFound(format!("no automation action '{other}'")).into());
        }
    };
    if !state.store.set_automation_status(&name, status).await? {
        return Err(not_found("automation", &name));
    }
    Ok(Redirect::to(&automation_path(&name)).into_response())
}

fn stored_definition(automation: &StoredAutomation) -> Result<Definition, HttpError> {
    serde_json::from_str(&automation.definition)
        .map_err(|e| HttpError::Internal(format!("stored definition unreadable: {e}")))
}

/// `/app/automations/{name}` with the name as one path segment.
fn automation_path(name: &str) -> String {
    format!("/app/automations/{}", path_segment(name))
}

/// `Name <email>`, or the address alone when no name is given.
fn sender_text(sender: &Sender) -> String {
    if sender.name.is_empty() {
        sender.email.clone()
    } else {
        format!("{} <{}>", sender.name, sender.email)
    }
}

/// The current version's steps in order, each with its figures (zeros when no run
/// reached it yet).
fn step_rows(definition: &Definition, version: i64, stats: &AutomationStats) -> Vec<StepRow> {
    definition
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let figures = stats
                .steps
                .iter()
                .find(|s| s.version == version && s.step == index as i64)
                .cloned()
                .unwrap_or_else(|| StepStats {
                    version,
                    step: index as i64,
                    ..StepStats::default()
                });
            let described = describe_step(definition, index, step);
            let prefix = format!("{}. {}: ", index + 1, step.id);
            StepRow {
                number: index + 1,
                id: step.id.clone(),
                action: described
                    .strip_prefix(&prefix)
                    .unwrap_or(described.as_str())
                    .to_string(),
                stats: figures,
            }
        })
        .collect()
}

/// Figures of steps of other versions than `version`, by version and step.
fn earlier_steps(version: i64, stats: &AutomationStats) -> Vec<StepStats> {
    stats
        .steps
        .iter()
        .filter(|s| s.version != version)
        .cloned()
        .collect()
}

/// The funnel's bars: how many entered each step, then (with a goal) how many of the
/// runs converted.
fn funnel_bars(steps: &[StepRow], has_goal: bool) -> Vec<(String, i64)> {
    let mut bars: Vec<(String, i64)> = steps
        .iter()
        .map(|row| (format!("{}. {}", row.number, row.id), row.stats.entered))
        .collect();
    if has_goal && !bars.is_empty() {
        let converted = steps.iter().map(|row| row.stats.converted).sum();
        bars.push(("Converted".to_string(), converted));
    }
    bars
}

fn ended_rows(stats: &AutomationStats) -> Vec<EndedRow> {
    stats
        .ended
        .iter()
        .map(|(reason, &count)| EndedRow {
            label: ended_label(reason),
            reason: reason.clone(),
            count,
        })
        .collect()
}

/// Why runs ended, in words.
fn ended_label(reason: &str) -> String {
    let label = match reason {
        "finished" => "went through their last step",
        "exit" => "reached an exit step",
        "goal" => "reached the goal",
        "failed" => "stopped on a step that could not be done",
        "unsubscribed" => "unsubscribed",
        "bounced" => "bounced",
        "complained" => "complained (marked as spam)",
        "erased" => "were erased",
        other => other,
    };
    label.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CART: &str = include_str!("../../../automations/abandoned-cart.toml");

    fn cart() -> Definition {
        crate::automation::definition::parse(CART).expect("the example parses")
    }

    fn figures(version: i64, step: i64, entered: i64, converted: i64) -> StepStats {
        StepStats {
            version,
            step,
            entered,
            converted,
            ..StepStats::default()
        }
    }

    #[test]
    fn automation_paths_hold_the_name_as_one_segment() {
        assert_eq!(automation_path("win-back"), "/app/automations/win-back");
        assert_eq!(automation_path("a/b"), "/app/automations/a%2Fb");
    }

    #[test]
    fn every_step_of_the_current_version_gets_a_row() {
        let definition = cart();
        let stats = AutomationStats {
            steps: vec![
                figures(1, 0, 50, 0),
                figures(2, 0, 10, 0),
                figures(2, 1, 8, 3),
            ],
            ..AutomationStats::default()
        };
        let rows = step_rows(&definition, 2, &stats);
        assert_eq!(rows.len(), definition.steps.len());
        assert_eq!(rows[0].number, 1);
        assert_eq!(rows[0].id, "wait-for-purchase");
        assert_eq!(rows[0].stats.entered, 10);
        assert_eq!(rows[1].stats.converted, 3);
        assert_eq!(rows[2].stats, figures(2, 2, 0, 0));
        assert!(rows[1].action.starts_with("send abandoned-cart"));
        assert!(!rows[1].action.contains("reminder:"));
        assert_eq!(earlier_steps(2, &stats), vec![figures(1, 0, 50, 0)]);
    }

    #[test]
    fn the_funnel_ends_with_conversions_when_there_is_a_goal() {
        let definition = cart();
        let stats = AutomationStats {
            steps: vec![
                figures(1, 0, 10, 0),
                figures(1, 1, 6, 2),
                figures(1, 4, 2, 1),
            ],
            ..AutomationStats::default()
        };
        let rows = step_rows(&definition, 1, &stats);
        let bars = funnel_bars(&rows, true);
        assert_eq!(
            bars.first(),
            Some(&("1. wait-for-purchase".to_string(), 10))
        );
        assert_eq!(bars.last(), Some(&("Converted".to_string(), 3)));
        assert_eq!(bars.len(), definition.steps.len() + 1);
        assert_eq!(funnel_bars(&rows, false).len(), definition.steps.len());
        assert!(funnel_bars(&[], true).is_empty());
    }

    #[test]
    fn end_reasons_are_worded() {
        let stats = AutomationStats {
            ended: [("goal".to_string(), 4), ("something-new".to_string(), 1)].into(),
            ..AutomationStats::default()
        };
        let rows = ended_rows(&stats);
        assert_eq!(rows[0].label, "reached the goal");
        assert_eq!(rows[0].count, 4);
        assert_eq!(rows[1].label, "something-new");
    }

    #[test]
    fn senders_are_shown_with_their_name() {
        let definition = cart();
        assert_eq!(
            sender_text(&definition.sender),
            "Northwind Shop <shop@shop.example.com>"
        );
    }
}
