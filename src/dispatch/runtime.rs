//! A campaign as a worker holds it while sending: compiled templates, compiled
//! declared segments, and how to gather each recipient's context.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::DispatchError;
use crate::domain::CampaignKind;
use crate::domain::EmailAddress;
use crate::links::KeyRing;
use crate::recommend::Recommender;
use crate::render::{
    CampaignRenderer, DkimSettings, LinkSettings, RecipientContext, Recommendation, RenderSpec,
    RenderedWith,
};
use crate::schedule::QuietHours;
use crate::store::{Campaign, Product, Recipient, RecipientHistory, SqlFilter, Store};

/// How long a standing campaign's runtime is used before it is loaded again.
const STANDING_REFRESH: std::time::Duration = std::time::Duration::from_secs(900);

/// Render failures are judged only after this many renders.
const MIN_RENDERS_TO_JUDGE: u64 = 20;

pub struct CampaignRuntime {
    pub id: i64,
    /// The campaign's own message, which is also variant A of an experiment.
    pub renderer: CampaignRenderer,
    /// Variants B, C, … of an experiment, with their template versions.
    variants: Vec<(CampaignRenderer, i64)>,
    pub envelope_from: String,
    /// The SMTP relay the campaign asks for first.
    pub relay: Option<String>,
    /// The template version every message is rendered from.
    template_id: i64,
    /// Marketing messages wait for quiet hours and count towards frequency caps.
    pub marketing: bool,
    /// Never marked done: more deliveries may come (an automation step's campaign).
    pub standing: bool,
    /// A test-then-winner experiment: not done before the winner went to the rest.
    pub tests: bool,
    /// An automation step's template that shows its run's trigger event.
    uses_trigger: bool,
    /// When it was loaded (the recommendation model and catalogue are as of then).
    loaded: std::time::Instant,
    /// The campaign's own quiet hours: `Some(None)` for none at all, `None` to follow
    /// the worker's.
    quiet_hours: Option<Option<QuietHours>>,
    /// The segments the template may branch on, compiled once.
    declared_segments: Vec<(String, SqlFilter)>,
    /// Their names in the campaign's order: a record names segments by position.
    declared_names: Vec<String>,
    /// Built at load when the template uses `recommendations` or `cart`.
    recommender: Option<Recommender>,
    renders: AtomicU64,
    render_failures: AtomicU64,
}

impl CampaignRuntime {
    /// Compiles everything per campaign that need not be done per recipient.
    pub async fn load(
        store: &Store,
        base_url: &str,
        keyring: &KeyRing,
        dkim: Option<&DkimSettings>,
        campaign_id: i64,
        now: i64,
    ) -> Result<CampaignRuntime, DispatchError> {
        let campaign = store.campaign(campaign_id).await?;
        let template = store.template(campaign.template_id).await?;
        let recommender = recommender_for(store, campaign_id, &template.html, now).await?;
        let uses_trigger = campaign.settings.0.standing && mentions_trigger(&template);
        let links = link_settings(base_url, keyring, &campaign.from_email);
        let specs = variant_specs(store, &campaign, template, &links).await?;
        let mut renderers = Vec::with_capacity(specs.len());
        for (spec, template_id) in specs {
            renderers.push((renderer(campaign_id, spec, dkim)?, template_id));
        }
        let mut renderers = renderers.into_iter();
        let (renderer, template_id) = renderers.next().expect("the campaign's own message");
        let names = &campaign.settings.0.declared_segments;
        let declared_segments = crate::segment::compile_declared(store, names, crate::time::now())
            .await
            .map_err(|e| DispatchError::Segment {
                campaign: campaign_id,
                reason: e.to_string(),
            })?;
        Ok(CampaignRuntime {
            id: campaign_id,
            renderer,
            variants: renderers.collect(),
            envelope_from: campaign.from_email.clone(),
            relay: campaign.settings.0.smtp_relay.clone(),
            template_id,
            marketing: campaign.kind == CampaignKind::Marketing,
            standing: campaign.settings.0.standing,
            tests: (campaign.settings.0.experiment.as_ref()).is_some_and(|e| e.picks_a_winner()),
            loaded: std::time::Instant::now(),
            uses_trigger,
            quiet_hours: campaign_quiet_hours(&campaign)?,
            declared_segments,
            declared_names: names.clone(),
            recommender,
            renders: AtomicU64::new(0),
            render_failures: AtomicU64::new(0),
        })
    }

