//! Personalised rendering: one [`CampaignRenderer`] per campaign (templates compiled,
//! MJML and CSS done, links found), shared through `Arc` by every delivery task; one
//! [`CampaignRenderer::render`] per recipient, producing a complete RFC 5322 message.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use mailcast::render::*;
//! # fn demo(spec: RenderSpec, ctx: RecipientContext) -> Result<(), RenderError> {
//! let renderer = Arc::new(CampaignRenderer::new(spec)?);
//! let message = renderer.render(&ctx)?;
//! // store message.links, then hand message.raw to the transport
//! # Ok(()) }
//! ```

mod context;
mod css;
mod dkim;
mod error;
mod limits;
mod links;
mod load;
mod mime;
mod mjml;
mod qp;
mod recommendation;
mod rendered_with;
mod safety;
mod template;
mod text;

pub use context::{format_price, recipient_digest};
pub use dkim::{DkimAlgorithm, DkimSettings};
pub use error::{Location, Part, RenderError};
pub use limits::{Limit, MAX_BYTES_VAR, MAX_RANGE_VAR, RenderLimits, TIMEOUT_MS_VAR};
pub use load::{PreviewFiles, load_all, load_template_dir, write_preview};
pub use recommendation::{Because, Recommendation, recommendation_line};
pub use rendered_with::RenderedWith;
pub use safety::{is_crlf_only, normalize_crlf};

use crate::links::{KeyRing, Token, honeypot_token};
use crate::store::{Campaign, CampaignSettings, Product, Recipient, Template};
use links::{LinkPlan, Signer, UsedLinks};
use template::Compiled;

/// Everything needed to render one campaign.
#[derive(Debug, Clone)]
pub struct RenderSpec {
    pub campaign_id: i64,
    pub campaign_name: String,
    /// Marketing campaigns must carry an unsubscribe link and get List-* headers.
    pub marketing: bool,
    pub template: Template,
    pub from_name: String,
    pub from_email: String,
    pub reply_to: Option<String>,
    pub settings: CampaignSettings,
    pub links: LinkSettings,
}

impl RenderSpec {
    pub fn from_campaign(campaign: &Campaign, template: Template, links: LinkSettings) -> Self {
        Self {
            campaign_id: campaign.id,
            campaign_name: campaign.name.clone(),
            marketing: campaign.kind == crate::domain::CampaignKind::Marketing,
            template,
            from_name: campaign.from_name.clone(),
            from_email: campaign.from_email.clone(),
            reply_to: campaign.reply_to.clone(),
            settings: campaign.settings.0.clone(),
            links,
        }
    }
}

/// Where tracking links point and how they are signed.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Public base URL of the HTTP side, e.g. `https://t.example.com` (no trailing slash
    /// needed).
    pub base_url: String,
    pub keyring: KeyRing,
    /// Domain for List-Id, Message-ID and the unsubscribe mailbox, e.g. `lists.example.com`.
    pub list_id_domain: String,
}

impl LinkSettings {
    /// `list_id_domain` defaults to the host of `base_url` (`localhost` when it has
    /// none); set it explicitly for production.
    pub fn new(base_url: String, keyring: KeyRing) -> Self {
        let list_id_domain = url::Url::parse(base_url.trim())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".to_string());
        Self {
            base_url,
            keyring,
            list_id_domain,
        }
    }
}

