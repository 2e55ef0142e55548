//! `/u/{token}`: GET (and HEAD) show the preferences page and change nothing. POST
//! changes: `List-Unsubscribe=One-Click` (RFC 8058, as mail providers send it, and as
//! the page's main button sends it) unsubscribes from everything at once; the page's
//! topic form (`action=topics&topic=a&topic=b`) stops single topics. Answers are 200
//! pages, never redirects; repeating a POST is harmless.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::HttpError;
use super::pages::{PreferencesPage, html, mask_email};
use super::state::{AppState, Client};
use crate::links::{Token, TokenKind};
use crate::store::{Recipient, StoreError, TrackingKind};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/u/{token}", get(show).post(change))
}

/// What a POST asks for.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// Unsubscribe from everything (RFC 8058 one-click, or the page's main button).
    Everything,
    /// Stop these topics only.
    Topics(Vec<String>),
    /// Neither: nothing changes.
    Unclear,
}

impl Change {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Change {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("multipart/form-data") {
            // Some providers send the one-click body as multipart.
            let text = String::from_utf8_lossy(body);
            return if text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click") {
                Change::Everything
            } else {
                Change::Unclear
            };
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let has = |k: &str, v: &str| pairs.iter().any(|(key, value)| key == k && value == v);
        if has("List-Unsubscribe", "One-Click") {
            return Change::Everything;
        }
        if has("action", "topics") {
            let topics = pairs
                .into_iter()
                .filter(|(k, _)| k == "topic")
                .map(|(_, v)| v)
                .collect();
            return Change::Topics(topics);
        }
        Change::Unclear
    }
}

/// The recipient and campaign a valid token names.
struct Subject {
    token: Token,
    recipient: Recipient,
    sender: Option<String>,
}

async fn load(state: &AppState, token: &str) -> Result<Subject, HttpError> {
    let token = state.verify(token, TokenKind::Unsubscribe)?;
    let recipient = state
        .store
        .recipient(token.recipient_id)
        .await?
        .ok_or(HttpError::BadLink)?;
    let sender = match state.store.campaign(token.campaign_id).await {
        Ok(c) if c.from_name.trim().is_empty() => Some(c.from_email),
        Ok(c) => Some(c.from_name),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    Ok(Subject {
        token,
        recipient,
        sender,
    })
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let subject = load(&state, &token).await?;
        preferences(&state, &subject, None, StatusCode::OK).await
    };
    result
        .await
        .unwrap_or_else(|error| error_page(&state, error))
}

async fn change(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let subject = load(&state, &token).await?;
        match Change::parse(&headers, &body) {
            Change::Everything => everything(&state, &subject, &client).await,
            Change::Topics(topics) => some_topics(&state, &subject, &client, topics).await,
            Change::Unclear => {
                let message = "The form did not say what to change, so nothing changed.";
                preferences(&state, &subject, Some(message), StatusCode::BAD_REQUEST).await
            }
        }
    };
    result
        .await
        .unwrap_or_else(|error| error_page(&state, error))
}

async fn everything(
    state: &AppState,
    subject: &Subject,
    client: &Client,
) -> Result<Response, HttpError> {
    let id = subject.recipient.id;
    state
        .store
        .unsubscribe(id, None, "unsubscribe link")
        .await?;
    state
        .record(TrackingKind::Unsubscribe, &subject.token, None, client)
        .await?;
    tracing::info!(
        recipient_id = id,
        campaign_id = subject.token.campaign_id,
        "unsubscribed from everything"
    );
    let page = state.pages.done(
        "You are unsubscribed",
        &format!(
            "{} will get no more email from us.",
            mask_email(&subject.recipient.email)
        ),
        &[],
    )?;
    Ok(html(StatusCode::OK, page))
}

async fn some_topics(
    state: &AppState,
    subject: &Subject,
    client: &Client,
    chosen: Vec<String>,
) -> Result<Response, HttpError> {
    let id = subject.recipient.id;
    let held = state.store.topic_choices(id).await?;
    let stopped: Vec<String> = held
        .into_iter()
        .filter(|t| t.subscribed && chosen.contains(&t.name))
        .map(|t| t.name)
        .collect();
    if stopped.is_empty() {
        let message = "No topic was selected, so nothing changed.";
        return preferences(state, subject, Some(message), StatusCode::OK).await;
    }
    for topic in &stopped {
        state
            .store
            .unsubscribe(id, Some(topic), "preferences page")
            .await?;
    }
    state
        .record(TrackingKind::Unsubscribe, &subject.token, None, client)
        .await?;
    tracing::info!(recipient_id = id, topics = ?stopped, "unsubscribed from topics");
    let page = state.pages.done(
        "Your preferences are saved",
        "You will get no more email about:",
        &stopped,
    )?;
    Ok(html(StatusCode::OK, page))
}

async fn preferences(
    state: &AppState,
    subject: &Subject,
    message: Option<&str>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let topics = state.store.topic_choices(subject.recipient.id).await?;
    let page = state.pages.preferences(&PreferencesPage {
        email: mask_email(&subject.recipient.email),
        sender: subject.sender.as_deref(),
        unsubscribed: subject.recipient.status != "active",
        topics: &topics,
        message,
    })?;
    Ok(html(status, page))
}

fn error_page(state: &AppState, error: HttpError) -> Response {
    if !matches!(error, HttpError::BadLink) {
        return error.into_response();
    }
    let heading = "This link is not valid";
    let message = "The link may be incomplete. Please use the unsubscribe link in the most recent email you received from us.";
    match state.pages.invalid(heading, message) {
        Ok(page) => html(StatusCode::NOT_FOUND, page),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Change {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        Change::parse(&headers, body.as_bytes())
    }

    #[test]
    fn reads_one_click_topic_and_unclear_posts() {
        assert_eq!(form("List-Unsubscribe=One-Click"), Change::Everything);
        assert_eq!(
            form("action=topics&topic=news&topic=sale+alerts"),
            Change::Topics(vec!["news".into(), "sale alerts".into()])
        );
        assert_eq!(form(""), Change::Unclear);
        assert_eq!(form("List-Unsubscribe=Maybe"), Change::Unclear);
        let mut multipart = HeaderMap::new();
        multipart.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=x".parse().unwrap(),
        );
        let body = "--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n";
        assert_eq!(
            Change::parse(&multipart, body.as_bytes()),
            Change::Everything
        );
    }
}
