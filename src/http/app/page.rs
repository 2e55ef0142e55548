//! Rendering dashboard pages: the Tera templates in `templates/app` (compiled into the
//! binary), what every page gets (who is signed in, the CSRF token, the section), the
//! security headers, errors as pages, and the small helpers the sections share (links,
//! paging, names and amounts as text).

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tera::{Context, Tera};

use super::session::SignedIn;
use crate::http::error::{FieldErrors, HttpError};
use crate::store::StoreError;

/// `(name, text)` of templates in `templates/app`, compiled in.
macro_rules! app_templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/app/", $name)))),*]
    };
}
pub(crate) use app_templates;

/// The layout and the sign-in page; each section's module lists its own pages.
const SHARED: &[(&str, &str)] = app_templates!["base.html", "login.html"];

pub(crate) const APP_CSS: &str = include_str!("../../../templates/app/static/app.css");
pub(crate) const APP_JS: &str = include_str!("../../../templates/app/static/app.js");
pub(crate) const SEGMENTS_JS: &str = include_str!("../../../templates/app/static/segments.js");

pub(crate) struct Views {
    tera: Tera,
}

impl Views {
    pub fn new() -> Result<Views, HttpError> {
        let mut tera = Tera::new();
        tera.autoescape_on([".html"]);
        let sections = super::SECTION_TEMPLATES.iter().flat_map(|list| list.iter());
        tera.add_raw_templates(SHARED.iter().chain(sections).copied())
            .map_err(|e| HttpError::Internal(format!("dashboard templates: {e}")))?;
        Ok(Views { tera })
    }

    /// `name` with `data`, plus `user`, `csrf` and `section` for the layout.
    pub fn render(
        &self,
        name: &str,
        signed_in: Option<&SignedIn>,
        section: &str,
        data: &impl Serialize,
    ) -> Result<String, HttpError> {
        let mut context = Context::from_serialize(data)
            .map_err(|e| HttpError::Internal(format!("page {name}: {e}")))?;
        if let Some(signed_in) = signed_in {
            context.insert("user", &signed_in.email);
            context.insert("role", signed_in.role.as_str());
            context.insert("can_change", &signed_in.role.can_change());
            context.insert(
                "is_admin",
                &(signed_in.role == crate::accounts::Role::Admin),
            );
            context.insert("csrf", &signed_in.csrf);
        }
        context.insert("section", section);
        self.tera
            .render(name, &context)
            .map_err(|e| HttpError::Internal(format!("page {name}: {e:?}")))
    }

    /// `name` rendered as a page of `section` for `signed_in`, answered with `status`
    /// (a form shown again with its problems is 422, a conflict 409).
    pub fn respond(
        &self,
        status: StatusCode,
        name: &str,
        signed_in: &SignedIn,
        section: &str,
        data: &impl Serialize,
    ) -> Result<Response, AppError> {
        let body = self.render(name, Some(signed_in), section, data)?;
        Ok((status, Html(body)).into_response())
    }
}

/// A rendered page, 200.
pub(crate) fn page(body: String) -> Response {
    Html(body).into_response()
}

/// Content-Security-Policy of dashboard pages: scripts and styles only from
/// `/app/static`, no inline script, never framed by another site.
pub(crate) const APP_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Adds the dashboard's security headers to a response that has not set its own.
pub(crate) async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, APP_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// A failure shown as a page with its status; server faults say only that they happened.
#[derive(Debug)]
pub(crate) struct AppError(pub HttpError);

impl From<HttpError> for AppError {
    fn from(error: HttpError) -> AppError {
        AppError(error)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        AppError(error.into())
    }
}

impl From<crate::dispatch::DispatchError> for AppError {
    fn from(error: crate::dispatch::DispatchError) -> AppError {
        AppError(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "dashboard request failed");
        }
        let message = self.0.public_message(status);
        error_page(status, &message)
    }
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · mailcast</title><link rel=\"stylesheet\" href=\"/app/static/app.css\">\
         </head><body><main class=\"narrow\"><h1>{title}</h1><p role=\"alert\">{}</p>\
         <p><a href=\"/app\">Back to the dashboard</a></p></main></body></html>",
        html_escape::encode_text(message)
    );
    (status, Html(body)).into_response()
}

// ---- shared by the sections ----

