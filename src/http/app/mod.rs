//! The marketer's dashboard under `/app`: server-rendered pages (Tera, `templates/app`)
//! over the same library calls as the CLI and the API. Signed-in users only
//! ([`session`]); every POST carries the session's CSRF token; viewers only look.
//!
//! | route | page |
//! |-------|------|
//! | `/app/login`, `/app/logout` | sign in and out |
//! | `/app/campaigns…` | list, create, schedule/pause/resume/cancel, results |
//! | `/app/segments…` | the editor (live count and errors), list, save |
//! | `/app/templates…` | library, preview per recipient, test send |
//! | `/app/recipients…` | search, profile, export, erase |
//! | `/app/automations…` | list, steps as a funnel, pause/resume |
//! | `/app/settings…` | API keys, relays, link keys |

mod automations;
mod campaigns;
mod chart;
mod login;
pub(crate) mod page;
mod recipients;
mod segments;
pub(crate) mod session;
mod settings;
mod templates;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::state::AppState;

pub(crate) use page::Views;

/// Every section's page templates, compiled into [`Views`].
const SECTION_TEMPLATES: &[&[(&str, &str)]] = &[
    campaigns::TEMPLATES,
    segments::TEMPLATES,
    recipients::TEMPLATES,
    templates::TEMPLATES,
    automations::TEMPLATES,
    settings::TEMPLATES,
];

pub(crate) fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/app", get(|| async { Redirect::to("/app/campaigns") }))
        .route("/app/logout", post(login::logout))
        .merge(campaigns::routes())
        .merge(segments::routes())
        .merge(recipients::routes())
        .merge(templates::routes())
        .merge(automations::routes())
        .merge(settings::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            session::require,
        ));
    Router::new()
        .route("/app/login", get(login::form).post(login::submit))
        .route("/app/static/{file}", get(static_file))
        .merge(signed_in)
        .layer(axum::middleware::map_response(page::secure))
}

/// The stylesheet and the scripts (small, the project's own; every page works without).
const STATIC: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", page::APP_CSS),
    ("app.js", "text/javascript; charset=utf-8", page::APP_JS),
    (
        "segments.js",
        "text/javascript; charset=utf-8",
        page::SEGMENTS_JS,
    ),
];

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
