//! Template pages: the library (the newest version of each name, by keyset on the
//! name); a preview of a template for any recipient (the subject, the headers, the HTML
//! at desktop and phone width, the text part, the recommendations and why); and a test
//! send (`test_send`), through the triggered-send path `POST /api/sends` and
//! `mailcast send` take.
//!
//! A preview renders with the `CampaignRenderer` every campaign uses, for an unsaved
//! campaign (id 0, as `dispatch::compiles` checks a triggered send before storing it):
//! no campaign row and no stored links, so a click in the preview finds no target and
//! the tracking side records nothing. The framed HTML comes from `render_web` (no open
//! pixel) without the honeypot link, under a CSP that sandboxes it (`message`). Who the
//! message is from is settled in `sender`.

mod message;
mod sender;
mod test_send;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};

use self::message::{HeaderView, framed, notice_html, shown_headers, without_honeypot};
use self::sender::{Sender, settle_sender};
use self::test_send::{TestView, test_send, test_view};
use super::page::{
    AfterQuery, AppError, after_query, field_error, form_status, not_found, one_page, path_segment,
    query_string,
};
use super::session::SignedIn;
use crate::domain::{CampaignKind, EmailAddress};
use crate::http::error::{FieldErrors, HttpError};
use crate::http::state::AppState;
use crate::render::{CampaignRenderer, LinkSettings, RecipientContext, RenderError, RenderSpec};
use crate::store::{CampaignSettings, Recipient, RecipientHistory, Template, TemplateSummary};
use crate::time::format_timestamp;

pub(crate) const TEMPLATES: &[(&str, &str)] =
    super::page::app_templates!["templates.html", "template.html"];

/// Templates a library page shows.
const PAGE_SIZE: usize = 50;
/// A preview's campaign id: no stored campaign has it (ids start at 1).
const UNSAVED_CAMPAIGN: i64 = 0;
/// The section the pages belong to (the highlighted navigation item).
const SECTION: &str = "templates";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/templates", get(library))
        .route("/app/templates/{name}", get(show))
        .route("/app/templates/{name}/preview.html", get(preview_html))
        .route("/app/templates/{name}/test", post(test_send))
}

// ---- the library ----

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
    Query(query): Query<AfterQuery>,
) -> Result<Response, AppError> {
    let after = query.after();
    let fetched = state
        .store
        .template_page(after, PAGE_SIZE as i64 + 1)
        .await?;
    let (templates, more) = one_page(fetched, PAGE_SIZE);
    let next = after_query(&templates, more, |template| template.name.as_str());
    let rows: Vec<LibraryRow> = templates.into_iter().map(LibraryRow::from).collect();
    let data = serde_json::json!({
        "rows": rows,
        "total": state.store.count_templates().await?,
        "next": next,
        "first": after.is_some(),
    });
    state
        .views
        .respond(StatusCode::OK, "templates.html", &signed_in, SECTION, &data)
}

// ---- what a preview settles: template, sender, recipient ----

/// The preview's choices, as the form (GET) and the frame's URL carry them. The test
/// form posts the same fields, with `to` and `key`.
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
    /// Where that test went; in the test form, where it goes (a stored recipient's
    /// address: the test is filled with their data).
    #[serde(default)]
    to: String,
    /// The test form's idempotency key: submitting it twice sends one test.
    #[serde(default)]
    key: String,
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
    let email = match EmailAddress::parse(asked) {
        Ok(email) => email,
        Err(error) => {
            let message = format!("Not an email address: {error}.");
            return Ok(Err(field_error("recipient", message)));
        }
    };
    Ok(match state.store.recipient_by_email(&email).await? {
        Some(recipient) => Ok(Pick::Chosen(recipient)),
        None => {
            let message = format!("No stored recipient has the address {email}.");
            Err(field_error("recipient", message))
        }
    })
}

/// What the page and the frame both settle from the request: the template, the sender
/// and the recipient, and the problems with the choices.
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
        .ok_or_else(|| not_found("template", name))?;
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

// ---- rendering ----

/// A template that does not compile or render (or a sender the renderer refuses): a
/// problem shown under `template`.
fn template_problem(error: RenderError) -> HttpError {
    HttpError::field("template", error.to_string())
}

/// The renderer of the template as an unsaved campaign's, from `sender`, and the
/// recipient's context.
async fn prepared(
    state: &AppState,
    template: Template,
    sender: &Sender,
    recipient: Recipient,
) -> Result<(CampaignRenderer, RecipientContext), HttpError> {
    let context = context_for(state, &template, recipient).await?;
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
    let renderer = CampaignRenderer::new(spec).map_err(template_problem)?;
    Ok((renderer, context))
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
/// only for a template that shows them, from the server's model (at most 15 minutes old).
async fn context_for(
    state: &AppState,
    template: &Template,
    recipient: Recipient,
) -> Result<RecipientContext, HttpError> {
    let now = crate::time::now();
    let (recommendations, cart) = if shows_picks(template) {
        let model = state.preview_model(now).await.map_err(|error| {
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

// ---- the preview page ----

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
    let no_errors = FieldErrors::new();
    preview_page(&state, &signed_in, &name, &query, no_errors, String::new()).await
}

/// The preview page for `query`, with `extra_errors` (the test form's) by their fields
/// and `test_to` in the test form.
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
    let (recipient, first_recipient, no_recipients) = match pick {
        Some(Pick::Chosen(recipient)) => (Some(recipient), None, false),
        Some(Pick::First(recipient)) => {
            let email = recipient.email.clone();
            (Some(recipient), Some(email), false)
        }
        Some(Pick::Nobody) => (None, None, true),
        None => (None, None, false),
    };
    let recipient_asked = query.recipient.trim().to_string();
    let form = match &sender {
        Some(sender) => FormView {
            recipient: recipient_asked,
            from_email: sender.from_email.clone(),
            from_name: sender.from_name.clone(),
            kind: sender.kind.as_str().to_string(),
        },
        None => FormView {
            recipient: recipient_asked,
            kind: query.kind.clone(),
            ..FormView::default()
        },
    };
    let mut data = PreviewPage {
        path: path_segment(&summary.name),
        name: summary.name,
        version: summary.version,
        updated_at: format_timestamp(summary.updated_at),
        first_recipient,
        no_recipients,
        sender_note: sender.as_ref().map(Sender::note),
        reply_to: sender.as_ref().and_then(|s| s.reply_to.clone()),
        message: None,
        shows_picks: shows_picks(&template),
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
        let ready = prepared(state, template, sender, recipient).await;
        let rendered = ready.and_then(|(renderer, context)| {
            let message = renderer.render(&context).map_err(template_problem)?;
            Ok((message, context))
        });
        match rendered {
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
            Err(HttpError::Invalid { fields, .. }) => errors.extend(fields),
            Err(other) => return Err(other.into()),
        }
    }
    let status = form_status(!errors.is_empty());
    data.errors = errors;
    state
        .views
        .respond(status, "template.html", signed_in, SECTION, &data)
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

/// The message's HTML, for the page's frames.
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
    let web = prepared(&state, template, &sender, recipient)
        .await
        .and_then(|(renderer, context)| renderer.render_web(&context).map_err(template_problem));
    match web {
        Ok(web) => Ok(framed(StatusCode::OK, without_honeypot(&web.html))),
        Err(HttpError::Invalid { fields, .. }) => {
            let text = fields.into_values().flatten().collect::<Vec<_>>().join(" ");
            Ok(framed(StatusCode::UNPROCESSABLE_ENTITY, notice_html(&text)))
        }
        Err(other) => Err(other.into()),
    }
}
