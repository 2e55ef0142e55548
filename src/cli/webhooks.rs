//! The flags of `serve` and `run` that turn on the providers' bounce and complaint
//! webhooks (`POST /webhooks/…`).

use crate::bounce::BounceSettings;
use crate::http::{
    MailgunKey, PostmarkAuth, SendGridKey, SesWebhook, WebhookSettingError, WebhookSettings,
};

#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Take Amazon SES bounces and complaints at /webhooks/ses (subscribe it to the SNS
    /// topic over HTTPS); each message is verified with Amazon SNS's certificate.
    #[arg(long, env = "MAILCAST_SES_WEBHOOK")]
    pub ses_webhook: bool,
    /// Take SNS messages from this topic only (repeat the flag, or separate ARNs with
    /// commas); without it, from any topic.
    #[arg(long, env = "MAILCAST_SES_TOPIC_ARN", value_delimiter = ',')]
    pub ses_topic_arn: Vec<String>,
    /// Also trust signing certificates and subscription URLs under this URL (a private
    /// SNS endpoint, a test server), besides https://sns.REGION.amazonaws.com.
    #[arg(long, env = "MAILCAST_SES_CERT_URL_PREFIX")]
    pub ses_cert_url_prefix: Option<String>,
    /// SendGrid's verification key for its signed event webhook (base64, as its mail
    /// settings show it); turns on /webhooks/sendgrid.
    #[arg(long, env = "MAILCAST_SENDGRID_WEBHOOK_KEY", hide_env_values = true)]
    pub sendgrid_webhook_key: Option<String>,
    /// USER:PASSWORD set on Postmark's webhook (HTTP Basic); turns on /webhooks/postmark.
    #[arg(long, env = "MAILCAST_POSTMARK_WEBHOOK_AUTH", hide_env_values = true)]
    pub postmark_webhook_auth: Option<String>,
    /// Mailgun's HTTP webhook signing key; turns on /webhooks/mailgun.
    #[arg(long, env = "MAILCAST_MAILGUN_SIGNING_KEY", hide_env_values = true)]
    pub mailgun_signing_key: Option<String>,
}

impl WebhookArgs {
    /// The webhooks these flags turn on, applying events with `bounces`.
    pub fn settings(&self, bounces: BounceSettings) -> anyhow::Result<WebhookSettings> {
        anyhow::ensure!(
            self.ses_webhook
                || (self.ses_topic_arn.is_empty() && self.ses_cert_url_prefix.is_none()),
            "--ses-topic-arn and --ses-cert-url-prefix need --ses-webhook"
        );
        let ses = self
            .ses_webhook
            .then(|| {
                SesWebhook::new(
                    self.ses_topic_arn.clone(),
                    self.ses_cert_url_prefix.as_deref(),
                )
            })
            .transpose()
            .map_err(flag("ses-cert-url-prefix"))?;
        let sendgrid = self.sendgrid_webhook_key.as_deref().map(SendGridKey::parse);
        let postmark = self
            .postmark_webhook_auth
            .as_deref()
            .map(PostmarkAuth::parse);
        let mailgun = self.mailgun_signing_key.as_deref().map(MailgunKey::new);
        let settings = WebhookSettings {
            ses,
            sendgrid: sendgrid.transpose().map_err(flag("sendgrid-webhook-key"))?,
            postmark: postmark
                .transpose()
                .map_err(flag("postmark-webhook-auth"))?,
            mailgun: mailgun.transpose().map_err(flag("mailgun-signing-key"))?,
            bounces,
        };
        let on: Vec<&str> = [
            ("ses", settings.ses.is_some()),
            ("sendgrid", settings.sendgrid.is_some()),
            ("postmark", settings.postmark.is_some()),
            ("mailgun", settings.mailgun.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if !on.is_empty() {
            tracing::info!(providers = %on.join(", "), "bounce webhooks at /webhooks/PROVIDER");
        }
        Ok(settings)
    }
}

/// The error of a setting, under the flag that gave it.
fn flag(name: &'static str) -> impl Fn(WebhookSettingError) -> anyhow::Error {
    move |e| anyhow::anyhow!("--{name}: {e}")
}
