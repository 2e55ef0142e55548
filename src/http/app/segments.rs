//! Segment pages: the list (with the campaigns using each segment), and the editor,
//! which checks the expression as it is typed (`segments.js` posts it to
//! `/app/segments/check`; without the script the Check button posts the form) and
//! saves it with the checks of `PUT /api/segments/{name}`.

use std::collections::HashMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};

use super::page::{
    AfterQuery, AppError, after_query, found, full_name, not_found, one_page, path_segment,
    require_editor,
};
use super::recipients::recipient_href;
use super::session::SignedIn;
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::segment::{ParseError, SegmentError, check_definition, compile_stored, parse};
use crate::store::{Recipient, Segment, SegmentCount, SegmentUse, SqlFilter, StoreError};

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["segments.html", "segment.html"];

/// Segments a list page shows.
const PAGE_SIZE: usize = 50;
/// Campaigns listed per segment and kind of use; the rest are counted.
const USES_SHOWN: i64 = 5;
/// Recipients a check shows.
const SAMPLE: i64 = 10;
/// The longest segment name, as the API allows.
const NAME_LIMIT: usize = 100;
/// Names the dashboard's own routes take: a segment so named could not be opened.
const ROUTE_NAMES: &[&str] = &["new", "check"];
/// The section the pages belong to (the highlighted navigation item).
const SECTION: &str = "segments";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/segments", get(list).post(save))
        .route("/app/segments/new", get(new_form))
        .route("/app/segments/check", post(check))
        .route("/app/segments/{name}", get(edit))
}

/// The editor's fields.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct SegmentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expression: String,
    /// Consent is counted for this topic; empty: not checked. Not stored.
    #[serde(default)]
    topic: String,
    /// The form edits a stored segment: its name is fixed.
    #[serde(default)]
    editing: bool,
}

impl SegmentForm {
    /// As typed, less surrounding blanks; line ends as `\n` (browsers post `\r\n`).
    fn normalized(self) -> SegmentForm {
        SegmentForm {
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            expression: self.expression.replace("\r\n", "\n"),
            topic: self.topic.trim().to_string(),
            editing: self.editing,
        }
    }
}

// ---- the list ----

#[derive(Debug, Default, Serialize)]
struct CampaignLink {
    id: i64,
    name: String,
}

/// The newest campaigns using a segment one way, and how many more there are.
#[derive(Debug, Default, Serialize)]
struct UseList {
    campaigns: Vec<CampaignLink>,
    more: i64,
}

#[derive(Debug, Default, Serialize)]
struct SegmentUses {
    /// Campaigns sending to the segment.
    audience: UseList,
    /// Campaigns whose template may branch on membership of the segment.
    declared: UseList,
}

#[derive(Debug, Serialize)]
struct ListRow {
    segment: Segment,
    href: String,
    uses: SegmentUses,
}

async fn list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<AfterQuery>,
) -> Result<Response, AppError> {
    let after = query.after();
    let fetched = state
        .store
        .segment_page(after, PAGE_SIZE as i64 + 1)
        .await?;
    let (segments, more) = one_page(fetched, PAGE_SIZE);
    let names: Vec<String> = segments.iter().map(|s| s.name.clone()).collect();
    let mut uses = uses_of(&state, &names).await?;
    let next = after_query(&segments, more, |segment| segment.name.as_str());
    let rows: Vec<ListRow> = segments
        .into_iter()
        .map(|segment| ListRow {
            href: editor_href(&segment.name),
            uses: uses.remove(&segment.name).unwrap_or_default(),
            segment,
        })
        .collect();
    let data = serde_json::json!({ "rows": rows, "next": next, "first": after.is_some() });
    state
        .views
        .respond(StatusCode::OK, "segments.html", &signed_in, SECTION, &data)
}

