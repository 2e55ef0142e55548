//! The CRM API under `/api`: JSON in and out, bearer API keys (stored hashed), errors
//! as `{"error": …}` with the status [`HttpError`] maps. Every route is listed once in
//! [`table`]; the router is built from it and a test holds it against the OpenAPI
//! document served at `/api/openapi.json`.

mod automations;
mod body;
pub(crate) mod campaigns;
mod catalog;
mod keys;
mod recipients;
mod rows;
mod segments;
mod sends;
mod suppressions;

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on};

use super::error::HttpError;
use super::state::AppState;
use crate::store::ApiKey;

pub use keys::{generate_api_key, hash_api_key};

/// The OpenAPI 3.1 description of this API, written by hand next to the handlers.
pub const OPENAPI: &str = include_str!("openapi.json");

struct ApiRoute {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    fn new<H, T>(method: Method, path: &'static str, handler: H) -> ApiRoute
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        ApiRoute {
            method,
            path,
            handler: on(filter, handler),
        }
    }
}

/// Every authenticated route.
fn table() -> Vec<ApiRoute> {
    use Method as M;
    vec![
        ApiRoute::new(M::POST, "/api/recipients", recipients::upsert_one),
        ApiRoute::new(M::POST, "/api/recipients/batch", recipients::upsert_batch),
        ApiRoute::new(M::GET, "/api/recipients/{email}/export", recipients::export),
        ApiRoute::new(M::DELETE, "/api/recipients/{email}", recipients::erase),
        ApiRoute::new(M::POST, "/api/events", catalog::record_events),
        ApiRoute::new(M::POST, "/api/products", catalog::upsert_products),
        ApiRoute::new(M::POST, "/api/segments/check", segments::check),
        ApiRoute::new(M::PUT, "/api/segments/{name}", segments::put),
        ApiRoute::new(M::GET, "/api/segments/{name}", segments::get),
        ApiRoute::new(M::GET, "/api/automations", automations::list),
        ApiRoute::new(M::PUT, "/api/automations/{name}", automations::put),
        ApiRoute::new(M::GET, "/api/automations/{name}", automations::get),
        ApiRoute::new(M::GET, "/api/automations/{name}/stats", automations::stats),
        ApiRoute::new(M::POST, "/api/automations/{name}/pause", automations::pause),
        ApiRoute::new(
            M::POST,
            "/api/automations/{name}/resume",
            automations::resume,
        ),
        ApiRoute::new(M::POST, "/api/campaigns", campaigns::create),
        ApiRoute::new(M::GET, "/api/campaigns/{id}", campaigns::get),
        ApiRoute::new(M::POST, "/api/campaigns/{id}/schedule", campaigns::schedule),
        ApiRoute::new(M::POST, "/api/campaigns/{id}/pause", campaigns::pause),
        ApiRoute::new(M::POST, "/api/campaigns/{id}/resume", campaigns::resume),
        ApiRoute::new(M::POST, "/api/campaigns/{id}/cancel", campaigns::cancel),
        ApiRoute::new(M::GET, "/api/campaigns/{id}/stats", campaigns::stats),
        ApiRoute::new(M::POST, "/api/sends", sends::send),
        ApiRoute::new(M::GET, "/api/sends/{id}", sends::get),
        ApiRoute::new(M::GET, "/api/suppressions", suppressions::list),
        ApiRoute::new(M::GET, "/api/suppressions/{email}", suppressions::get),
        ApiRoute::new(M::DELETE, "/api/suppressions/{email}", suppressions::remove),
    ]
}

/// (method, path) of every route under `/api`, the OpenAPI document included.
pub fn api_routes() -> Vec<(String, &'static str)> {
    let mut routes: Vec<(String, &'static str)> = table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    routes.push(("GET".into(), "/api/openapi.json"));
    routes
}

pub(crate) fn router(state: AppState) -> Router<AppState> {
    let authenticated = table()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .merge(authenticated)
        .route("/api/openapi.json", get(openapi))
        .fallback(no_such_route)
}

/// Who is calling: the API key the request presented.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub ApiKey);

async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .ok_or_else(|| {
            HttpError::Unauthorized(
                "no API key: send `Authorization: Bearer <key>` (create one with `mailcast api-key create NAME`)".into(),
            )
        })?;
    let key = state
        .store
        .api_key_by_hash(&hash_api_key(presented))
        .await?
        .ok_or_else(|| HttpError::Unauthorized("unknown or revoked API key".into()))?;
    tracing::debug!(api_key = %key.name, "authenticated");
    request.extensions_mut().insert(Caller(key));
    Ok(next.run(request).await)
}

/// The credentials of `Bearer <key>`; the scheme name is case-insensitive (RFC 7235).
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim_start().split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn no_such_route(method: Method, uri: axum::http::Uri) -> HttpError {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        HttpError::NotFound(format!(
            "no API endpoint {method} {}; see /api/openapi.json",
            uri.path()
        ))
    } else {
        HttpError::BadLink
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer mc_1", "bearer mc_1", "BEARER  mc_1 ", "BeArEr mc_1"] {
            assert_eq!(bearer_credentials(header), Some("mc_1"), "{header}");
        }
        assert_eq!(bearer_credentials("Basic mc_1"), None);
        assert_eq!(bearer_credentials("Bearer "), None);
        assert_eq!(bearer_credentials("Bearermc_1"), None);
    }
}
