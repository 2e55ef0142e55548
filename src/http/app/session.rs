//! Who is signed in: the session cookie, its idle and absolute expiry, and the guard
//! every `/app` route except sign-in passes: no session → a redirect to the sign-in
//! page; a POST → its CSRF token checked and the role allowed to change things.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::page::AppError;
use crate::accounts::{Role, token_hash};
use crate::http::error::HttpError;
use crate::http::state::AppState;

pub(crate) const SESSION_COOKIE: &str = "mailcast_session";
/// A session unused this long ends.
pub(crate) const IDLE_SECONDS: i64 = 30 * 60;
/// A session ends this long after sign-in, however busy.
pub(crate) const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// `seen_at` is written at most this often per session.
const TOUCH_EVERY: i64 = 60;
/// The largest form a dashboard POST may send.
const FORM_LIMIT: usize = 256 * 1024;

/// The signed-in user of this request.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub csrf: String,
    pub token_hash: String,
}

impl SignedIn {
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role == Role::Admin {
            return Ok(());
        }
        Err(HttpError::Forbidden("only an admin may do this".into()).into())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure when served over HTTPS.
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> String {
    let secure = if state.settings.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The session behind the request's cookie, when it is live at `now`.
pub(crate) async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, HttpError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_hash(token);
    let Some(session) = state.store.session(&hash).await? else {
        return Ok(None);
    };
    let now = state.settings.clock.now();
    if now - session.seen_at >= IDLE_SECONDS || now - session.created_at >= ABSOLUTE_SECONDS {
        state.store.end_session(&hash).await?;
        return Ok(None);
    }
    if now - session.seen_at >= TOUCH_EVERY {
        state.store.touch_session(&hash, now).await?;
    }
    Ok(Some(SignedIn {
        user_id: session.user_id,
        email: session.email,
        role: Role::from_stored(&session.role),
        csrf: session.csrf,
        token_hash: hash,
    }))
}

/// The guard in front of every signed-in route.
pub(crate) async fn require(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let signed_in = match current(&state, request.headers()).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return to_login(&request),
        Err(error) => return AppError::from(error).into_response(),
    };
    let request = if request.method() == Method::POST {
        match checked_post(&signed_in, request).await {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        }
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(signed_in);
    next.run(request).await
}

fn to_login(request: &Request) -> Response {
    let wanted = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/app");
    let next = url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect::<String>();
    Redirect::to(&format!("/app/login?next={next}")).into_response()
}

/// A POST from a viewer is refused; otherwise its CSRF token (form field `csrf`, or the
/// `X-CSRF-Token` header for the page's scripts) must be the session's. The body is
/// read here and handed on whole.
async fn checked_post(signed_in: &SignedIn, request: Request) -> Result<Request, AppError> {
    let logout = request.uri().path() == "/app/logout";
    if !logout && !signed_in.role.can_change() {
        return Err(HttpError::Forbidden("a viewer cannot change anything".into()).into());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| HttpError::TooLarge { limit: FORM_LIMIT })?;
    let header_token = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let presented = header_token.or_else(|| form_field(&bytes, "csrf"));
    let valid = presented.is_some_and(|token| same(token.as_bytes(), signed_in.csrf.as_bytes()));
    if !valid {
        return Err(HttpError::Forbidden(
            "this form has expired or did not come from this dashboard; reload the page and try again"
                .into(),
        )
        .into());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A field of an `application/x-www-form-urlencoded` body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Equal bytes, compared in time that does not depend on where they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; mailcast_session=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "mailcast"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"expression=country+%3D+%27DE%27&csrf=x%2By";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("x+y"));
        assert_eq!(
            form_field(body, "expression").as_deref(),
            Some("country = 'DE'")
        );
        assert_eq!(form_field(body, "missing"), None);
    }
}