/// The campaigns using each of `names`, as audience and as a declared segment.
async fn uses_of(
    state: &AppState,
    names: &[String],
) -> Result<HashMap<String, SegmentUses>, StoreError> {
    let store = &state.store;
    let mut audience = by_segment(store.segment_audience_uses(names, USES_SHOWN).await?);
    let mut declared = by_segment(store.segment_declared_uses(names, USES_SHOWN).await?);
    let uses = names.iter().map(|name| {
        let uses = SegmentUses {
            audience: audience.remove(name).unwrap_or_default(),
            declared: declared.remove(name).unwrap_or_default(),
        };
        (name.clone(), uses)
    });
    Ok(uses.collect())
}

/// Uses (newest first within each segment) gathered by segment name.
fn by_segment(uses: Vec<SegmentUse>) -> HashMap<String, UseList> {
    let mut lists: HashMap<String, UseList> = HashMap::new();
    for used in uses {
        let list = lists.entry(used.segment).or_default();
        list.campaigns.push(CampaignLink {
            id: used.campaign_id,
            name: used.campaign_name,
        });
        list.more = (used.total - list.campaigns.len() as i64).max(0);
    }
    lists
}

// ---- the editor ----

/// What the editor shows besides the form.
#[derive(Debug, Default)]
struct Feedback<'a> {
    errors: Option<&'a FieldErrors>,
    result: Option<&'a Outcome>,
    saved: bool,
}

#[derive(Debug, Serialize)]
struct EditorPage<'a> {
    form: &'a SegmentForm,
    errors: Option<&'a FieldErrors>,
    result: Option<&'a Outcome>,
    saved: bool,
    topics: Vec<String>,
    /// The campaigns using the stored segment; None for a new one.
    uses: Option<SegmentUses>,
}

async fn new_form(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, AppError> {
    require_editor(&signed_in, "create segments")?;
    let form = SegmentForm::default();
    let feedback = Feedback::default();
    editor_page(&state, &signed_in, &form, feedback, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditQuery {
    saved: Option<String>,
}

async fn edit(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
    Query(query): Query<EditQuery>,
) -> Result<Response, AppError> {
    let segment = state
        .store
        .segment_by_name(&name)
        .await?
        .ok_or_else(|| not_found("segment", &name))?;
    let form = SegmentForm {
        name: segment.name,
        description: segment.description,
        expression: segment.expression,
        topic: String::new(),
        editing: true,
    };
    let feedback = Feedback {
        saved: query.saved.is_some(),
        ..Feedback::default()
    };
    editor_page(&state, &signed_in, &form, feedback, StatusCode::OK).await
}

async fn editor_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: &SegmentForm,
    feedback: Feedback<'_>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let uses = if form.editing {
        let names = [form.name.clone()];
        uses_of(state, &names).await?.remove(&form.name)
    } else {
        None
    };
    let data = EditorPage {
        form,
        errors: feedback.errors,
        result: feedback.result,
        saved: feedback.saved,
        topics: state.store.topic_names().await?,
        uses,
    };
    state
        .views
        .respond(status, "segment.html", signed_in, SECTION, &data)
}

/// Creates or replaces the segment; on a mistake the editor again, with the messages.
async fn save(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Form(form): Form<SegmentForm>,
) -> Result<Response, AppError> {
    let form = form.normalized();
    match store_checked(&state, &form).await {
        Ok(()) => {
            let saved = format!("{}?saved=1", editor_href(&form.name));
            Ok(Redirect::to(&saved).into_response())
        }
        Err(HttpError::Invalid { fields, .. }) => {
            let refusal = expression_refusal(&form.expression, &fields);
            let feedback = Feedback {
                errors: Some(&fields),
                result: refusal.as_ref(),
                saved: false,
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            editor_page(&state, &signed_in, &form, feedback, status).await
        }
        Err(other) => Err(other.into()),
    }
}

/// What the result area shows when saving refused the expression: the caret under a
/// parse error, or the reason without a place (an unknown or cyclic reference).
fn expression_refusal(expression: &str, fields: &FieldErrors) -> Option<Outcome> {
    if let Err(error) = parse(expression) {
        return Some(Outcome::Refused(Refusal::at(&error, expression)));
    }
    let messages = fields.get("expression")?;
    Some(Outcome::Refused(Refusal::whole(messages.join(" "))))
}

/// The checks of `PUT /api/segments/{name}` (a valid name; an expression that
/// parses and passes `check_definition`), then the store's upsert.
async fn store_checked(state: &AppState, form: &SegmentForm) -> Result<(), HttpError> {
    let mut errors = FieldErrors::new();
    if let Some(problem) = name_problem(&form.name) {
        add_error(&mut errors, "name", problem);
    } else if !form.editing && state.store.segment_by_name(&form.name).await?.is_some() {
        let message = format!(
            "a segment named \"{}\" exists already: open it from the list to change it",
            form.name
        );
        add_error(&mut errors, "name", message);
    }
    match parse(&form.expression) {
        Err(error) => add_error(&mut errors, "expression", located(&error)),
        Ok(definition) if errors.is_empty() => {
            let now = crate::time::now();
            match check_definition(&state.store, &form.name, &definition, now).await {
                Ok(_) => {}
                Err(SegmentError::Store(error)) => return Err(error.into()),
                Err(error) => add_error(&mut errors, "expression", error.to_string()),
            }
        }
        Ok(_) => {}
    }
    if !errors.is_empty() {
        return Err(HttpError::invalid(errors));
    }
    state
        .store
        .upsert_segment(&form.name, &form.expression, &form.description)
        .await?;
    Ok(())
}

/// Why `name` (trimmed) cannot name a segment, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > NAME_LIMIT {
        return Some(format!("must be 1 to {NAME_LIMIT} characters"));
    }
    if ROUTE_NAMES.contains(&name) {
        return Some(format!(
            "\"{name}\" is taken by the dashboard's own pages: choose another name"
        ));
    }
    None
}

