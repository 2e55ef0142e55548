//! Recipient pages: search by the start of an email address (one range of the unique
//! `email_key` index, paged by key) or the newest first; a profile with attributes,
//! consent, suppression, the newest events and deliveries and opens and clicks by
//! people and machines; the export as a download; erasure once the address is typed
//! again. Export and erasure call the store as the API does (`export_recipient`,
//! `erase_recipient`) and are for editors and admins only: an export is all the
//! personal data held about someone.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::page::{
    AppError, form_status, full_name, money, not_found, one_page, path_segment, query_string,
    require_editor,
};
use super::session::SignedIn;
use crate::domain::EmailAddress;
use crate::http::error::HttpError;
use crate::http::state::AppState;
use crate::store::{
    ConsentRecord, Recipient, RecipientDelivery, RecipientLine, Suppression, TimelineEvent,
    TrackingTally,
};
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["recipients.html", "recipient.html", "recipient_erase.html"];

/// Recipients a list page shows.
const PAGE_SIZE: usize = 50;
/// Events and deliveries a profile shows, newest first.
const HISTORY_ROWS: i64 = 50;
/// The section the pages belong to (the highlighted navigation item).
const SECTION: &str = "recipients";

const NO_RECIPIENTS: &str =
    "No recipients yet: import them with mailcast import recipients FILE, or through the API.";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/recipients", get(list))
        .route("/app/recipients/{email}", get(profile))
        .route("/app/recipients/{email}/export", get(export))
        .route("/app/recipients/{email}/erase", get(erase_form).post(erase))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    before: Option<String>,
    erased: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListPage {
    q: String,
    searching: bool,
    caption: String,
    empty: String,
    rows: Vec<ListRow>,
    next_href: Option<String>,
    first_href: Option<String>,
    erased: bool,
}

#[derive(Debug, Serialize)]
struct ListRow {
    href: String,
    email: String,
    name: String,
    country: String,
    status: String,
    created: String,
}

async fn list(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let key = search_key(&query.q);
    let mut data = if key.is_empty() {
        newest_page(&state, &query).await?
    } else {
        search_page(&state, &key, &query).await?
    };
    data.erased = query.erased.is_some();
    state.views.respond(
        StatusCode::OK,
        "recipients.html",
        &signed_in,
        SECTION,
        &data,
    )
}

async fn newest_page(state: &AppState, query: &ListQuery) -> Result<ListPage, AppError> {
    let before = query
        .before
        .as_deref()
        .and_then(|b| b.trim().parse::<i64>().ok());
    let lines = state
        .store
        .newest_recipients(before, PAGE_SIZE as i64 + 1)
        .await?;
    let (lines, more) = one_page(lines, PAGE_SIZE);
    let next_href = more
        .then(|| {
            lines
                .last()
                .map(|l| format!("/app/recipients?before={}", l.id))
        })
        .flatten();
    let total = state.store.count_recipients().await?;
    Ok(ListPage {
        q: String::new(),
        searching: false,
        caption: format!(
            "Newest first, of {} in all.",
            counted(total, "recipient", "recipients")
        ),
        empty: NO_RECIPIENTS.into(),
        rows: lines.iter().map(list_row).collect(),
        next_href,
        first_href: before.map(|_| "/app/recipients".to_string()),
        erased: false,
    })
}

async fn search_page(state: &AppState, key: &str, query: &ListQuery) -> Result<ListPage, AppError> {
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let lines = state
        .store
        .recipients_by_prefix(key, after, PAGE_SIZE as i64 + 1)
        .await?;
    let (lines, more) = one_page(lines, PAGE_SIZE);
    let next_href = more
        .then(|| {
            lines
                .last()
                .map(|l| search_href(&query.q, Some(&l.email_key)))
        })
        .flatten();
    Ok(ListPage {
        q: query.q.clone(),
        searching: true,
        caption: format!("Addresses that start with “{key}”, in alphabetical order."),
        empty: format!("No address starts with “{key}”."),
        rows: lines.iter().map(list_row).collect(),
        next_href,
        first_href: after.map(|_| search_href(&query.q, None)),
        erased: false,
    })
}