/// One recipient's data, gathered by the dispatcher.
#[derive(Debug, Clone)]
pub struct RecipientContext {
    pub recipient: Recipient,
    /// Names of the declared segments the recipient matches.
    pub segments: Vec<String>,
    pub recommendations: Vec<Recommendation>,
    /// Recent cart items (abandoned-cart campaigns).
    pub cart: Vec<Product>,
    /// The event that started the automation run this message belongs to.
    pub trigger: Option<crate::store::TriggerEvent>,
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct RenderedMessage {
    /// `<campaign.recipient.mailcast@domain>`: the same for every retry.
    pub message_id: String,
    pub from: String,
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    /// The HTML part as rendered (line breaks as the template has them; `raw` carries
    /// it quoted-printable with CRLF).
    pub html: String,
    /// The plain-text part as rendered (see `html`).
    pub text: String,
    /// (link id, stored target) of every tracked link: store them before sending.
    pub links: Vec<(i64, String)>,
    /// The complete RFC 5322 message with CRLF line endings, for `send_raw`.
    pub raw: Vec<u8>,
}

/// A campaign's compiled templates and settings. `Send + Sync`: build once, share
/// through `Arc`.
pub struct CampaignRenderer {
    campaign_id: i64,
    compiled: Compiled,
    plan: LinkPlan,
    keyring: KeyRing,
    envelope: mime::Envelope,
    from: String,
    products: context::ProductCache,
    limits: RenderLimits,
}

impl CampaignRenderer {
    /// Compiles the campaign's templates once. Refuses a template that does not compile,
    /// a marketing template without `{{ unsubscribe_url }}`, and bad sender settings.
    /// Each message is bounded by [`RenderLimits::from_env`].
    pub fn new(spec: RenderSpec) -> Result<Self, RenderError> {
        let limits = RenderLimits::from_env()?;
        let base_url = spec.links.base_url.trim();
        if !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            return Err(RenderError::Settings(format!(
                "base_url {base_url:?} must start with http:// or https://"
            )));
        }
        let mut plan = LinkPlan::new(base_url, &spec.settings.utm);
        let campaign = campaign_context(&spec);
        let compiled = Compiled::new(&spec.template, &mut plan, spec.marketing, &campaign)?;
        let list = spec
            .marketing
            .then_some((spec.campaign_id, spec.campaign_name.as_str()));
        let envelope = mime::Envelope::new(
            &spec.from_name,
            &spec.from_email,
            spec.reply_to.as_deref(),
            &spec.links.list_id_domain,
            list,
        )?;
        Ok(Self {
            campaign_id: spec.campaign_id,
            compiled,
            plan,
            keyring: spec.links.keyring,
            from: envelope.from.to_string(),
            envelope,
            products: context::ProductCache::default(),
            limits,
        })
    }