// ---- the check ----

/// What a check shows: the counts and a sample, or why the expression is refused.
/// Sent as JSON to `segments.js` and rendered by `segment.html`, the same fields.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome {
    Counted(Counted),
    Refused(Refusal),
}

#[derive(Debug, Serialize)]
struct Counted {
    /// Always true.
    ok: bool,
    count: SegmentCount,
    /// The topic consent was counted for; None: consent not checked.
    topic: Option<String>,
    sample: Vec<SampleRow>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct Refusal {
    /// Always false.
    ok: bool,
    error: String,
    /// Where the parser stopped (from 1), when the error has a place in the text.
    line: Option<u32>,
    column: Option<u32>,
    source_line: Option<String>,
    /// Blanks up to the column, then `^`: printed under `source_line`.
    caret: Option<String>,
}

impl Refusal {
    fn at(error: &ParseError, text: &str) -> Refusal {
        let source = source_line(text, error.pos.line);
        Refusal {
            ok: false,
            error: error.message.clone(),
            line: Some(error.pos.line),
            column: Some(error.pos.col),
            caret: Some(caret_under(&source, error.pos.col)),
            source_line: Some(source),
        }
    }

    /// An error without a place in the text (an unknown or cyclic segment reference).
    fn whole(error: String) -> Refusal {
        Refusal {
            ok: false,
            error,
            line: None,
            column: None,
            source_line: None,
            caret: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct SampleRow {
    email: String,
    href: String,
    name: String,
    country: String,
    status: String,
}

impl From<Recipient> for SampleRow {
    fn from(r: Recipient) -> SampleRow {
        SampleRow {
            href: recipient_href(&r.email),
            name: full_name(r.first_name.as_deref(), r.last_name.as_deref()),
            email: r.email,
            country: r.country.unwrap_or_default(),
            status: r.status,
        }
    }
}

/// The live check's body.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckRequest {
    expression: String,
    /// The segment being edited or named: checked as `mailcast segment save` would
    /// (references leading back to it are a cycle). Empty: checked on its own.
    #[serde(default)]
    name: String,
    #[serde(default)]
    topic: String,
}

/// JSON (`segments.js`) answers JSON, 200 whether or not the expression is valid; a
/// posted form answers the editor with the result.
async fn check(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    request: Request,
) -> Result<Response, AppError> {
    if wants_json(&request) {
        let Json(body) = Json::<CheckRequest>::from_request(request, &state)
            .await
            .map_err(|rejection| HttpError::BadRequest(rejection.body_text()))?;
        let outcome = checked(
            &state,
            body.name.trim(),
            &body.expression,
            body.topic.trim(),
        )
        .await?;
        return Ok(Json(outcome).into_response());
    }
    let Form(form) = Form::<SegmentForm>::from_request(request, &state)
        .await
        .map_err(|rejection| HttpError::BadRequest(rejection.body_text()))?;
    let form = form.normalized();
    let outcome = checked(&state, &form.name, &form.expression, &form.topic).await?;
    let feedback = Feedback {
        result: Some(&outcome),
        ..Feedback::default()
    };
    editor_page(&state, &signed_in, &form, feedback, StatusCode::OK).await
}

fn wants_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// Parses and compiles `expression` (as the segment `name` when one is given), then
/// counts and samples its recipients.
async fn checked(
    state: &AppState,
    name: &str,
    expression: &str,
    topic: &str,
) -> Result<Outcome, AppError> {
    let definition = match parse(expression) {
        Ok(definition) => definition,
        Err(error) => return Ok(Outcome::Refused(Refusal::at(&error, expression))),
    };
    let now = crate::time::now();
    let compiled = if name.is_empty() {
        compile_stored(&state.store, &definition, now).await
    } else {
        check_definition(&state.store, name, &definition, now).await
    };
    match compiled {
        Ok(filter) => measured(state, &filter, topic).await,
        Err(SegmentError::Store(error)) => Err(error.into()),
        Err(error) => Ok(Outcome::Refused(Refusal::whole(error.to_string()))),
    }
}

async fn measured(state: &AppState, filter: &SqlFilter, topic: &str) -> Result<Outcome, AppError> {
    let topic = (!topic.is_empty()).then(|| topic.to_string());
    let counted = state.store.count_segment(filter, topic.as_deref()).await;
    let Some(count) = found(counted)? else {
        let unknown = format!("no topic named \"{}\"", topic.as_deref().unwrap_or(""));
        return Ok(Outcome::Refused(Refusal::whole(unknown)));
    };
    let sample = state.store.sample_segment(filter, SAMPLE).await?;
    Ok(Outcome::Counted(Counted {
        ok: true,
        count,
        topic,
        sample: sample.into_iter().map(SampleRow::from).collect(),
    }))
}

// ---- text helpers ----

/// A parse error as a sentence: `Line 2, column 7: expected …`.
fn located(error: &ParseError) -> String {
    format!(
        "Line {}, column {}: {}",
        error.pos.line, error.pos.col, error.message
    )
}

/// Line `line` (from 1) of `text`; empty past the end.
fn source_line(text: &str, line: u32) -> String {
    text.lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or("")
        .to_string()
}

/// What goes under `source` so that `^` stands at column `column` (from 1, in
/// characters): blanks, keeping the line's tabs so that the caret lines up.
fn caret_under(source: &str, column: u32) -> String {
    let before = column.saturating_sub(1) as usize;
    let mut caret: String = source
        .chars()
        .chain(std::iter::repeat(' '))
        .take(before)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    caret.push('^');
    caret
}

fn editor_href(name: &str) -> String {
    format!("/app/segments/{}", path_segment(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caret_stands_under_the_column() {
        assert_eq!(caret_under("country = 'DE'", 9), "        ^");
        assert_eq!(caret_under("x", 1), "^");
        // At the end of the input, past the line's last character.
        assert_eq!(caret_under("did(", 5), "    ^");
        assert_eq!(caret_under("", 3), "  ^");
    }

    #[test]
    fn the_caret_keeps_tabs_and_counts_characters() {
        assert_eq!(caret_under("\tcountry ==", 10), "\t        ^");
        assert_eq!(caret_under("é = 1", 3), "  ^");
    }

    #[test]
    fn a_parse_error_is_refused_with_its_line() {
        let text = "country == \"US\"\n  and purchases(within: 90) >= 3";
        let error = parse(text).unwrap_err();
        let refusal = Refusal::at(&error, text);
        assert!(!refusal.ok);
        assert_eq!(refusal.line, Some(2));
        let source = refusal.source_line.as_deref().unwrap();
        assert_eq!(source, "  and purchases(within: 90) >= 3");
        assert_eq!(refusal.column, Some(25));
        assert_eq!(refusal.caret.unwrap(), format!("{}^", " ".repeat(24)));
        assert_eq!(refusal.error, error.message);
    }

    #[test]
    fn a_refused_save_shows_the_caret_or_the_reason() {
        let mut fields = FieldErrors::new();
        let caret = expression_refusal("country ==", &fields);
        assert!(matches!(
            caret,
            Some(Outcome::Refused(Refusal { caret: Some(_), .. }))
        ));
        assert!(expression_refusal("country == \"US\"", &fields).is_none());
        add_error(&mut fields, "expression", "no segment named \"vip\"");
        let reason = expression_refusal("segment(\"vip\")", &fields);
        let Some(Outcome::Refused(reason)) = reason else {
            panic!("expected a refusal");
        };
        assert_eq!(reason.error, "no segment named \"vip\"");
        assert_eq!(reason.caret, None);
    }

    #[test]
    fn lines_past_the_end_are_empty() {
        assert_eq!(source_line("a\nb", 2), "b");
        assert_eq!(source_line("a\nb", 3), "");
        assert_eq!(source_line("a", 0), "a");
    }

    #[test]
    fn outcomes_serialise_as_the_script_reads_them() {
        let refused = serde_json::to_value(Outcome::Refused(Refusal::whole("no".into()))).unwrap();
        assert_eq!(refused["ok"], false);
        assert_eq!(refused["error"], "no");
        assert!(refused["line"].is_null());
        let counted = Outcome::Counted(Counted {
            ok: true,
            count: SegmentCount::default(),
            topic: None,
            sample: Vec::new(),
        });
        let counted = serde_json::to_value(counted).unwrap();
        assert_eq!(counted["ok"], true);
        assert_eq!(counted["count"]["matching"], 0);
    }

    #[test]
    fn editor_links_hold_the_name_as_one_segment() {
        assert_eq!(editor_href("vip list"), "/app/segments/vip%20list");
        assert_eq!(editor_href("a/b"), "/app/segments/a%2Fb");
    }

    #[test]
    fn names_follow_the_api_and_avoid_routes() {
        assert!(name_problem("vip").is_none());
        assert!(name_problem("").is_some());
        assert!(name_problem(&"x".repeat(101)).is_some());
        assert!(name_problem(&"x".repeat(100)).is_none());
        assert!(name_problem("new").is_some());
        assert!(name_problem("check").is_some());
    }

    #[test]
    fn forms_are_normalised() {
        let form = SegmentForm {
            name: "  vip ".into(),
            expression: "a == \"1\"\r\nor b == \"2\"".into(),
            ..SegmentForm::default()
        }
        .normalized();
        assert_eq!(form.name, "vip");
        assert_eq!(form.expression, "a == \"1\"\nor b == \"2\"");
    }

    fn used(segment: &str, campaign_id: i64, total: i64) -> SegmentUse {
        SegmentUse {
            segment: segment.into(),
            campaign_id,
            campaign_name: format!("c{campaign_id}"),
            total,
        }
    }

    #[test]
    fn uses_are_gathered_by_segment_with_the_rest_counted() {
        let uses = vec![used("a", 9, 7), used("a", 4, 7), used("b", 3, 1)];
        let lists = by_segment(uses);
        let a = &lists["a"];
        assert_eq!(a.campaigns.iter().map(|c| c.id).collect::<Vec<_>>(), [9, 4]);
        assert_eq!(a.more, 5);
        assert_eq!(lists["b"].more, 0);
        assert_eq!(lists["b"].campaigns[0].name, "c3");
    }
}
