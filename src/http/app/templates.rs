//! Template pages: the library (the newest version of each name, by keyset on the
//! name); a preview of a template for any recipient (the subject, the headers, the HTML
//! at desktop and phone width, the text part, the recommendations and why); and a test
//! send, through the triggered-send path `POST /api/sends` and `mailcast send` take.
//!
//! A preview renders with the `CampaignRenderer` every campaign uses, for an unsaved
//! campaign (id 0, as `dispatch::compiles` checks a triggered send before storing it):
//! no campaign row and no stored links, so a click in the preview finds no target and
//! the tracking side records nothing. The framed HTML comes from `render_web` (no open
//! pixel) without the honeypot link, under a CSP that sandboxes it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::page::{AppError, page};
use super::session::SignedIn;
use crate::dispatch::{
    KeyedOutcome, KeyedSend, TriggeredError, TriggeredSend, check_send, send_once,
};
use crate::domain::{CampaignKind, EmailAddress};
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::recommend::Recommender;
use crate::render::{
    CampaignRenderer, LinkSettings, RecipientContext, RenderSpec, RenderedMessage,
};
use crate::store::{
    CampaignSettings, LedgerCounts, Recipient, RecipientHistory, StoreError, Template,
    TemplateSender, TemplateSummary,
};
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["templates.html", "template.html"];

/// Templates a library page shows.
const PAGE_SIZE: i64 = 50;
/// The idempotency scope of test sends, created on first use (as the CLI's is).
const TEST_SCOPE: &str = "mailcast-dashboard";
/// The From of a preview when neither the form nor an earlier campaign names one.
const PLACEHOLDER_FROM: &str = "sender@example.com";
/// A preview's campaign id: no stored campaign has it (ids start at 1).
const UNSAVED_CAMPAIGN: i64 = 0;
/// The framed message may show images and its own inline styles, nothing else.
const PREVIEW_CSP: &str = "sandbox; default-src 'none'; img-src * data:; \
     style-src 'unsafe-inline'; frame-ancestors 'self'";
/// Header fields a preview leaves out: the MIME structure and the send time.
const UNSHOWN_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
];
/// Where the renderer puts the honeypot link (see `render::template`).
const HONEYPOT_START: &str = "<!--honeypot-->";
const HONEYPOT_END: &str = "<!--/honeypot-->";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/templates", get(library))
        .route("/app/templates/{name}", get(show))
        .route("/app/templates/{name}/preview.html", get(preview_html))
        .route("/app/templates/{name}/test", post(test_send))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LibraryQuery {
    after: Option<String>,
}

#[derive(Debug, Serialize)]
struct LibraryRow {
    name: String,
    path: String,
    version: i64,
    subject: String,
    updated_at: String,
}

impl From<TemplateSummary> for LibraryRow {
    fn from(summary: TemplateSummary) -> LibraryRow {
        LibraryRow {
            path: path_segment(&summary.name),
            updated_at: format_timestamp(summary.updated_at),
            name: summary.name,
            version: summary.version,
            subject: summary.subject,
        }
    }
}

async fn library(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Query(query): Query<LibraryQuery>,
) -> Result<Response, AppError> {
    let after = query.after.as_deref().filter(|after| !after.is_empty());
    let templates = state.store.template_page(after, PAGE_SIZE).await?;
    let next = match templates.last() {
        Some(last) if templates.len() as i64 == PAGE_SIZE => {
            Some(query_string(&[("after", last.name.as_str())]))
        }
        _ => None,
    };
    let rows: Vec<LibraryRow> = templates.into_iter().map(LibraryRow::from).collect();
    let data = serde_json::json!({
        "rows": rows,
        "total": state.store.count_templates().await?,
        "next": next,
        "first": after.is_some(),
    });
    let body = state
        .views
        .render("templates.html", Some(&signed_in), "templates", &data)?;
    Ok(page(body))
}

/// The preview's choices, as the form (GET) and the iframe's URL carry them.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct PreviewQuery {
    /// A stored recipient's address; empty for the first recipient by id.
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    from_email: String,
    #[serde(default)]
    from_name: String,
    /// `marketing`, `transactional`, or empty for the sender's or a guess.
    #[serde(default)]
    kind: String,
    /// The send id of a test just queued, to report on.
    #[serde(default)]
    test: String,
    /// Where that test went.
    #[serde(default)]
    to: String,
}