fn list_row(line: &RecipientLine) -> ListRow {
    ListRow {
        href: recipient_href(&line.email),
        email: line.email.clone(),
        name: full_name(line.first_name.as_deref(), line.last_name.as_deref()),
        country: line.country.clone().unwrap_or_default(),
        status: line.status.clone(),
        created: format_timestamp(line.created_at),
    }
}

/// What the search box holds in the form recipients are keyed by: a whole address as
/// `EmailAddress::key` (an IDN domain as A-labels), the start of one lower-cased, NFC.
fn search_key(typed: &str) -> String {
    let typed = typed.trim();
    match EmailAddress::parse(typed) {
        Ok(address) => address.key(),
        Err(_) => typed.to_lowercase().nfc().collect(),
    }
}

/// A search for `q`, from after the key `after` when given.
fn search_href(q: &str, after: Option<&str>) -> String {
    let query = query_string(&[("q", q), ("after", after.unwrap_or_default())]);
    format!("/app/recipients?{query}")
}

/// The profile's address: `/app/recipients/` and the address as one path segment
/// (`/`, `?`, `#` and `%` can be in an address's local part).
pub(super) fn recipient_href(email: &str) -> String {
    format!("/app/recipients/{}", path_segment(email))
}

/// `1 event`, `3 events`.
fn counted(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn no_recipient(text: &str) -> AppError {
    not_found("recipient", text)
}

/// The address `text` (a path segment, decoded) spells; one that is none is not found.
fn parse_address(text: &str) -> Result<EmailAddress, AppError> {
    EmailAddress::parse(text).map_err(|_| no_recipient(text))
}

/// The recipient `text` names, or a 404 page.
async fn find(state: &AppState, text: &str) -> Result<(EmailAddress, Recipient), AppError> {
    let address = parse_address(text)?;
    let recipient = state
        .store
        .recipient_by_email(&address)
        .await?
        .ok_or_else(|| no_recipient(text))?;
    Ok((address, recipient))
}

#[derive(Debug, Serialize)]
struct Profile {
    email: String,
    href: String,
    name: String,
    status: String,
    facts: Vec<Fact>,
    attributes: Vec<Fact>,
    consents: Vec<ConsentRow>,
    suppression: Option<SuppressionRow>,
    engagement: Vec<EngagementRow>,
    events: Vec<EventRow>,
    events_note: String,
    deliveries: Vec<DeliveryRow>,
    deliveries_note: String,
}

/// A label and its value, as text.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Fact {
    name: String,
    value: String,
}

