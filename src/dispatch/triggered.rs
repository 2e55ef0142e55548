//! Triggered sends (the `SendMessage` of a CRM): one message to one recipient, now.
//! Each becomes a single-recipient campaign whose only delivery is put straight into
//! the ledger and handed to the worker as a `DeliverBatch` job, so it gets the same
//! consent re-check, rendering, retries and at-most-once outcome recording as any
//! campaign message, and its opens and clicks show in its statistics. The API
//! (`POST /api/sends`) and the CLI (`mailcast send`) both come through here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DeliverBatch, JobQueue, cancel_campaign};
use crate::domain::{CampaignKind, CampaignStatus, EmailAddress};
use crate::render::{CampaignRenderer, LinkSettings, RenderSpec};
use crate::store::{
    CampaignSettings, IdempotencyClaim, NewCampaign, Recipient, Store, StoreError, Template,
};

/// What a CRM asks to send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggeredSend {
    /// Name of a stored template.
    pub template: String,
    /// The recipient: must exist (upsert it first).
    pub email: String,
    pub from_email: String,
    #[serde(default)]
    pub from_name: String,
    pub reply_to: Option<String>,
    /// `transactional` (default) or `marketing` (needs an unsubscribe link).
    #[serde(default = "transactional")]
    pub kind: CampaignKind,
    /// Topic the recipient must be subscribed to.
    pub topic: Option<String>,
    #[serde(default)]
    pub utm: BTreeMap<String, String>,
    /// Values for this message only, seen by the template as `data`
    /// (`{{ data.order_number }}`).
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

fn transactional() -> CampaignKind {
    CampaignKind::Transactional
}

/// Problems with a send, by the field that holds them.
pub type FieldProblems = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum TriggeredError {
    #[error("invalid send: {}", describe(.0))]
    Invalid(FieldProblems),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot queue the send: {0}")]
    Queue(String),
}

fn describe(problems: &FieldProblems) -> String {
    let parts: Vec<String> = problems
        .iter()
        .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
        .collect();
    parts.join(", ")
}

/// A send whose every part was checked before anything is written.
pub struct CheckedSend {
    campaign: NewCampaign,
    recipient: Recipient,
}

/// What was queued.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedSend {
    pub send_id: i64,
    pub campaign: String,
    pub recipient_id: i64,
    pub status: &'static str,
}

/// Checks the recipient, sender and template (it must compile for this send, with
/// its data) without writing anything.
pub async fn check_send(
    store: &Store,
    links: &LinkSettings,
    send: TriggeredSend,
) -> Result<CheckedSend, TriggeredError> {
    let mut problems = FieldProblems::new();
    let recipient = find_recipient(store, &send.email, &mut problems).await?;
    if let Err(e) = EmailAddress::parse(&send.from_email) {
        add_problem(&mut problems, "from_email", e.to_string());
    }
    let template = store.template_by_name(&send.template).await?;
    if template.is_none() {
        let message = format!("no template named '{}'", send.template);
        add_problem(&mut problems, "template", message);
    }
    let (Some(recipient), Some(template), true) = (recipient, template, problems.is_empty()) else {
        return Err(TriggeredError::Invalid(problems));
    };
    let campaign = single_recipient_campaign(send, template.id);
    if let Err(message) = compiles(&campaign, template, links) {
        add_problem(&mut problems, "template", message);
        return Err(TriggeredError::Invalid(problems));
    }
    Ok(CheckedSend {
        campaign,
        recipient,
    })
}

fn single_recipient_campaign(send: TriggeredSend, template_id: i64) -> NewCampaign {
    NewCampaign {
        name: format!(
            "send-{}-{:012x}",
            send.template,
            rand::random::<u64>() >> 16
        ),
        kind: send.kind,
        template_id,
        segment_id: None,
        topic: send.topic,
        from_name: send.from_name,
        from_email: send.from_email,
        reply_to: send.reply_to,
        send_at: None,
        settings: CampaignSettings {
            utm: send.utm,
            data: send.data,
            ..CampaignSettings::default()
        },
    }
}