    /// Bounds every message by `limits` from now on.
    pub fn with_limits(mut self, limits: RenderLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> RenderLimits {
        self.limits
    }

    /// Signs every message with DKIM from now on, over the bytes that are sent.
    pub fn with_dkim(mut self, dkim: &DkimSettings) -> Result<Self, RenderError> {
        self.envelope.dkim = Some(dkim.signer()?);
        Ok(self)
    }

    pub fn campaign_id(&self) -> i64 {
        self.campaign_id
    }

    /// The stable Message-ID of this campaign's message to `recipient_id`.
    pub fn message_id(&self, recipient_id: i64) -> String {
        self.envelope.message_id(self.campaign_id, recipient_id)
    }

    /// Renders one recipient's message. An error here concerns this delivery only,
    /// unless [`RenderError::is_campaign_error`] says otherwise.
    pub fn render(&self, ctx: &RecipientContext) -> Result<RenderedMessage, RenderError> {
        let recipient_id = ctx.recipient.id;
        let to = mime::address("To", &ctx.recipient.email)?;
        let unsubscribe_token =
            Token::unsubscribe(self.campaign_id, recipient_id).sign(&self.keyring);
        let urls = self.urls(recipient_id, &unsubscribe_token);
        let body = self.render_body(ctx, &urls)?;
        let message_id = self.message_id(recipient_id);
        let raw = mime::build(
            &self.envelope,
            &mime::Parts {
                message_id: &message_id,
                to: to.clone(),
                subject: &body.subject,
                text: &body.text,
                html: &body.html,
                unsubscribe_url: &urls.unsubscribe,
                unsubscribe_token: &unsubscribe_token,
            },
        )?;
        Ok(RenderedMessage {
            message_id,
            from: self.from.clone(),
            to: to.to_string(),
            subject: body.subject,
            html: body.html,
            text: body.text,
            links: body.links,
            raw,
        })
    }

    /// The HTML part as a browser shows it on the web: the same as [`Self::render`]
    /// makes for `ctx`, without the open pixel. Also returns its tracked links.
    pub fn render_web(&self, ctx: &RecipientContext) -> Result<WebPage, RenderError> {
        let recipient_id = ctx.recipient.id;
        let unsubscribe_token =
            Token::unsubscribe(self.campaign_id, recipient_id).sign(&self.keyring);
        let mut urls = self.urls(recipient_id, &unsubscribe_token);
        urls.open_pixel = String::new();
        let body = self.render_body(ctx, &urls)?;
        Ok(WebPage {
            html: template::without_open_pixel(&body.html),
            links: body.links,
        })
    }

    /// Subject, HTML and text for one recipient, links signed.
    fn render_body(
        &self,
        ctx: &RecipientContext,
        urls: &context::Urls,
    ) -> Result<Body, RenderError> {
        let mut context = context::build(ctx, urls, &self.products);
        let mut budget = limits::Budget::start(self.limits);
        let subject = self.compiled.render(Part::Subject, &context, &mut budget)?;
        safety::check_header("Subject", &subject)?;
        if self.compiled.has_preheader {
            let preheader = self
                .compiled
                .render(Part::Preheader, &context, &mut budget)?;
            context.insert("preheader", &collapse_whitespace(&preheader));
        }
        let signer = Signer {
            keys: &self.keyring,
            campaign_id: self.campaign_id,
            recipient_id: ctx.recipient.id,
        };
        let mut used = UsedLinks::default();
        let html = self.compiled.render(Part::Html, &context, &mut budget)?;
        let html = self.plan.resolve_html(&html, &signer, &mut used);
        let text = if self.compiled.has_text {
            let text = self.compiled.render(Part::Text, &context, &mut budget)?;
            self.plan.resolve_text(&text, &signer, &mut used)
        } else {
            text::from_html(&html)?
        };
        Ok(Body {
            subject,
            html,
            text,
            links: used.links,
        })
    }

    /// Renders each sample and collects every failure by recipient id: the check a
    /// campaign passes before it is scheduled.
    pub fn sample_errors<'a>(
        &self,
        samples: impl IntoIterator<Item = &'a RecipientContext>,
    ) -> Vec<(i64, RenderError)> {
        samples
            .into_iter()
            .filter_map(|ctx| self.render(ctx).err().map(|e| (ctx.recipient.id, e)))
            .collect()
    }

    fn urls(&self, recipient_id: i64, unsubscribe_token: &str) -> context::Urls {
        let base = self.plan.base_url();
        let unsubscribe = format!("{base}/u/{unsubscribe_token}");
        let sign = |token: Token| token.url(base, &self.keyring);
        context::Urls {
            preferences: unsubscribe.clone(),
            unsubscribe,
            view_online: sign(Token::view(self.campaign_id, recipient_id)),
            open_pixel: sign(Token::open(self.campaign_id, recipient_id)),
            honeypot: sign(honeypot_token(self.campaign_id, recipient_id)),
        }
    }
}

/// A message's HTML part for the web.
#[derive(Debug, Clone)]
pub struct WebPage {
    pub html: String,
    /// (link id, stored target) of every tracked link.
    pub links: Vec<(i64, String)>,
}

struct Body {
    subject: String,
    html: String,
    text: String,
    links: Vec<(i64, String)>,
}

fn campaign_context(spec: &RenderSpec) -> tera::Context {
    #[derive(serde::Serialize)]
    struct CampaignView<'a> {
        id: i64,
        name: &'a str,
        from_name: &'a str,
        from_email: &'a str,
    }
    let mut context = tera::Context::new();
    let view = CampaignView {
        id: spec.campaign_id,
        name: &spec.campaign_name,
        from_name: &spec.from_name,
        from_email: &spec.from_email,
    };
    context.insert("campaign", &view);
    context.insert("data", &spec.settings.data);
    context
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderer_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CampaignRenderer>();
        assert_send_sync::<RenderedMessage>();
    }
}
