//! What every handler shares: the store, the link keys, the event queue, metrics and
//! a few read-mostly caches.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Method;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::error::HttpError;
use super::metrics::Metrics;
use super::pages::Pages;
use super::server::HttpSettings;
use super::verdict::{RequestFacts, request_verdict};
use super::writer::EventSender;
use crate::dispatch::JobQueue;
use crate::links::{Token, TokenKind};
use crate::recommend::{RecommendError, Recommender};
use crate::render::CampaignRenderer;
use crate::store::{NewTrackingEvent, Store, TrackingKind};

#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub store: Store,
    pub settings: HttpSettings,
    pub events: EventSender,
    pub metrics: Arc<Metrics>,
    pub pages: Pages,
    pub views: super::app::Views,
    pub queue: JobQueue,
    pub links: LinkCache,
    pub renderers: RendererCache,
    pub previews: ModelCache,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        settings: HttpSettings,
        events: EventSender,
        metrics: Arc<Metrics>,
    ) -> Result<AppState, HttpError> {
        let queue = JobQueue::new(&store);
        Ok(AppState(Arc::new(Shared {
            store,
            settings,
            events,
            metrics,
            pages: Pages::new()?,
            views: super::app::Views::new()?,
            queue,
            links: LinkCache::default(),
            renderers: RendererCache::default(),
            previews: ModelCache::default(),
        })))
    }

    /// A token of `kind` signed by a listed key; anything else is [`HttpError::BadLink`].
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Token, HttpError> {
        match Token::verify(&self.settings.keyring, token) {
            Ok(token) if token.kind == kind => Ok(token),
            _ => Err(HttpError::BadLink),
        }
    }

    /// Queues an event with the verdict the request alone supports.
    pub async fn record(
        &self,
        kind: TrackingKind,
        token: &Token,
        link_id: Option<i64>,
        client: &Client,
    ) -> Result<(), HttpError> {
        let (verdict, reason) = request_verdict(kind, link_id, &client.facts);
        let event = NewTrackingEvent {
            kind,
            campaign_id: token.campaign_id,
            recipient_id: token.recipient_id,
            link_id,
            occurred_at: self.settings.clock.now(),
            ip: client.facts.ip.map(|ip| ip.to_string()),
            user_agent: client.facts.user_agent.clone(),
            verdict,
            reason,
        };
        self.events
            .record(event)
            .await
            .map_err(|e| HttpError::Unavailable(e.to_string()))
    }
}

/// The sender of a request as the verdicts see it.
pub(crate) struct Client {
    pub facts: RequestFacts,
}

/// User agents longer than this are cut: the column is for classification, not storage.
const MAX_AGENT_LEN: usize = 512;

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|agent| agent.chars().take(MAX_AGENT_LEN).collect());
        Ok(Client {
            facts: RequestFacts {
                head: parts.method == Method::HEAD,
                user_agent,
                ip: client_ip(parts, state.settings.trust_forwarded_for),
            },
        })
    }
}

/// The peer address, or the first `X-Forwarded-For` entry behind a trusted proxy.
fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Click targets by (campaign, link): links never change once stored, so a target is
/// looked up once per process. Bounded: cleared when full.
#[derive(Default)]
pub(crate) struct LinkCache {
    targets: RwLock<HashMap<(i64, i64), Arc<str>>>,
}

const LINK_CACHE_LIMIT: usize = 100_000;

impl LinkCache {
    pub fn get(&self, campaign_id: i64, link_id: i64) -> Option<Arc<str>> {
        self.targets
            .read()
            .expect("link cache lock")
            .get(&(campaign_id, link_id))
            .cloned()
    }

    pub fn insert(&self, campaign_id: i64, link_id: i64, target: Arc<str>) {
        let mut targets = self.targets.write().expect("link cache lock");
        if targets.len() >= LINK_CACHE_LIMIT {
            targets.clear();
        }
        targets.insert((campaign_id, link_id), target);
    }
}

/// Compiled campaign templates for "view online", by campaign and template version.
#[derive(Default)]
pub(crate) struct RendererCache {
    renderers: Mutex<HashMap<(i64, i64), Arc<CampaignRenderer>>>,
}