/// A template the worker would refuse (syntax, a marketing template without an
/// unsubscribe link, a bad sender) is refused before anything is stored.
pub fn compiles(
    campaign: &NewCampaign,
    template: Template,
    links: &LinkSettings,
) -> Result<(), String> {
    let spec = RenderSpec {
        campaign_id: 0,
        campaign_name: campaign.name.clone(),
        marketing: campaign.kind == CampaignKind::Marketing,
        template,
        from_name: campaign.from_name.clone(),
        from_email: campaign.from_email.clone(),
        reply_to: campaign.reply_to.clone(),
        settings: campaign.settings.clone(),
        links: links.clone(),
    };
    CampaignRenderer::new(spec)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn find_recipient(
    store: &Store,
    email: &str,
    problems: &mut FieldProblems,
) -> Result<Option<Recipient>, StoreError> {
    let email = match EmailAddress::parse(email) {
        Ok(email) => email,
        Err(e) => {
            add_problem(problems, "email", e.to_string());
            return Ok(None);
        }
    };
    let found = store.recipient_by_email(&email).await?;
    if found.is_none() {
        let message = format!("no recipient '{email}': upsert the recipient first");
        add_problem(problems, "email", message);
    }
    Ok(found)
}

fn add_problem(problems: &mut FieldProblems, field: &str, message: String) {
    problems.entry(field.to_string()).or_default().push(message);
}

/// Stores the single-recipient campaign and its delivery, and queues the job that
/// sends it. A send that fails half-way is cancelled, so a retry cannot make it two.
pub async fn enqueue_send(
    store: &Store,
    queue: &JobQueue,
    checked: CheckedSend,
) -> Result<QueuedSend, TriggeredError> {
    let id = store.create_campaign(&checked.campaign).await?;
    if let Err(error) = start(store, queue, id, checked.recipient.id).await {
        if let Err(cancel) = cancel_campaign(store, id).await {
            tracing::error!(campaign_id = id, %cancel, "cannot cancel a half-created triggered send");
        }
        return Err(error);
    }
    tracing::info!(
        campaign_id = id,
        recipient_id = checked.recipient.id,
        "triggered send queued"
    );
    Ok(QueuedSend {
        send_id: id,
        campaign: checked.campaign.name,
        recipient_id: checked.recipient.id,
        status: "queued",
    })
}

async fn start(
    store: &Store,
    queue: &JobQueue,
    id: i64,
    recipient_id: i64,
) -> Result<(), TriggeredError> {
    store.add_delivery(id, recipient_id).await?;
    store
        .transition_campaign(id, &[CampaignStatus::Draft], CampaignStatus::Running)
        .await?;
    queue
        .push_deliver(DeliverBatch { campaign_id: id }, std::time::Duration::ZERO)
        .await
        .map_err(|e| TriggeredError::Queue(e.to_string()))?;
    Ok(())
}

/// How long the first answer for an idempotency key is kept.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// One triggered send under an idempotency key, as both front ends take it.
pub struct KeyedSend<'a> {
    /// Whose keys these are: an API key's id, or an internal scope (the CLI's).
    pub scope: i64,
    pub key: &'a str,
    /// What makes two requests the same message.
    pub request_hash: &'a str,
}

/// What became of a keyed send.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyedOutcome {
    /// Queued now; `answer` (the `QueuedSend` as JSON) is kept for replays.
    Queued { answer: String },
    /// The key was used before for this same request: nothing is sent again.
    Replayed { status: u16, answer: String },
    /// The key was used before for a different request.
    KeyReused,
    /// The first request with this key is still being handled.
    InProgress,
}

/// Queues `checked` unless its key was used within [`IDEMPOTENCY_TTL_SECONDS`]. A failure
/// to queue frees the key again: nothing was sent, so the caller may retry with it.
pub async fn send_once(
    store: &Store,
    queue: &JobQueue,
    keyed: &KeyedSend<'_>,
    checked: CheckedSend,
) -> Result<KeyedOutcome, TriggeredError> {
    let KeyedSend {
        scope,
        key,
        request_hash: hash,
    } = *keyed;
    match store
        .claim_idempotency_key(scope, key, hash, IDEMPOTENCY_TTL_SECONDS)
        .await?
    {
        IdempotencyClaim::Fresh => {}
        IdempotencyClaim::Replay {
            request_hash,
            status,
            body,
        } => {
            return Ok(if request_hash == hash {
                KeyedOutcome::Replayed {
                    status,
                    answer: body,
                }
            } else {
                KeyedOutcome::KeyReused
            });
        }
        IdempotencyClaim::InProgress { request_hash } => {
            return Ok(if request_hash == hash {
                KeyedOutcome::InProgress
            } else {
                KeyedOutcome::KeyReused
            });
        }
    }
    match enqueue_send(store, queue, checked).await {
        Ok(queued) => {
            let answer = serde_json::to_string(&queued).expect("answer serialises");
            store
                .complete_idempotency_key(scope, key, 202, &answer)
                .await?;
            Ok(KeyedOutcome::Queued { answer })
        }
        Err(error) => {
            if let Err(release) = store.release_idempotency_key(scope, key).await {
                tracing::error!(%release, "cannot release an idempotency key");
            }
            Err(error)
        }
    }
}
