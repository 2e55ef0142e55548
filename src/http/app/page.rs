//! Rendering dashboard pages: the Tera templates in `templates/app` (compiled into the
//! binary), what every page gets (who is signed in, the CSRF token, the section), the
//! security headers, and errors as pages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tera::{Context, Tera};

use super::session::SignedIn;
use crate::http::error::HttpError;

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

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> AppError {
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