const RENDERER_CACHE_LIMIT: usize = 32;

impl RendererCache {
    pub fn get(&self, campaign_id: i64, template_id: i64) -> Option<Arc<CampaignRenderer>> {
        self.renderers
            .lock()
            .expect("renderer cache lock")
            .get(&(campaign_id, template_id))
            .cloned()
    }

    pub fn insert(&self, campaign_id: i64, template_id: i64, renderer: Arc<CampaignRenderer>) {
        let mut renderers = self.renderers.lock().expect("renderer cache lock");
        if renderers.len() >= RENDERER_CACHE_LIMIT {
            renderers.clear();
        }
        renderers.insert((campaign_id, template_id), renderer);
    }
}

/// The recommendation model for template previews, built from every event: once per
/// [`MODEL_MAX_AGE`] seconds at most, not per request. Only a request that finds no
/// model at all waits for a build; one that finds it too old gets it as it is while a
/// new one is built in the background. One build at a time.
#[derive(Default)]
pub(crate) struct ModelCache {
    model: Mutex<Option<(i64, Arc<Recommender>)>>,
    building: Arc<tokio::sync::Mutex<()>>,
}

/// How old a preview's recommendation model may be (the worker builds one per campaign).
pub(crate) const MODEL_MAX_AGE: i64 = 15 * 60;

impl ModelCache {
    /// The model and whether it is too old at `now`.
    fn current(&self, now: i64) -> Option<(Arc<Recommender>, bool)> {
        let slot = self.model.lock().expect("model cache lock");
        slot.as_ref()
            .map(|(built_at, model)| (model.clone(), now - built_at >= MODEL_MAX_AGE))
    }

    /// Builds and keeps a model, unless one that is fresh enough came while waiting
    /// for the build lock.
    async fn build(&self, store: &Store, now: i64) -> Result<Arc<Recommender>, RecommendError> {
        let _one_at_a_time = self.building.lock().await;
        if let Some((model, false)) = self.current(now) {
            return Ok(model);
        }
        self.build_holding_lock(store, now).await
    }

    async fn build_holding_lock(
        &self,
        store: &Store,
        now: i64,
    ) -> Result<Arc<Recommender>, RecommendError> {
        let model = Arc::new(Recommender::build(store, now).await?);
        *self.model.lock().expect("model cache lock") = Some((now, model.clone()));
        Ok(model)
    }
}

impl AppState {
    /// The preview model: kept, refreshed in the background when too old, built (and
    /// waited for) only when there is none.
    pub async fn preview_model(&self, now: i64) -> Result<Arc<Recommender>, RecommendError> {
        match self.previews.current(now) {
            Some((model, stale)) => {
                if stale {
                    self.refresh_preview_model(now);
                }
                Ok(model)
            }
            None => self.previews.build(&self.store, now).await,
        }
    }

    /// Starts building a new preview model unless a build is already running.
    pub fn refresh_preview_model(&self, now: i64) {
        let Ok(guard) = self.previews.building.clone().try_lock_owned() else {
            return;
        };
        let state = self.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            if let Err(error) = state.previews.build_holding_lock(&state.store, now).await {
                tracing::warn!(%error, "cannot rebuild the template preview model");
            }
        });
    }
}

#[cfg(test)]
mod model_cache_tests {
    use super::*;

    #[tokio::test]
    async fn a_preview_model_is_built_once_per_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db").display().to_string())
            .await
            .unwrap();
        let cache = ModelCache::default();
        assert!(cache.current(1_000).is_none());
        let first = cache.build(&store, 1_000).await.unwrap();
        let (again, stale) = cache.current(1_000 + MODEL_MAX_AGE - 1).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again) && !stale,
            "fresh within the age limit"
        );
        let waited = cache
            .build(&store, 1_000 + MODEL_MAX_AGE - 1)
            .await
            .unwrap();
        assert!(
            Arc::ptr_eq(&first, &waited),
            "a fresh model is not built again"
        );
        let (_, stale) = cache.current(1_000 + MODEL_MAX_AGE).unwrap();
        assert!(stale, "too old at the age limit");
        let later = cache.build(&store, 1_000 + MODEL_MAX_AGE).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &later), "built again once too old");
        store.close().await;
    }
}