/// Where the From of a preview comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SenderSource {
    Form,
    /// The newest campaign that used the template (or the form repeats it).
    Campaign,
    /// Nothing names one: [`PLACEHOLDER_FROM`] is shown.
    Placeholder,
}

/// Who a preview (and a test) is sent from, and as what kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sender {
    /// Empty with [`SenderSource::Placeholder`].
    from_email: String,
    from_name: String,
    reply_to: Option<String>,
    kind: CampaignKind,
    source: SenderSource,
}

impl Sender {
    fn shown_from_email(&self) -> &str {
        match self.source {
            SenderSource::Placeholder => PLACEHOLDER_FROM,
            _ => &self.from_email,
        }
    }

    fn note(&self) -> &'static str {
        match self.source {
            SenderSource::Form => "The From is the one entered under Sender.",
            SenderSource::Campaign => {
                "The From is that of the newest campaign that used this template; change it \
                 under Sender."
            }
            SenderSource::Placeholder => {
                "No campaign has used this template yet: the From is a placeholder. Enter the \
                 address you will send from under Sender."
            }
        }
    }
}

/// The sender the form asks for, else the newest campaign's, else a placeholder; the
/// kind likewise, else marketing when the template has an unsubscribe link.
fn settle_sender(
    query: &PreviewQuery,
    earlier: Option<TemplateSender>,
    template: &Template,
) -> Result<Sender, FieldErrors> {
    let kind = match query.kind.trim() {
        "" => earlier
            .as_ref()
            .map(|sender| sender.kind)
            .unwrap_or_else(|| guessed_kind(template)),
        text => text.parse().map_err(|_| {
            FieldErrors::from([(
                "kind".to_string(),
                vec!["Choose marketing or transactional.".to_string()],
            )])
        })?,
    };
    let reply_to = earlier.as_ref().and_then(|sender| sender.reply_to.clone());
    let from_email = query.from_email.trim();
    let from_name = query.from_name.trim();
    let as_before = earlier
        .as_ref()
        .is_some_and(|e| e.from_email == from_email && e.from_name == from_name);
    let sender = match earlier {
        _ if !from_email.is_empty() && !as_before => Sender {
            from_email: from_email.to_string(),
            from_name: from_name.to_string(),
            reply_to,
            kind,
            source: SenderSource::Form,
        },
        Some(earlier) => Sender {
            from_email: earlier.from_email,
            from_name: earlier.from_name,
            reply_to,
            kind,
            source: SenderSource::Campaign,
        },
        None => Sender {
            from_email: String::new(),
            from_name: from_name.to_string(),
            reply_to,
            kind,
            source: SenderSource::Placeholder,
        },
    };
    Ok(sender)
}

/// A template that links to its unsubscribe page is meant for marketing; the renderer
/// refuses a marketing message without one.
fn guessed_kind(template: &Template) -> CampaignKind {
    let parts = [Some(&template.html), template.text.as_ref()];
    if parts
        .into_iter()
        .flatten()
        .any(|part| part.contains("unsubscribe_url"))
    {
        CampaignKind::Marketing
    } else {
        CampaignKind::Transactional
    }
}

/// Whom a preview shows.
enum Pick {
    Chosen(Recipient),
    /// None was asked for: the first by id.
    First(Recipient),
    /// There are no recipients at all.
    Nobody,
}

async fn pick_recipient(
    state: &AppState,
    asked: &str,
) -> Result<Result<Pick, FieldErrors>, AppError> {
    let asked = asked.trim();
    if asked.is_empty() {
        let first = state.store.first_recipient().await?;
        return Ok(Ok(first.map_or(Pick::Nobody, Pick::First)));
    }
    let invalid = |message: String| FieldErrors::from([("recipient".to_string(), vec![message])]);
    let email = match EmailAddress::parse(asked) {
        Ok(email) => email,
        Err(error) => return Ok(Err(invalid(format!("Not an email address: {error}.")))),
    };
    Ok(match state.store.recipient_by_email(&email).await? {
        Some(recipient) => Ok(Pick::Chosen(recipient)),
        None => Err(invalid(format!(
            "No stored recipient has the address {email}."
        ))),
    })
}

