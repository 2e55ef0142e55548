//! `GET|HEAD /v/{token}`: the message as it was sent to the recipient, rendered again
//! from the delivery's record (see [`crate::render::RenderedWith`]) with the template
//! version that was sent, without the open pixel.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::HttpError;
use super::state::AppState;
use crate::dispatch::{AsSent, as_sent};
use crate::links::TokenKind;
use crate::render::{CampaignRenderer, LinkSettings, RenderSpec};
use crate::store::{Campaign, StoreError};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v/{token}", get(view))
}

const HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (header::CACHE_CONTROL, "private, no-store"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::HeaderName::from_static("x-robots-tag"), "noindex"),
];

async fn view(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, HttpError> {
    let token = state.verify(&token, TokenKind::View)?;
    let campaign = match state.store.campaign(token.campaign_id).await {
        Err(StoreError::NotFound { .. }) => return Err(HttpError::BadLink),
        other => other?,
    };
    let found = as_sent(&state.store, &campaign, token.recipient_id)
        .await
        .map_err(|e| HttpError::Internal(format!("view online: {e}")))?;
    let (record, context) = match found {
        AsSent::NoDelivery => return Err(HttpError::BadLink),
        AsSent::NotSent(_) => {
            return Ok(notice(
                StatusCode::NOT_FOUND,
                "This message has not been sent yet.",
            ));
        }
        AsSent::DataGone(_) => {
            return Ok(notice(
                StatusCode::GONE,
                "This message can no longer be shown.",
            ));
        }
        AsSent::Sent {
            record, context, ..
        } => (record, context),
    };
    let renderer = renderer(&state, &campaign, record.template_id).await?;
    let page = renderer.render_web(&context).map_err(|e| {
        HttpError::Internal(format!("view online of campaign {}: {e}", campaign.id))
    })?;
    // Stored when the message was sent; stored again in case that write was lost.
    state.store.store_links(campaign.id, &page.links).await?;
    Ok((HEADERS, page.html).into_response())
}

/// A short page saying why there is no message to show.
fn notice(status: StatusCode, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{text}</title></head>\
         <body><p>{text}</p></body></html>"
    );
    (status, HEADERS, html).into_response()
}

async fn renderer(
    state: &AppState,
    campaign: &Campaign,
    template_id: i64,
) -> Result<Arc<CampaignRenderer>, HttpError> {
    if let Some(renderer) = state.renderers.get(campaign.id, template_id) {
        return Ok(renderer);
    }
    let template = state.store.template(template_id).await?;
    let links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    let spec = RenderSpec::from_campaign(campaign, template, links);
    let renderer = CampaignRenderer::new(spec)
        .map_err(|e| HttpError::Internal(format!("campaign {} template: {e}", campaign.id)))?;
    let renderer = Arc::new(renderer);
    state
        .renderers
        .insert(campaign.id, template_id, renderer.clone());
    Ok(renderer)
}
