//! The pages people see: `templates/pages/*.html` (Tera), compiled into the binary so
//! that `mailcast serve` needs no files beside it.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tera::{Context, Tera};

use super::error::HttpError;
use crate::store::TopicChoice;

const TEMPLATES: [(&str, &str); 4] = [
    (
        "layout.html",
        include_str!("../../templates/pages/layout.html"),
    ),
    (
        "preferences.html",
        include_str!("../../templates/pages/preferences.html"),
    ),
    ("done.html", include_str!("../../templates/pages/done.html")),
    (
        "invalid.html",
        include_str!("../../templates/pages/invalid.html"),
    ),
];

pub(crate) struct Pages {
    tera: Tera,
}

/// What the preferences page shows.
#[derive(Debug, Serialize)]
pub(crate) struct PreferencesPage<'a> {
    /// The address, partly hidden: the link may have been forwarded.
    pub email: String,
    pub sender: Option<&'a str>,
    pub unsubscribed: bool,
    pub topics: &'a [TopicChoice],
    pub message: Option<&'a str>,
}

impl Pages {
    pub fn new() -> Result<Pages, HttpError> {
        let mut tera = Tera::new();
        tera.autoescape_on([".html"]);
        tera.add_raw_templates(TEMPLATES)
            .map_err(|e| HttpError::Internal(format!("page templates: {e}")))?;
        Ok(Pages { tera })
    }

    pub fn preferences(&self, page: &PreferencesPage) -> Result<String, HttpError> {
        let context = Context::from_serialize(page)
            .map_err(|e| HttpError::Internal(format!("preferences page: {e}")))?;
        self.render("preferences.html", &context)
    }

    pub fn done(
        &self,
        heading: &str,
        message: &str,
        stopped: &[String],
    ) -> Result<String, HttpError> {
        let mut context = Context::new();
        context.insert("heading", heading);
        context.insert("message", message);
        context.insert("stopped", stopped);
        self.render("done.html", &context)
    }

    pub fn invalid(&self, heading: &str, message: &str) -> Result<String, HttpError> {
        let mut context = Context::new();
        context.insert("heading", heading);
        context.insert("message", message);
        self.render("invalid.html", &context)
    }

    fn render(&self, name: &str, context: &Context) -> Result<String, HttpError> {
        self.tera
            .render(name, context)
            .map_err(|e| HttpError::Internal(format!("page {name}: {e}")))
    }
}

/// A page response: never cached, never leaking its tokened URL as a referrer, no
/// scripts.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    (status, headers, body).into_response()
}

/// `ada.lovelace@example.com` → `a•••@example.com`.
pub(crate) fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_compile_and_escape_what_they_show() {
        let pages = Pages::new().expect("templates compile");
        let topics = [TopicChoice {
            name: "<b>news</b>".into(),
            description: String::new(),
            subscribed: true,
        }];
        let html = pages
            .preferences(&PreferencesPage {
                email: mask_email("ada@example.com"),
                sender: Some("Shop"),
                unsubscribed: false,
                topics: &topics,
                message: None,
            })
            .unwrap();
        assert!(html.contains("a•••@example.com"));
        assert!(
            html.contains("&lt;b&gt;news&lt;&#x2F;b&gt;")
                || html.contains("&lt;b&gt;news&lt;/b&gt;"),
            "{html}"
        );
        assert!(html.contains("List-Unsubscribe"));
    }
}