/// The template as an unsaved campaign's, from `sender`. A template that does not
/// compile (or a sender the renderer refuses) is a problem shown under `template`.
fn renderer(
    state: &AppState,
    template: Template,
    sender: &Sender,
) -> Result<CampaignRenderer, HttpError> {
    let from_email = sender.shown_from_email().to_string();
    let spec = RenderSpec {
        campaign_id: UNSAVED_CAMPAIGN,
        campaign_name: template.name.clone(),
        marketing: sender.kind == CampaignKind::Marketing,
        links: link_settings(state, &from_email),
        template,
        from_name: sender.from_name.clone(),
        from_email,
        reply_to: sender.reply_to.clone(),
        settings: CampaignSettings::default(),
    };
    CampaignRenderer::new(spec).map_err(|error| HttpError::field("template", error.to_string()))
}

/// As `CampaignRuntime` sets them: Message-ID, List-Id and the unsubscribe mailbox use
/// the sender's domain.
fn link_settings(state: &AppState, from_email: &str) -> LinkSettings {
    let mut links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    if let Ok(address) = EmailAddress::parse(from_email) {
        links.list_id_domain = address.domain().to_lowercase();
    }
    links
}

/// The recipient's context as a campaign's worker gathers it (`CampaignRuntime::contexts`),
/// without declared segments or an automation's trigger: recommendations and the cart
/// only for a template that shows them, from a model built now.
async fn context_for(
    state: &AppState,
    template: &Template,
    recipient: Recipient,
) -> Result<RecipientContext, HttpError> {
    let now = crate::time::now();
    let (recommendations, cart) = if shows_picks(template) {
        let model = Recommender::build(&state.store, now)
            .await
            .map_err(|error| {
                HttpError::field("template", format!("cannot build recommendations: {error}"))
            })?;
        let history = state
            .store
            .histories(&[recipient.id])
            .await?
            .remove(&recipient.id)
            .unwrap_or_else(|| RecipientHistory::new(Vec::new()));
        (
            model.for_recipient_at(&history, now, model.options().count),
            model.cart_at(&history, now),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(RecipientContext {
        recipient,
        segments: Vec::new(),
        recommendations,
        cart,
        trigger: None,
    })
}

/// Whether the template shows recommendations or the cart: the worker builds the
/// recommendation model only then (`CampaignRuntime::load`), and so does a preview.
fn shows_picks(template: &Template) -> bool {
    template.html.contains("recommendations") || template.html.contains("cart")
}

/// What the page and the frame both settle from the request: the template, the sender
/// and the recipient.
struct Setup {
    summary: TemplateSummary,
    template: Template,
    sender: Option<Sender>,
    pick: Option<Pick>,
    errors: FieldErrors,
}

async fn setup(state: &AppState, name: &str, query: &PreviewQuery) -> Result<Setup, AppError> {
    let summary = state
        .store
        .template_summary(name)
        .await?
        .ok_or_else(|| HttpError::NotFound(format!("no template named '{name}'")))?;
    let template = state.store.template(summary.id).await?;
    let mut errors = FieldErrors::new();
    let earlier = state.store.template_sender(name).await?;
    let sender = settle_sender(query, earlier, &template)
        .map_err(|problems| errors.extend(problems))
        .ok();
    let pick = pick_recipient(state, &query.recipient)
        .await?
        .map_err(|problems| errors.extend(problems))
        .ok();
    Ok(Setup {
        summary,
        template,
        sender,
        pick,
        errors,
    })
}

/// A problem with the template or its sender, or a failure of the server.
fn problem_or_fault(error: HttpError, errors: &mut FieldErrors) -> Result<(), AppError> {
    match error {
        HttpError::Invalid { fields, .. } => {
            errors.extend(fields);
            Ok(())
        }
        other => Err(other.into()),
    }
}

#[derive(Debug, Serialize)]
struct HeaderView {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct MessageView {
    subject: String,
    headers: Vec<HeaderView>,
    text: String,
    frame_src: String,
}

#[derive(Debug, Serialize)]
struct PickView {
    rank: usize,
    sku: String,
    name: String,
    category: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct CartView {
    sku: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct TestView {
    id: i64,
    to: String,
    state: &'static str,
}

/// The values the preview form shows and both forms carry on.
#[derive(Debug, Default, Serialize)]
struct FormView {
    recipient: String,
    from_email: String,
    from_name: String,
    kind: String,
}

#[derive(Debug, Serialize)]
struct PreviewPage {
    name: String,
    path: String,
    version: i64,
    updated_at: String,
    form: FormView,
    /// The email of the recipient shown when none was asked for.
    first_recipient: Option<String>,
    no_recipients: bool,
    sender_note: Option<&'static str>,
    reply_to: Option<String>,
    message: Option<MessageView>,
    shows_picks: bool,
    recommendations: Vec<PickView>,
    cart: Vec<CartView>,
    errors: FieldErrors,
    queued_test: Option<TestView>,
    test_to: String,
    /// The test form's idempotency key: submitting it twice sends one test.
    test_key: String,
}

async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, AppError> {
    let test_to = String::new();
    preview_page(
        &state,
        &signed_in,
        &name,
        &query,
        FieldErrors::new(),
        test_to,
    )
    .await
}

async fn preview_page(
    state: &AppState,
    signed_in: &SignedIn,
    name: &str,
    query: &PreviewQuery,
    extra_errors: FieldErrors,
    test_to: String,
) -> Result<Response, AppError> {
    let Setup {
        summary,
        template,
        sender,
        pick,
        mut errors,
    } = setup(state, name, query).await?;
    errors.extend(extra_errors);
    let shows_picks = shows_picks(&template);
    let (recipient, first_recipient, no_recipients) = match pick {
        Some(Pick::Chosen(recipient)) => (Some(recipient), None, false),
        Some(Pick::First(recipient)) => {
            let email = recipient.email.clone();
            (Some(recipient), Some(email), false)
        }
        Some(Pick::Nobody) => (None, None, true),
        None => (None, None, false),
    };
    let form = FormView {
        recipient: query.recipient.trim().to_string(),
        from_email: sender
            .as_ref()
            .map(|s| s.from_email.clone())
            .unwrap_or_default(),
        from_name: sender
            .as_ref()
            .map(|s| s.from_name.clone())
            .unwrap_or_default(),
        kind: sender
            .as_ref()
            .map(|s| s.kind.as_str().to_string())
            .unwrap_or_else(|| query.kind.clone()),
    };
    let mut data = PreviewPage {
        path: path_segment(&summary.name),
        name: summary.name.clone(),
        version: summary.version,
        updated_at: format_timestamp(summary.updated_at),
        first_recipient,
        no_recipients,
        sender_note: sender.as_ref().map(Sender::note),
        reply_to: sender.as_ref().and_then(|s| s.reply_to.clone()),
        message: None,
        shows_picks,
        recommendations: Vec::new(),
        cart: Vec::new(),
        errors: FieldErrors::new(),
        queued_test: test_view(state, query).await?,
        test_to,
        test_key: hex::encode(rand::random::<[u8; 16]>()),
        form,
    };
    if let (Some(sender), Some(recipient)) = (&sender, recipient) {
        let email = recipient.email.clone();
        match rendered(state, template, sender, recipient).await {
            Ok((message, context)) => {
                let frame_query = frame_query(&data.form, &email);
                data.message = Some(MessageView {
                    subject: message.subject.clone(),
                    headers: shown_headers(&message),
                    text: message.text,
                    frame_src: format!("/app/templates/{}/preview.html?{frame_query}", data.path),
                });
                data.recommendations = pick_views(&context);
                data.cart = context
                    .cart
                    .iter()
                    .map(|p| CartView {
                        sku: p.sku.clone(),
                        name: p.name.clone(),
                    })
                    .collect();
            }
            Err(error) => problem_or_fault(error, &mut errors)?,
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    data.errors = errors;
    let body = state
        .views
        .render("template.html", Some(signed_in), "templates", &data)?;
    Ok((status, page(body)).into_response())
}

async fn rendered(
    state: &AppState,
    template: Template,
    sender: &Sender,
    recipient: Recipient,
) -> Result<(RenderedMessage, RecipientContext), HttpError> {
    let context = context_for(state, &template, recipient).await?;
    let renderer = renderer(state, template, sender)?;
    let message = renderer
        .render(&context)
        .map_err(|error| HttpError::field("template", error.to_string()))?;
    Ok((message, context))
}

fn pick_views(context: &RecipientContext) -> Vec<PickView> {
    context
        .recommendations
        .iter()
        .enumerate()
        .map(|(index, pick)| PickView {
            rank: index + 1,
            sku: pick.product.sku.clone(),
            name: pick.product.name.clone(),
            category: pick.product.category.clone(),
            reason: pick.reason.clone(),
        })
        .collect()
}

/// The frame renders what the page does: the same recipient, sender and kind.
fn frame_query(form: &FormView, recipient: &str) -> String {
    query_string(&[
        ("recipient", recipient),
        ("from_email", form.from_email.as_str()),
        ("from_name", form.from_name.as_str()),
        ("kind", form.kind.as_str()),
    ])
}

/// How a test queued earlier is doing, when the page was sent back to after one.
async fn test_view(state: &AppState, query: &PreviewQuery) -> Result<Option<TestView>, AppError> {
    let Ok(id) = query.test.trim().parse::<i64>() else {
        return Ok(None);
    };
    match state.store.campaign(id).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other.into()),
    }
    let counts = state.store.ledger_counts(id).await?;
    Ok(Some(TestView {
        id,
        to: query.to.trim().to_string(),
        state: test_state(&counts),
    }))
}

/// A test send's one delivery, in words.
fn test_state(counts: &LedgerCounts) -> &'static str {
    if counts.sent > 0 {
        "sent"
    } else if counts.bounced > 0 {
        "sent, then bounced"
    } else if counts.failed > 0 {
        "failed: the relay refused it (its campaign page has the reason)"
    } else if counts.suppressed > 0 {
        "not sent: the address is suppressed or, for a marketing message, has not consented"
    } else if counts.unknown > 0 {
        "in doubt: the worker stopped while sending it"
    } else if counts.pending + counts.sending + counts.deferred > 0 {
        "queued: a worker sends it (mailcast run, or mailcast worker next to mailcast serve); \
         until one runs it waits in the queue"
    } else {
        "not queued"
    }
}

async fn preview_html(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, AppError> {
    let Setup {
        template,
        sender,
        pick,
        errors,
        ..
    } = setup(&state, &name, &query).await?;
    let (Some(sender), Some(Pick::Chosen(recipient) | Pick::First(recipient))) = (sender, pick)
    else {
        let problems = errors.values().flatten().cloned().collect::<Vec<_>>();
        let text = if problems.is_empty() {
            "There is no recipient to preview.".to_string()
        } else {
            problems.join(" ")
        };
        return Ok(framed(StatusCode::UNPROCESSABLE_ENTITY, notice_html(&text)));
    };
    let result = async {
        let context = context_for(&state, &template, recipient).await?;
        let renderer = renderer(&state, template, &sender)?;
        renderer
            .render_web(&context)
            .map_err(|error| HttpError::field("template", error.to_string()))
    };
    match result.await {
        Ok(web) => Ok(framed(StatusCode::OK, without_honeypot(&web.html))),
        Err(HttpError::Invalid { fields, .. }) => {
            let text = fields.into_values().flatten().collect::<Vec<_>>().join(" ");
            Ok(framed(StatusCode::UNPROCESSABLE_ENTITY, notice_html(&text)))
        }
        Err(other) => Err(other.into()),
    }
}

/// The message's HTML with headers of its own: sandboxed, framed only by the dashboard.
fn framed(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_CSP),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

fn notice_html(text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No preview</title>\
         </head><body><p>{}</p></body></html>",
        html_escape::encode_text(text)
    )
}

/// `html` without the renderer's hidden honeypot link: nobody should follow it from
/// a preview, not even by accident.
fn without_honeypot(html: &str) -> String {
    let Some(start) = html.rfind(HONEYPOT_START) else {
        return html.to_string();
    };
    match html[start..].find(HONEYPOT_END) {
        Some(length) => [&html[..start], &html[start + length + HONEYPOT_END.len()..]].concat(),
        None => html.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TestForm {
    /// A stored recipient's address: the test goes there, filled with their data.
    #[serde(default)]
    to: String,
    /// The recipient the page previews (to return to it).
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    from_email: String,
    #[serde(default)]
    from_name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    key: String,
}

impl TestForm {
    fn preview_query(&self) -> PreviewQuery {
        PreviewQuery {
            recipient: self.recipient.clone(),
            from_email: self.from_email.clone(),
            from_name: self.from_name.clone(),
            kind: self.kind.clone(),
            ..PreviewQuery::default()
        }
    }
}

async fn test_send(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
    Form(form): Form<TestForm>,
) -> Result<Response, AppError> {
    let query = form.preview_query();
    let again = |errors: FieldErrors| form_again(&state, &signed_in, &name, &form, errors);
    let Setup {
        sender, mut errors, ..
    } = setup(&state, &name, &query).await?;
    errors.remove("recipient");
    let key = form.key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(HttpError::BadRequest(
            "the test form has no valid key; reload the page".into(),
        )
        .into());
    }
    let Some(sender) = sender else {
        return again(FieldErrors::new()).await;
    };
    if form.to.trim().is_empty() {
        add_error(
            &mut errors,
            "to",
            "Enter the address of a stored recipient to send the test to.",
        );
    }
    if sender.source == SenderSource::Placeholder {
        add_error(
            &mut errors,
            "from_email",
            "Enter the From address under Sender first.",
        );
    }
    if !errors.is_empty() {
        return again(errors).await;
    }
    let send = TriggeredSend {
        template: name.clone(),
        email: form.to.trim().to_string(),
        from_email: sender.from_email.clone(),
        from_name: sender.from_name.clone(),
        reply_to: sender.reply_to.clone(),
        kind: sender.kind,
        topic: None,
        utm: Default::default(),
        data: Default::default(),
    };
    let hash = test_hash(&send);
    let links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    let checked = match check_send(&state.store, &links, send).await {
        Ok(checked) => checked,
        Err(TriggeredError::Invalid(problems)) => return again(form_problems(problems)).await,
        Err(other) => return Err(triggered_fault(other)),
    };
    let keyed = KeyedSend {
        scope: state.store.internal_scope(TEST_SCOPE).await?,
        key,
        request_hash: &hash,
    };
    let answer = match send_once(&state.store, &state.queue, &keyed, checked).await {
        Ok(KeyedOutcome::Queued { answer } | KeyedOutcome::Replayed { answer, .. }) => answer,
        Ok(KeyedOutcome::KeyReused) => {
            let message = "This form was already used for another test; send again from this page.";
            return again(FieldErrors::from([(
                "to".to_string(),
                vec![message.to_string()],
            )]))
            .await;
        }
        Ok(KeyedOutcome::InProgress) => {
            let message = "This test is still being queued; reload the page in a moment.";
            return Err(HttpError::Conflict(message.into()).into());
        }
        Err(TriggeredError::Invalid(problems)) => return again(form_problems(problems)).await,
        Err(other) => return Err(triggered_fault(other)),
    };
    let send_id = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|value| value["send_id"].as_i64())
        .ok_or_else(|| HttpError::Internal(format!("test send answered {answer}")))?;
    let back = query_string(&[
        ("recipient", form.recipient.trim()),
        ("from_email", form.from_email.as_str()),
        ("from_name", form.from_name.as_str()),
        ("kind", form.kind.as_str()),
        ("test", send_id.to_string().as_str()),
        ("to", form.to.trim()),
    ]);
    let path = path_segment(&name);
    Ok(Redirect::to(&format!("/app/templates/{path}?{back}#test")).into_response())
}

/// The preview page again, with the test form's problems next to its fields.
async fn form_again(
    state: &AppState,
    signed_in: &SignedIn,
    name: &str,
    form: &TestForm,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let query = form.preview_query();
    preview_page(
        state,
        signed_in,
        name,
        &query,
        errors,
        form.to.trim().to_string(),
    )
    .await
}

/// The triggered send's problems under the test form's field names.
fn form_problems(problems: crate::dispatch::FieldProblems) -> FieldErrors {
    problems
        .into_iter()
        .map(|(field, messages)| match field.as_str() {
            "email" => ("to".to_string(), messages),
            _ => (field, messages),
        })
        .collect()
}

fn triggered_fault(error: TriggeredError) -> AppError {
    match error {
        TriggeredError::Invalid(problems) => HttpError::invalid(problems).into(),
        TriggeredError::Store(error) => error.into(),
        TriggeredError::Queue(message) => HttpError::Unavailable(message).into(),
    }
}

/// What makes two submissions of one form the same test.
fn test_hash(send: &TriggeredSend) -> String {
    let to = EmailAddress::parse(&send.email)
        .map(|address| address.key())
        .unwrap_or_else(|_| send.email.trim().to_lowercase());
    let canonical = serde_json::json!({
        "template": send.template, "to": to, "from_email": send.from_email,
        "from_name": send.from_name, "kind": send.kind.as_str(),
    });
    hex::encode(Sha256::digest(canonical.to_string()))
}

/// The header fields of a raw RFC 5322 message, unfolded, in their order.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// From, To and Subject as the reader sees them (decoded), then every other header
/// the message carries apart from its MIME structure.
fn shown_headers(message: &RenderedMessage) -> Vec<HeaderView> {
    let decoded = [
        ("From", &message.from),
        ("To", &message.to),
        ("Subject", &message.subject),
    ];
    let first = decoded.into_iter().map(|(name, value)| HeaderView {
        name: name.to_string(),
        value: value.clone(),
    });
    let rest = header_fields(&message.raw)
        .into_iter()
        .filter(|(name, _)| !UNSHOWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| HeaderView { name, value });
    first.chain(rest).collect()
}

/// `text` as one path segment: unreserved characters as they are, the rest
/// percent-encoded.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `key=value&…` for the pairs whose value is not empty.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, value)| !value.trim().is_empty()) {
        query.append_pair(key, value);
    }
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(html: &str, text: Option<&str>) -> Template {
        Template {
            id: 1,
            name: "welcome".into(),
            subject: "Hi".into(),
            preheader: None,
            html: html.into(),
            text: text.map(str::to_string),
        }
    }

    fn earlier(kind: CampaignKind) -> TemplateSender {
        TemplateSender {
            from_name: "Shop".into(),
            from_email: "news@shop.example".into(),
            reply_to: Some("care@shop.example".into()),
            kind,
        }
    }

    #[test]
    fn the_form_wins_then_the_newest_campaign_then_a_placeholder() {
        let plain = template("<p>hi</p>", None);
        let query = PreviewQuery {
            from_email: " me@shop.example ".into(),
            from_name: "Me".into(),
            kind: "transactional".into(),
            ..PreviewQuery::default()
        };
        let chosen = settle_sender(&query, Some(earlier(CampaignKind::Marketing)), &plain).unwrap();
        assert_eq!(chosen.source, SenderSource::Form);
        assert_eq!(chosen.from_email, "me@shop.example");
        assert_eq!(chosen.kind, CampaignKind::Transactional);
        assert_eq!(chosen.reply_to.as_deref(), Some("care@shop.example"));

        let empty = PreviewQuery::default();
        let campaign =
            settle_sender(&empty, Some(earlier(CampaignKind::Marketing)), &plain).unwrap();
        assert_eq!(campaign.source, SenderSource::Campaign);
        assert_eq!(campaign.from_name, "Shop");
        assert_eq!(campaign.kind, CampaignKind::Marketing);

        let repeated = PreviewQuery {
            from_email: "news@shop.example".into(),
            from_name: "Shop".into(),
            ..PreviewQuery::default()
        };
        let again = settle_sender(&repeated, Some(earlier(CampaignKind::Marketing)), &plain);
        assert_eq!(again.unwrap().source, SenderSource::Campaign);

        let none = settle_sender(&empty, None, &plain).unwrap();
        assert_eq!(none.source, SenderSource::Placeholder);
        assert_eq!(none.shown_from_email(), PLACEHOLDER_FROM);
        assert_eq!(none.from_email, "");
    }

    #[test]
    fn an_unknown_kind_is_a_field_error() {
        let query = PreviewQuery {
            kind: "newsletter".into(),
            ..PreviewQuery::default()
        };
        let errors = settle_sender(&query, None, &template("<p>hi</p>", None)).unwrap_err();
        assert!(errors.contains_key("kind"));
    }

    #[test]
    fn a_template_with_an_unsubscribe_link_is_taken_for_marketing() {
        let linked = template(r#"<a href="{{ unsubscribe_url }}">stop</a>"#, None);
        assert_eq!(guessed_kind(&linked), CampaignKind::Marketing);
        let in_text = template("<p>hi</p>", Some("Stop: {{ unsubscribe_url }}"));
        assert_eq!(guessed_kind(&in_text), CampaignKind::Marketing);
        assert_eq!(
            guessed_kind(&template("<p>receipt</p>", None)),
            CampaignKind::Transactional
        );
    }

    #[test]
    fn headers_are_unfolded_and_the_body_ignored() {
        let raw = b"From: a@x.example\r\nSubject: =?utf-8?b?SGk=?=\r\n =?utf-8?b?IQ==?=\r\n\
                    List-Unsubscribe: <https://t.example/u/tok>,\r\n <mailto:u@x.example>\r\n\
                    \r\nBody: not a header\r\n";
        let fields = header_fields(raw);
        assert_eq!(
            fields,
            [
                ("From".to_string(), "a@x.example".to_string()),
                (
                    "Subject".to_string(),
                    "=?utf-8?b?SGk=?= =?utf-8?b?IQ==?=".to_string()
                ),
                (
                    "List-Unsubscribe".to_string(),
                    "<https://t.example/u/tok>, <mailto:u@x.example>".to_string()
                ),
            ]
        );
    }

    #[test]
    fn shown_headers_decode_the_address_lines_and_hide_the_mime_structure() {
        let message = RenderedMessage {
            message_id: "<1.2.mailcast@x.example>".into(),
            from: "Shop <news@x.example>".into(),
            to: "ana@x.example".into(),
            subject: "Hallo Ana ☕".into(),
            html: String::new(),
            text: String::new(),
            links: Vec::new(),
            raw: b"From: =?utf-8?b?U2hvcA==?= <news@x.example>\r\nTo: ana@x.example\r\n\
                   Subject: =?utf-8?b?SGFsbG8=?=\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
                   Message-ID: <1.2.mailcast@x.example>\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n"
                .to_vec(),
        };
        let shown: Vec<(String, String)> = shown_headers(&message)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let names: Vec<&str> = shown.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["From", "To", "Subject", "Message-ID"]);
        assert_eq!(shown[2].1, "Hallo Ana ☕");
    }

    #[test]
    fn the_honeypot_link_is_cut_out() {
        let html = "<body><p>hi</p><!--honeypot--><a href=\"https://t/c/x\"></a><!--/honeypot--><img></body>";
        assert_eq!(without_honeypot(html), "<body><p>hi</p><img></body>");
        assert_eq!(without_honeypot("<p>none</p>"), "<p>none</p>");
        assert_eq!(
            without_honeypot("<!--honeypot--> unclosed"),
            "<!--honeypot--> unclosed"
        );
    }

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(path_segment("spring-sale_2.v1"), "spring-sale_2.v1");
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(path_segment("größe"), "gr%C3%B6%C3%9Fe");
    }

    #[test]
    fn query_strings_leave_out_empty_values() {
        let query = query_string(&[
            ("recipient", "a+b@x.example"),
            ("from_email", ""),
            ("kind", "marketing"),
        ]);
        assert_eq!(query, "recipient=a%2Bb%40x.example&kind=marketing");
    }

    #[test]
    fn a_test_is_described_by_its_delivery() {
        let queued = LedgerCounts {
            pending: 1,
            ..LedgerCounts::default()
        };
        assert!(test_state(&queued).starts_with("queued"));
        let sent = LedgerCounts {
            sent: 1,
            ..LedgerCounts::default()
        };
        assert_eq!(test_state(&sent), "sent");
        let suppressed = LedgerCounts {
            suppressed: 1,
            ..LedgerCounts::default()
        };
        assert!(test_state(&suppressed).starts_with("not sent"));
        assert_eq!(test_state(&LedgerCounts::default()), "not queued");
    }

    #[test]
    fn the_same_test_twice_hashes_the_same_whatever_the_spelling_of_the_address() {
        let send = |to: &str| TriggeredSend {
            template: "welcome".into(),
            email: to.into(),
            from_email: "news@x.example".into(),
            from_name: String::new(),
            reply_to: None,
            kind: CampaignKind::Marketing,
            topic: None,
            utm: Default::default(),
            data: Default::default(),
        };
        assert_eq!(
            test_hash(&send("Ana@X.example")),
            test_hash(&send("ana@x.example"))
        );
        assert_ne!(
            test_hash(&send("ana@x.example")),
            test_hash(&send("bo@x.example"))
        );
    }
}