/// 200 for a page, 422 for a form shown again because of `problems`.
pub(crate) fn form_status(problems: bool) -> StatusCode {
    if problems {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// One message for one field of a form.
pub(crate) fn field_error(field: &str, message: impl Into<String>) -> FieldErrors {
    FieldErrors::from([(field.to_string(), vec![message.into()])])
}

/// 404 for a `what` named `name` (`no segment named 'vip'`).
pub(crate) fn not_found(what: &'static str, name: &str) -> AppError {
    StoreError::not_found(what, name).into()
}

/// The value, or None where the store found nothing (its `NotFound`), for a caller
/// that answers that its own way; other failures stay failures.
pub(crate) fn found<T>(result: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Changes are for editors and admins: a viewer asking to `what` gets 403.
pub(crate) fn require_editor(signed_in: &SignedIn, what: &str) -> Result<(), AppError> {
    if signed_in.role.can_change() {
        return Ok(());
    }
    Err(HttpError::Forbidden(format!("only editors and admins may {what}")).into())
}

/// `text` as one URL path segment: letters, digits, `-._~` and the `@` and `+` of
/// email addresses as they are, every other byte percent-encoded, so that `/`, `?`,
/// `#`, `%` and spaces stay inside the segment. (`form_urlencoded` writes a space as
/// `+`, which a path does not decode back.)
pub(crate) fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// `key=value&…`, form-encoded, of the pairs whose value is not blank.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, value)| !value.trim().is_empty()) {
        query.append_pair(key, value);
    }
    query.finish()
}

/// A list page's query: the key the page starts after.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AfterQuery {
    after: Option<String>,
}

impl AfterQuery {
    /// The key the page starts after; None (also for an empty one) on the first page.
    pub(crate) fn after(&self) -> Option<&str> {
        self.after.as_deref().filter(|after| !after.is_empty())
    }
}

/// The first `size` of `rows` (fetched one longer) and whether more follow.
pub(crate) fn one_page<T>(mut rows: Vec<T>, size: usize) -> (Vec<T>, bool) {
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

/// `after=` the `key` of the last of `rows`, the query of the next page, when `more`
/// follow.
pub(crate) fn after_query<T>(rows: &[T], more: bool, key: impl Fn(&T) -> &str) -> Option<String> {
    let last = rows.last().filter(|_| more)?;
    Some(query_string(&[("after", key(last))]))
}

/// First and last name, each trimmed, those given: `Anna Meyer`, `Meyer`, or empty.
pub(crate) fn full_name(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cents as units with two decimals: `1234` → `12.34`, `-5` → `-0.05`.
pub(crate) fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_addresses_and_encode_the_rest() {
        assert_eq!(path_segment("win-back_2.0~x"), "win-back_2.0~x");
        assert_eq!(
            path_segment("anna+news@example.com"),
            "anna+news@example.com"
        );
        assert_eq!(path_segment("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
        assert_eq!(path_segment("a/b?c#d%e@x.io"), "a%2Fb%3Fc%23d%25e@x.io");
        assert_eq!(path_segment("<b>@x.io"), "%3Cb%3E@x.io");
        assert_eq!(path_segment("größe"), "gr%C3%B6%C3%9Fe");
    }

    #[test]
    fn query_strings_leave_out_blank_values() {
        let query = query_string(&[
            ("recipient", "a+b@x.example"),
            ("from_email", ""),
            ("kind", "marketing"),
            ("to", "  "),
        ]);
        assert_eq!(query, "recipient=a%2Bb%40x.example&kind=marketing");
        assert_eq!(query_string(&[("q", "a&b c")]), "q=a%26b+c");
    }

    #[test]
    fn a_page_is_cut_from_one_row_more() {
        assert_eq!(one_page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(one_page(vec![1, 2], 2), (vec![1, 2], false));
        assert_eq!(one_page(Vec::<i32>::new(), 2), (vec![], false));
        let names = ["ada".to_string(), "bo b".to_string()];
        let next = after_query(&names, true, |name| name.as_str());
        assert_eq!(next.as_deref(), Some("after=bo+b"));
        assert_eq!(after_query(&names, false, |name| name.as_str()), None);
        assert_eq!(after_query(&names[..0], true, |name| name.as_str()), None);
    }

    #[test]
    fn names_and_money_read_well() {
        assert_eq!(full_name(Some(" Anna "), Some("Meyer")), "Anna Meyer");
        assert_eq!(full_name(None, Some("Meyer")), "Meyer");
        assert_eq!(full_name(Some(""), None), "");
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(-50), "-0.50");
        assert_eq!(money(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn only_the_store_s_not_found_becomes_none() {
        assert_eq!(found(Ok::<_, StoreError>(1)).unwrap(), Some(1));
        let missing: Result<i32, _> = Err(StoreError::not_found("topic", "news"));
        assert_eq!(found(missing).unwrap(), None);
        let invalid: Result<i32, _> = Err(StoreError::Invalid("no".into()));
        assert!(found(invalid).is_err());
        assert_eq!(
            not_found("segment", "vip").0.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            not_found("segment", "vip").0.to_string(),
            "no segment named 'vip'"
        );
    }
}
