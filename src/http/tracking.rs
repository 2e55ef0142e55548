//! `GET|HEAD /o/{token}`: the open pixel. `GET|HEAD /c/{token}`: the click redirect,
//! always to the campaign's stored link (plus its UTM parameters), never to anything
//! the request names. A bad token is a 404 and records nothing.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::HttpError;
use super::state::{AppState, Client};
use super::verdict::HONEYPOT_LINK_ID;
use crate::links::TokenKind;
use crate::store::{CampaignSettings, TrackingKind};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{token}", get(open))
        .route("/c/{token}", get(click))
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

const NO_CACHE: [(header::HeaderName, &str); 3] = [
    (
        header::CACHE_CONTROL,
        "no-store, no-cache, must-revalidate, max-age=0",
    ),
    (header::PRAGMA, "no-cache"),
    (header::EXPIRES, "0"),
];

async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
) -> Result<Response, HttpError> {
    let token = state.verify(&token, TokenKind::Open)?;
    state
        .record(TrackingKind::Open, &token, None, &client)
        .await?;
    Ok((NO_CACHE, [(header::CONTENT_TYPE, "image/gif")], PIXEL).into_response())
}

async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
) -> Result<Response, HttpError> {
    let token = state.verify(&token, TokenKind::Click)?;
    if token.link_id == HONEYPOT_LINK_ID {
        state
            .record(TrackingKind::Click, &token, Some(token.link_id), &client)
            .await?;
        return Ok((StatusCode::NO_CONTENT, NO_CACHE).into_response());
    }
    let target = target(&state, token.campaign_id, token.link_id)
        .await?
        .ok_or(HttpError::BadLink)?;
    state
        .record(TrackingKind::Click, &token, Some(token.link_id), &client)
        .await?;
    let location = [(header::LOCATION, target.as_ref())];
    let policy = [(header::REFERRER_POLICY, "no-referrer")];
    Ok((StatusCode::FOUND, location, policy, NO_CACHE).into_response())
}

/// The stored target of a campaign's link with the campaign's UTM parameters; None
/// when the campaign has no such link.
async fn target(
    state: &AppState,
    campaign_id: i64,
    link_id: i64,
) -> Result<Option<Arc<str>>, HttpError> {
    if let Some(known) = state.links.get(campaign_id, link_id) {
        return Ok(Some(known));
    }
    let Some((url, settings)) = state.store.link_target(campaign_id, link_id).await? else {
        return Ok(None);
    };
    let target: Arc<str> = with_utm(&url, &settings).into();
    state.links.insert(campaign_id, link_id, target.clone());
    Ok(Some(target))
}

/// Appends the campaign's UTM parameters that the URL does not set already. The
/// renderer stores targets with them (see `render::links`); this keeps a target
/// stored without them, or settings changed since, tagged the same way.
pub(crate) fn with_utm(url: &str, settings: &CampaignSettings) -> String {
    crate::links::with_utm(url, &settings.utm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_are_added_unless_present() {
        let mut settings = CampaignSettings::default();
        settings.utm.insert("utm_source".into(), "mailcast".into());
        settings.utm.insert("utm_medium".into(), "email".into());
        assert_eq!(
            with_utm("https://shop.example/a?utm_source=crm", &settings),
            "https://shop.example/a?utm_source=crm&utm_medium=email"
        );
        assert_eq!(
            with_utm("https://shop.example/a", &CampaignSettings::default()),
            "https://shop.example/a"
        );
    }

    #[test]
    fn the_pixel_is_a_gif() {
        assert!(PIXEL.starts_with(b"GIF89a"));
        assert_eq!(PIXEL.len(), 43);
    }
}