impl Fact {
    fn new(name: &str, value: Option<&str>) -> Fact {
        Fact {
            name: name.into(),
            value: value.filter(|v| !v.trim().is_empty()).unwrap_or("–").into(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ConsentRow {
    topic: String,
    status: String,
    source: String,
    since: String,
}

#[derive(Debug, Serialize)]
struct SuppressionRow {
    reason: String,
    since: String,
    campaign: Option<String>,
    smtp_reply: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct EngagementRow {
    label: &'static str,
    human: i64,
    machine: i64,
    last_human: String,
}

#[derive(Debug, Serialize)]
struct EventRow {
    kind: String,
    product: String,
    value: String,
    time: String,
}

#[derive(Debug, Serialize)]
struct DeliveryRow {
    href: String,
    campaign: String,
    status: String,
    attempts: i64,
    sent: String,
    last_error: String,
}

async fn profile(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(email): Path<String>,
) -> Result<Response, AppError> {
    let (address, recipient) = find(&state, &email).await?;
    let id = recipient.id;
    let store = &state.store;
    let consents = store.consent_records(id).await?;
    let suppression = store.suppression(&address).await?;
    let tallies = store.recipient_tracking_tallies(id).await?;
    let events = store.recipient_recent_events(id, HISTORY_ROWS).await?;
    let event_count = store.recipient_event_count(id).await?;
    let deliveries = store.recipient_recent_deliveries(id, HISTORY_ROWS).await?;
    let delivery_count = store.recipient_delivery_count(id).await?;
    let data = Profile {
        href: recipient_href(&recipient.email),
        name: full_name(
            recipient.first_name.as_deref(),
            recipient.last_name.as_deref(),
        ),
        facts: facts(&recipient),
        attributes: attribute_facts(&recipient.attributes.0),
        consents: consents.iter().map(consent_row).collect(),
        suppression: suppression.as_ref().map(suppression_row),
        engagement: engagement_rows(&tallies),
        events_note: history_note(events.len(), event_count, "event", "events"),
        events: events.iter().map(event_row).collect(),
        deliveries_note: history_note(deliveries.len(), delivery_count, "delivery", "deliveries"),
        deliveries: deliveries.iter().map(delivery_row).collect(),
        status: recipient.status,
        email: recipient.email,
    };
    state
        .views
        .respond(StatusCode::OK, "recipient.html", &signed_in, SECTION, &data)
}

fn facts(recipient: &Recipient) -> Vec<Fact> {
    let name = full_name(
        recipient.first_name.as_deref(),
        recipient.last_name.as_deref(),
    );
    vec![
        Fact::new("Name", Some(name.as_str())),
        Fact::new("Country", recipient.country.as_deref()),
        Fact::new("City", recipient.city.as_deref()),
        Fact::new("Locale", recipient.locale.as_deref()),
        Fact::new("Time zone", recipient.timezone.as_deref()),
        Fact::new(
            "Created",
            Some(format_timestamp(recipient.created_at).as_str()),
        ),
    ]
}

/// The attributes object as name/value lines by name: strings as they are, other
/// values as JSON text (`42`, `true`, `["a","b"]`).
fn attribute_facts(attributes: &Value) -> Vec<Fact> {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match attributes {
        Value::Object(map) => {
            let mut lines: Vec<Fact> = map
                .iter()
                .map(|(name, value)| Fact {
                    name: name.clone(),
                    value: text(value),
                })
                .collect();
            lines.sort_by(|a, b| a.name.cmp(&b.name));
            lines
        }
        Value::Null => Vec::new(),
        other => vec![Fact {
            name: "(not an object)".into(),
            value: text(other),
        }],
    }
}

fn consent_row(consent: &ConsentRecord) -> ConsentRow {
    ConsentRow {
        topic: consent.topic.clone(),
        status: consent.status.clone(),
        source: consent.source.clone(),
        since: format_timestamp(consent.updated_at),
    }
}

fn suppression_row(suppression: &Suppression) -> SuppressionRow {
    SuppressionRow {
        reason: suppression.reason.clone(),
        since: format_timestamp(suppression.created_at),
        campaign: suppression.campaign.clone(),
        smtp_reply: suppression.smtp_reply.clone(),
    }
}

/// Opens, clicks and unsubscribes, by people and by machines (image proxies, link
/// scanners), with when a person last did each.
fn engagement_rows(tallies: &[TrackingTally]) -> Vec<EngagementRow> {
    [
        ("open", "Opens"),
        ("click", "Clicks"),
        ("unsubscribe", "Unsubscribes"),
    ]
    .into_iter()
    .map(|(kind, label)| {
        let of = |verdict: &str| {
            tallies
                .iter()
                .find(|t| t.kind == kind && t.verdict == verdict)
        };
        let human = of("human");
        EngagementRow {
            label,
            human: human.map_or(0, |t| t.count),
            machine: of("machine").map_or(0, |t| t.count),
            last_human: human.map_or_else(String::new, |t| format_timestamp(t.last_at)),
        }
    })
    .collect()
}

fn event_row(event: &TimelineEvent) -> EventRow {
    let product = match (&event.product, &event.sku) {
        (Some(name), Some(sku)) => format!("{name} ({sku})"),
        (None, Some(sku)) => sku.clone(),
        (Some(name), None) => name.clone(),
        (None, None) => String::new(),
    };
    EventRow {
        kind: event.kind.clone(),
        product,
        value: event.amount_cents.map(money).unwrap_or_default(),
        time: format_timestamp(event.occurred_at),
    }
}

fn delivery_row(delivery: &RecipientDelivery) -> DeliveryRow {
    DeliveryRow {
        href: format!("/app/campaigns/{}", delivery.campaign_id),
        campaign: delivery
            .campaign
            .clone()
            .unwrap_or_else(|| format!("campaign {}", delivery.campaign_id)),
        status: delivery.status.clone(),
        attempts: delivery.attempts,
        sent: delivery.sent_at.map(format_timestamp).unwrap_or_default(),
        last_error: delivery.last_error.clone().unwrap_or_default(),
    }
}

/// `All 3 events, newest first.` or `The 50 newest of 1234 events.`
fn history_note(shown: usize, total: i64, one: &str, many: &str) -> String {
    match total {
        0 => format!("No {many}."),
        _ if shown as i64 >= total => format!("All {}, newest first.", counted(total, one, many)),
        _ => format!("The {shown} newest of {total} {many}."),
    }
}

/// The download is the API's `GET /api/recipients/{email}/export`, byte for byte.
async fn export(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(email): Path<String>,
) -> Result<Response, AppError> {
    require_editor(&signed_in, "export a recipient's personal data")?;
    let address = parse_address(&email)?;
    let Some(export) = state.store.export_recipient(&address).await? else {
        return Err(no_recipient(&email));
    };
    let body = serde_json::to_vec(&export)
        .map_err(|e| HttpError::Internal(format!("recipient export: {e}")))?;
    tracing::info!(
        user_id = signed_in.user_id,
        "recipient exported from the dashboard"
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"recipient-export.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct EraseForm {
    #[serde(default)]
    confirm: String,
}

#[derive(Debug, Serialize)]
struct ErasePage {
    email: String,
    href: String,
    consents: String,
    events: String,
    deliveries: String,
    tracking: String,
    confirm: String,
    error: Option<String>,
}

async fn erase_form(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(email): Path<String>,
) -> Result<Response, AppError> {
    require_editor(&signed_in, "erase recipients")?;
    let (_, recipient) = find(&state, &email).await?;
    erase_page(&state, &signed_in, &recipient, "", None).await
}

async fn erase_page(
    state: &AppState,
    signed_in: &SignedIn,
    recipient: &Recipient,
    confirm: &str,
    error: Option<String>,
) -> Result<Response, AppError> {
    let id = recipient.id;
    let store = &state.store;
    let consents = store.consent_records(id).await?.len() as i64;
    let tracked: i64 = store
        .recipient_tracking_tallies(id)
        .await?
        .iter()
        .map(|t| t.count)
        .sum();
    let data = ErasePage {
        email: recipient.email.clone(),
        href: recipient_href(&recipient.email),
        consents: counted(consents, "topic", "topics"),
        events: counted(store.recipient_event_count(id).await?, "event", "events"),
        deliveries: counted(
            store.recipient_delivery_count(id).await?,
            "delivery",
            "deliveries",
        ),
        tracking: counted(
            tracked,
            "open, click or unsubscribe",
            "opens, clicks and unsubscribes",
        ),
        confirm: confirm.to_string(),
        error,
    };
    let status = form_status(data.error.is_some());
    state
        .views
        .respond(status, "recipient_erase.html", signed_in, SECTION, &data)
}

/// Whether `typed` is the address `address` (any case or spelling of the same mailbox).
fn confirms(typed: &str, address: &EmailAddress) -> bool {
    EmailAddress::parse(typed).is_ok_and(|typed| typed.key() == address.key())
}

async fn erase(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(email): Path<String>,
    Form(form): Form<EraseForm>,
) -> Result<Response, AppError> {
    require_editor(&signed_in, "erase recipients")?;
    let (address, recipient) = find(&state, &email).await?;
    if !confirms(&form.confirm, &address) {
        let error = format!(
            "That is not the address: type {} to confirm.",
            recipient.email
        );
        return erase_page(&state, &signed_in, &recipient, &form.confirm, Some(error)).await;
    }
    if !state.store.erase_recipient(&address).await? {
        return Err(no_recipient(&email));
    }
    tracing::info!(
        user_id = signed_in.user_id,
        "recipient erased on request from the dashboard; a hashed suppression remains"
    );
    Ok(Redirect::to("/app/recipients?erased=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_search_key_is_lower_case_and_nfc() {
        assert_eq!(search_key("  Anna.M "), "anna.m");
        assert_eq!(search_key("JOSE\u{301}"), "jos\u{e9}");
        assert_eq!(search_key("Anna@Example.COM"), "anna@example.com");
        assert_eq!(
            search_key("anna@b\u{fc}cher.example"),
            "anna@xn--bcher-kva.example"
        );
        assert_eq!(search_key("   "), "");
    }

    #[test]
    fn profiles_hold_the_address_as_one_path_segment() {
        assert_eq!(
            recipient_href("anna+news@example.com"),
            "/app/recipients/anna+news@example.com"
        );
        assert_eq!(
            recipient_href("a/b?c#d%e@x.io"),
            "/app/recipients/a%2Fb%3Fc%23d%25e@x.io"
        );
        assert_eq!(
            recipient_href("jos\u{e9}@x.io"),
            "/app/recipients/jos%C3%A9@x.io"
        );
    }

    #[test]
    fn search_links_carry_the_query_and_the_last_key() {
        assert_eq!(search_href("a&b", None), "/app/recipients?q=a%26b");
        assert_eq!(
            search_href("ann", Some("ann+1@x.io")),
            "/app/recipients?q=ann&after=ann%2B1%40x.io"
        );
    }

    #[test]
    fn attributes_are_lines_of_text() {
        let lines = attribute_facts(&json!({"plan": "<b>gold</b>", "visits": 3, "tags": ["a"]}));
        let pairs: Vec<(&str, &str)> = lines
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("plan", "<b>gold</b>"),
                ("tags", "[\"a\"]"),
                ("visits", "3")
            ]
        );
        assert!(attribute_facts(&Value::Null).is_empty());
        assert_eq!(attribute_facts(&json!(5))[0].value, "5");
    }

    #[test]
    fn counts_read_well() {
        assert_eq!(counted(1, "event", "events"), "1 event");
        assert_eq!(counted(0, "event", "events"), "0 events");
        assert_eq!(Fact::new("City", None).value, "–");
    }

    #[test]
    fn history_notes_say_whether_everything_is_shown() {
        assert_eq!(history_note(0, 0, "event", "events"), "No events.");
        assert_eq!(
            history_note(1, 1, "event", "events"),
            "All 1 event, newest first."
        );
        assert_eq!(
            history_note(50, 1234, "event", "events"),
            "The 50 newest of 1234 events."
        );
    }

    #[test]
    fn engagement_counts_people_and_machines_apart() {
        let tally = |kind: &str, verdict: &str, count, last_at| TrackingTally {
            kind: kind.into(),
            verdict: verdict.into(),
            count,
            last_at,
        };
        let rows = engagement_rows(&[
            tally("open", "human", 2, 0),
            tally("open", "machine", 5, 9),
            tally("click", "machine", 1, 9),
        ]);
        assert_eq!(rows[0].label, "Opens");
        assert_eq!((rows[0].human, rows[0].machine), (2, 5));
        assert_eq!(rows[0].last_human, format_timestamp(0));
        assert_eq!((rows[1].human, rows[1].machine), (0, 1));
        assert_eq!(rows[1].last_human, "");
        assert_eq!((rows[2].human, rows[2].machine), (0, 0));
    }

    #[test]
    fn erasure_is_confirmed_by_any_spelling_of_the_address() {
        let address = EmailAddress::parse("Anna@example.com").unwrap();
        assert!(confirms("Anna@example.com", &address));
        assert!(confirms(" anna@EXAMPLE.com ", &address));
        assert!(!confirms("anna@example.org", &address));
        assert!(!confirms("", &address));
    }
}