    /// Whether it may still be used: a standing campaign's recommendation model and
    /// catalogue are rebuilt every [`STANDING_REFRESH`].
    pub fn fresh(&self) -> bool {
        !self.standing || self.loaded.elapsed() < STANDING_REFRESH
    }

    /// Counts renders in this process; returns the share that failed so far, once
    /// there are enough to judge.
    pub fn note_renders(&self, attempted: u64, failed: u64) -> Option<f64> {
        let total = self.renders.fetch_add(attempted, Ordering::Relaxed) + attempted;
        let failures = self.render_failures.fetch_add(failed, Ordering::Relaxed) + failed;
        (total >= MIN_RENDERS_TO_JUDGE).then(|| failures as f64 / total as f64)
    }

    /// The quiet hours this campaign's messages keep, given the worker's.
    pub fn quiet_hours(&self, worker: Option<QuietHours>) -> Option<QuietHours> {
        if !self.marketing {
            return None;
        }
        self.quiet_hours.unwrap_or(worker)
    }

    /// The record of what `ctx` gives this campaign's message, or its `variant`'s
    /// (see [`RenderedWith`]).
    pub fn rendered_with(&self, ctx: &RecipientContext, variant: Option<i64>) -> RenderedWith {
        let template_id = match self.variant(variant) {
            Some((_, template_id)) => *template_id,
            None => self.template_id,
        };
        RenderedWith::of(ctx, template_id, &self.declared_names)
    }

    /// The renderer of an experiment's variant (A, or no experiment: the campaign's).
    pub fn renderer_for(&self, variant: Option<i64>) -> &CampaignRenderer {
        match self.variant(variant) {
            Some((renderer, _)) => renderer,
            None => &self.renderer,
        }
    }

    /// 1 without an experiment.
    pub fn variant_count(&self) -> usize {
        1 + self.variants.len()
    }

    fn variant(&self, variant: Option<i64>) -> Option<&(CampaignRenderer, i64)> {
        let index = usize::try_from(variant?).ok()?.checked_sub(1)?;
        self.variants.get(index)
    }

    /// Each recipient's render context as of `now` (the cart, and the recommendations'
    /// weighting of their history), gathered for the whole batch at once.
    pub async fn contexts(
        &self,
        store: &Store,
        recipients: Vec<Recipient>,
        now: i64,
    ) -> Result<Vec<RecipientContext>, DispatchError> {
        let ids: Vec<i64> = recipients.iter().map(|r| r.id).collect();
        let mut segments = self.segment_names(store, &ids).await?;
        let mut histories = match &self.recommender {
            Some(_) => store.histories(&ids).await?,
            None => HashMap::new(),
        };
        let mut triggers = match self.uses_trigger {
            true => store.trigger_events(self.id, &ids).await?,
            false => HashMap::new(),
        };
        Ok(recipients
            .into_iter()
            .map(|recipient| {
                let history = histories
                    .remove(&recipient.id)
                    .unwrap_or_else(|| RecipientHistory::new(Vec::new()));
                let (recommendations, cart) = self.picks(&history, now);
                RecipientContext {
                    segments: segments.remove(&recipient.id).unwrap_or_default(),
                    trigger: triggers.remove(&recipient.id),
                    recipient,
                    recommendations,
                    cart,
                }
            })
            .collect())
    }

