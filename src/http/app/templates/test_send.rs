//! A test send from the preview page: the template to a stored recipient, through the
//! triggered-send path `POST /api/sends` and `mailcast send` take, under an idempotency
//! key the form carries (submitting it twice sends one test); then the page again,
//! with how that test is doing.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::sender::SenderSource;
use super::{PreviewQuery, Setup, preview_page, setup};
use crate::dispatch::{
    FieldProblems, KeyedOutcome, KeyedSend, TriggeredError, TriggeredSend, check_send, send_once,
};
use crate::domain::EmailAddress;
use crate::http::app::page::{AppError, field_error, found, path_segment, query_string};
use crate::http::app::session::SignedIn;
use crate::http::error::{FieldErrors, HttpError, add_error};
use crate::http::state::AppState;
use crate::render::LinkSettings;
use crate::store::LedgerCounts;

/// The idempotency scope of test sends, created on first use (as the CLI's is).
const TEST_SCOPE: &str = "mailcast-dashboard";
/// The longest idempotency key the form may carry.
const KEY_LIMIT: usize = 255;

/// Sends the test the form (the preview's fields, `to` and `key`) describes; on a
/// problem, the preview page again with the messages by the test form's fields.
pub(super) async fn test_send(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
    Path(name): Path<String>,
    Form(form): Form<PreviewQuery>,
) -> Result<Response, AppError> {
    let to = form.to.trim();
    let again = |errors: FieldErrors| {
        preview_page(&state, &signed_in, &name, &form, errors, to.to_string())
    };
    let key = form.key.trim();
    if key.is_empty() || key.len() > KEY_LIMIT {
        let message = "the test form has no valid key; reload the page";
        return Err(HttpError::BadRequest(message.into()).into());
    }
    let Setup {
        sender, mut errors, ..
    } = setup(&state, &name, &form).await?;
    // The previewed recipient is not the one the test goes to.
    errors.remove("recipient");
    let Some(sender) = sender else {
        // The kind is not one: the page says so by its field.
        return again(FieldErrors::new()).await;
    };
    if to.is_empty() {
        let message = "Enter the address of a stored recipient to send the test to.";
        add_error(&mut errors, "to", message);
    }
    if sender.source == SenderSource::Placeholder {
        let message = "Enter the From address under Sender first.";
        add_error(&mut errors, "from_email", message);
    }
    if !errors.is_empty() {
        return again(errors).await;
    }
    let send = TriggeredSend {
        template: name.clone(),
        email: to.to_string(),
        from_email: sender.from_email,
        from_name: sender.from_name,
        reply_to: sender.reply_to,
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
            return again(field_error("to", message)).await;
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
        ("to", to),
    ]);
    let path = path_segment(&name);
    Ok(Redirect::to(&format!("/app/templates/{path}?{back}#test")).into_response())
}

/// The triggered send's problems under the test form's field names.
fn form_problems(problems: FieldProblems) -> FieldErrors {
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

/// A test queued earlier, as the page reports it.
#[derive(Debug, Serialize)]
pub(super) struct TestView {
    id: i64,
    to: String,
    state: &'static str,
}

/// How a test queued earlier is doing, when the page was sent back to after one.
pub(super) async fn test_view(
    state: &AppState,
    query: &PreviewQuery,
) -> Result<Option<TestView>, AppError> {
    let Ok(id) = query.test.trim().parse::<i64>() else {
        return Ok(None);
    };
    if found(state.store.campaign(id).await)?.is_none() {
        return Ok(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CampaignKind;

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

    #[test]
    fn the_triggered_send_s_email_is_the_test_form_s_to() {
        let problems = FieldProblems::from([
            ("email".to_string(), vec!["not an address".to_string()]),
            ("template".to_string(), vec!["no such template".to_string()]),
        ]);
        let errors = form_problems(problems);
        assert_eq!(errors["to"], ["not an address"]);
        assert!(errors.contains_key("template"));
    }
}
