//! Signing in and out. Failed sign-ins are throttled per account and per address; a
//! sign-in form carries a token that must match its cookie (no sign-in by another site).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::page::{AppError, page};
use super::session::{
    ABSOLUTE_SECONDS, SESSION_COOKIE, SignedIn, cookie, current, same, set_cookie,
};
use crate::accounts::{decoy_hash, random_token, token_hash, verify_password};
use crate::http::error::HttpError;
use crate::http::state::{AppState, Client};

const LOGIN_COOKIE: &str = "mailcast_login";
/// Failed sign-ins are counted over this window.
pub(crate) const THROTTLE_WINDOW: i64 = 15 * 60;
/// Failures allowed per account, and per client address, within the window.
pub(crate) const ACCOUNT_FAILURES: i64 = 5;
pub(crate) const ADDRESS_FAILURES: i64 = 20;

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

#[derive(Debug, Serialize)]
struct LoginPage<'a> {
    next: &'a str,
    login_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Next>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if current(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    login_page(&state, next, "", None, axum::http::StatusCode::OK)
}

fn login_page(
    state: &AppState,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: axum::http::StatusCode,
) -> Result<Response, AppError> {
    let login_token = random_token();
    let body = state.views.render(
        "login.html",
        None,
        "login",
        &LoginPage {
            next,
            login_token: &login_token,
            email,
            error,
        },
    )?;
    let cookie = set_cookie(state, LOGIN_COOKIE, &login_token, "/app/login", 3600);
    Ok((status, [(header::SET_COOKIE, cookie)], page(body)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    email: String,
    password: String,
    login_token: String,
    #[serde(default)]
    next: String,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let next = safe_next(Some(&form.next)).to_string();
    let presented = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if presented.is_empty() || !same(presented.as_bytes(), form.login_token.as_bytes()) {
        return Err(HttpError::Forbidden(
            "this sign-in form has expired; reload the page and sign in again".into(),
        )
        .into());
    }
    let email = form.email.trim().to_lowercase();
    let keys = throttle_keys(&email, &client);
    if let Some(message) = throttled(&state, &keys).await? {
        return Err(HttpError::TooManyRequests(message).into());
    }
    let Some(user) = check_password(&state, &email, &form.password).await? else {
        let now = state.settings.clock.now();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        state
            .store
            .record_login_failure(&keys, now, now - THROTTLE_WINDOW)
            .await?;
        let status = axum::http::StatusCode::UNAUTHORIZED;
        let error = Some("That email and password do not match an account.");
        return login_page(&state, &next, &email, error, status);
    };
    state.store.clear_login_failures(&keys[0]).await?;
    start_session(&state, user, &next).await
}

/// `account:<email>` first, then `address:<ip>` when the address is known.
fn throttle_keys(email: &str, client: &Client) -> Vec<String> {
    let mut keys = vec![format!("account:{email}")];
    if let Some(ip) = client.facts.ip {
        keys.push(format!("address:{ip}"));
    }
    keys
}

async fn throttled(state: &AppState, keys: &[String]) -> Result<Option<String>, HttpError> {
    let since = state.settings.clock.now() - THROTTLE_WINDOW;
    for key in keys {
        let limit = if key.starts_with("account:") {
            ACCOUNT_FAILURES
        } else {
            ADDRESS_FAILURES
        };
        if state.store.login_failures(key, since).await? >= limit {
            let minutes = THROTTLE_WINDOW / 60;
            return Ok(Some(format!(
                "too many failed sign-ins; try again in {minutes} minutes"
            )));
        }
    }
    Ok(None)
}

/// The user id when the password is right. Unknown accounts cost one hash check too.
async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
) -> Result<Option<i64>, HttpError> {
    let credentials = state.store.user_credentials(email).await?;
    let stored = credentials
        .as_ref()
        .map(|(_, hash)| hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .map_err(|e| HttpError::Internal(format!("password check: {e}")))?;
    Ok(credentials.filter(|_| matches).map(|(user, _)| user.id))
}

async fn start_session(state: &AppState, user_id: i64, next: &str) -> Result<Response, AppError> {
    let token = random_token();
    let now = state.settings.clock.now();
    state
        .store
        .create_session(&token_hash(&token), user_id, &random_token(), now)
        .await?;
    let session = set_cookie(state, SESSION_COOKIE, &token, "/app", ABSOLUTE_SECONDS);
    let spent = set_cookie(state, LOGIN_COOKIE, "", "/app/login", 0);
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    for value in [session, spent] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    axum::Extension(signed_in): axum::Extension<SignedIn>,
) -> Result<Response, AppError> {
    state.store.end_session(&signed_in.token_hash).await?;
    let cleared = set_cookie(&state, SESSION_COOKIE, "", "/app", 0);
    Ok(([(header::SET_COOKIE, cleared)], Redirect::to("/app/login")).into_response())
}

/// Where to go after signing in: a dashboard path only, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with("/app")
                && !path.starts_with("/app/login")
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path
        }
        _ => "/app",
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(safe_next(Some("/app/campaigns/3")), "/app/campaigns/3");
        assert_eq!(safe_next(Some("https://evil.example/app")), "/app");
        assert_eq!(safe_next(Some("/app//evil.example")), "/app");
        assert_eq!(safe_next(Some("/app/login")), "/app");
        assert_eq!(safe_next(None), "/app");
    }
}