    fn picks(&self, history: &RecipientHistory, now: i64) -> (Vec<Recommendation>, Vec<Product>) {
        match &self.recommender {
            Some(model) => (
                model.for_recipient_at(history, now, model.options().count),
                model.cart_at(history, now),
            ),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Which declared segments each recipient is in: one query per segment.
    async fn segment_names(
        &self,
        store: &Store,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, DispatchError> {
        if self.declared_segments.is_empty() || ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(store
            .recipient_segment_names(ids, &self.declared_segments)
            .await?)
    }
}

fn renderer(
    campaign_id: i64,
    spec: RenderSpec,
    dkim: Option<&DkimSettings>,
) -> Result<CampaignRenderer, DispatchError> {
    let render_error = |source| DispatchError::Render {
        campaign: campaign_id,
        source,
    };
    let renderer = CampaignRenderer::new(spec).map_err(render_error)?;
    match dkim {
        Some(dkim) => renderer.with_dkim(dkim).map_err(render_error),
        None => Ok(renderer),
    }
}

/// The campaign's message, then each experiment variant's after the first (variant A
/// is the campaign's own, as set), each with its template version.
pub(crate) async fn variant_specs(
    store: &Store,
    campaign: &Campaign,
    template: crate::store::Template,
    links: &LinkSettings,
) -> Result<Vec<(RenderSpec, i64)>, DispatchError> {
    let own = RenderSpec::from_campaign(campaign, template.clone(), links.clone());
    let Some(experiment) = &campaign.settings.0.experiment else {
        return Ok(vec![(own, campaign.template_id)]);
    };
    let mut specs = Vec::with_capacity(experiment.variants.len());
    for variant in &experiment.variants {
        let variant_template = match variant.template_id {
            Some(id) => store.template(id).await?,
            None => template.clone(),
        };
        let template_id = variant_template.id;
        let mut spec = RenderSpec::from_campaign(campaign, variant_template, links.clone());
        if let Some(subject) = &variant.subject {
            spec.template.subject = subject.clone();
        }
        if let Some(preheader) = &variant.preheader {
            spec.template.preheader = Some(preheader.clone());
        }
        if let Some(from_name) = &variant.from_name {
            spec.from_name = from_name.clone();
        }
        specs.push((spec, template_id));
    }
    Ok(specs)
}

/// `off` or a window; unset follows the worker.
fn campaign_quiet_hours(campaign: &Campaign) -> Result<Option<Option<QuietHours>>, DispatchError> {
    match campaign.settings.0.quiet_hours.as_deref().map(str::trim) {
        None => Ok(None),
        Some("off") => Ok(Some(None)),
        Some(text) => text
            .parse()
            .map(|hours| Some(Some(hours)))
            .map_err(|reason| DispatchError::Campaign {
                campaign: campaign.id,
                reason,
            }),
    }
}

/// Whether any part of the template may show `trigger` (looked up per batch only then).
fn mentions_trigger(template: &crate::store::Template) -> bool {
    let parts = [
        Some(&template.subject),
        template.preheader.as_ref(),
        Some(&template.html),
        template.text.as_ref(),
    ];
    parts
        .into_iter()
        .flatten()
        .any(|part| part.contains("trigger"))
}

/// The recommender is built (one pass over the events) only for templates that
/// show recommendations or the cart.
async fn recommender_for(
    store: &Store,
    campaign_id: i64,
    html: &str,
    now: i64,
) -> Result<Option<Recommender>, DispatchError> {
    if !html.contains("recommendations") && !html.contains("cart") {
        return Ok(None);
    }
    let model = Recommender::build(store, now)
        .await
        .map_err(|e| DispatchError::Campaign {
            campaign: campaign_id,
            reason: format!("cannot build recommendations: {e}"),
        })?;
    Ok(Some(model))
}

/// Message-ID, List-Id and the unsubscribe mailbox use the sender's domain.
fn link_settings(base_url: &str, keyring: &KeyRing, from_email: &str) -> LinkSettings {
    let mut links = LinkSettings::new(base_url.to_string(), keyring.clone());
    if let Ok(address) = EmailAddress::parse(from_email) {
        links.list_id_domain = address.domain().to_lowercase();
    }
    links
}
