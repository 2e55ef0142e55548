//! `GET|HEAD /v/{token}`: the message as the recipient's mail showed it, rendered again
//! from the campaign's template with the same renderer the dispatcher uses.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::HttpError;
use super::state::AppState;
use crate::links::TokenKind;
use crate::render::{CampaignRenderer, LinkSettings, RecipientContext, RenderSpec};
use crate::store::StoreError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v/{token}", get(view))
}

async fn view(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, HttpError> {
    let token = state.verify(&token, TokenKind::View)?;
    let recipient = state
        .store
        .recipient(token.recipient_id)
        .await?
        .ok_or(HttpError::BadLink)?;
    let renderer = renderer(&state, token.campaign_id).await?;
    // The dispatcher renders with the same (empty) segments and recommendations.
    let context = RecipientContext {
        recipient,
        segments: Vec::new(),
        recommendations: Vec::new(),
        cart: Vec::new(),
    };
    let message = renderer.render(&context).map_err(|e| {
        HttpError::Internal(format!(
            "view online of campaign {}: {e}",
            token.campaign_id
        ))
    })?;
    // Targets are normally stored when the message was sent; a link that only exists
    // now (the recipient's data changed) must be clickable too.
    state
        .store
        .store_links(token.campaign_id, &message.links)
        .await?;
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "private, no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::HeaderName::from_static("x-robots-tag"), "noindex"),
    ];
    Ok((headers, message.html).into_response())
}

async fn renderer(state: &AppState, campaign_id: i64) -> Result<Arc<CampaignRenderer>, HttpError> {
    if let Some(renderer) = state.renderers.get(campaign_id) {
        return Ok(renderer);
    }
    let campaign = match state.store.campaign(campaign_id).await {
        Err(StoreError::NotFound { .. }) => return Err(HttpError::BadLink),
        other => other?,
    };
    let template = state.store.template(campaign.template_id).await?;
    let links = LinkSettings::new(
        state.settings.base_url.clone(),
        state.settings.keyring.clone(),
    );
    let spec = RenderSpec::from_campaign(&campaign, template, links);
    let renderer = CampaignRenderer::new(spec)
        .map_err(|e| HttpError::Internal(format!("campaign {campaign_id} template: {e}")))?;
    let renderer = Arc::new(renderer);
    state.renderers.insert(campaign_id, renderer.clone());
    Ok(renderer)
}
