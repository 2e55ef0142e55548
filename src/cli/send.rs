//! `mailcast send`: a triggered message to one recipient, from a shell or a script.
//! The same idempotency key within 24 hours never sends twice.

use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::dispatch::{JobQueue, TriggeredSend, check_send, enqueue_send};
use crate::domain::CampaignKind;
use crate::links::KeyRing;
use crate::render::LinkSettings;
use crate::store::{IdempotencyClaim, Store};

/// How long the first outcome for a key is kept, as for `POST /api/sends`.
const KEY_TTL_SECONDS: i64 = 24 * 3600;
/// Idempotency keys given on the command line live apart from every API key's.
const CLI_SCOPE: &str = "mailcast-cli";

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Name of a stored template.
    #[arg(long)]
    pub template: String,
    /// The recipient's address (the recipient must exist).
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub from_email: String,
    #[arg(long, default_value = "")]
    pub from_name: String,
    #[arg(long)]
    pub reply_to: Option<String>,
    /// `transactional` ignores marketing opt-outs (never suppressions); `marketing`
    /// needs an unsubscribe link and the recipient's consent.
    #[arg(long, default_value = "transactional")]
    pub kind: CampaignKind,
    /// Topic the recipient must be subscribed to.
    #[arg(long)]
    pub topic: Option<String>,
    /// A JSON object the template sees as `data` (`{"order": "A-1001"}`).
    #[arg(long)]
    pub data: Option<String>,
    /// A unique value per message, reused when retrying: the same key never sends twice.
    #[arg(long)]
    pub idempotency_key: String,
    /// Base URL of the HTTP side, for the links the template check signs.
    #[arg(
        long,
        env = "MAILCAST_BASE_URL",
        default_value = "http://localhost:8080"
    )]
    pub base_url: String,
}

pub async fn run(store: &Store, args: &SendArgs) -> anyhow::Result<ExitCode> {
    let send = triggered_send(args)?;
    let key = args.idempotency_key.trim();
    anyhow::ensure!(
        !key.is_empty() && key.len() <= 255,
        "--idempotency-key must have 1 to 255 characters"
    );
    let hash = request_hash(args);
    let scope = store.internal_scope(CLI_SCOPE).await?;
    match store
        .claim_idempotency_key(scope, key, &hash, KEY_TTL_SECONDS)
        .await?
    {
        IdempotencyClaim::Fresh => {}
        IdempotencyClaim::Replay {
            request_hash, body, ..
        } => return replay(key, &hash, &request_hash, &body),
        IdempotencyClaim::InProgress { .. } => anyhow::bail!(
            "a send with idempotency key '{key}' is still being queued; retry shortly"
        ),
    }
    match queue(store, send, &args.base_url).await {
        Ok(answer) => {
            store
                .complete_idempotency_key(scope, key, 202, &answer)
                .await?;
            println!("{answer}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            // Nothing was queued: the same key may be used again.
            store.release_idempotency_key(scope, key).await?;
            Err(error)
        }
    }
}

fn triggered_send(args: &SendArgs) -> anyhow::Result<TriggeredSend> {
    let data = match &args.data {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text)
            .with_context(|| format!("--data is not valid JSON: {text}"))?
        {
            serde_json::Value::Object(map) => map,
            _ => anyhow::bail!("--data must be a JSON object, such as {{\"order\": \"A-1001\"}}"),
        },
    };
    Ok(TriggeredSend {
        template: args.template.clone(),
        email: args.to.clone(),
        from_email: args.from_email.clone(),
        from_name: args.from_name.clone(),
        reply_to: args.reply_to.clone(),
        kind: args.kind,
        topic: args.topic.clone(),
        utm: Default::default(),
        data,
    })
}

async fn queue(store: &Store, send: TriggeredSend, base_url: &str) -> anyhow::Result<String> {
    let keyring = KeyRing::from_env_or_dev().context("link signing keys")?;
    let links = LinkSettings::new(base_url.to_string(), keyring);
    let checked = check_send(store, &links, send).await?;
    let queued = enqueue_send(store, &JobQueue::new(store), checked).await?;
    Ok(serde_json::to_string(&queued)?)
}

fn replay(key: &str, hash: &str, stored_hash: &str, body: &str) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        hash == stored_hash,
        "idempotency key '{key}' was already used for a different message; use a new key"
    );
    println!("{body}");
    eprintln!("idempotency key '{key}' was used already: nothing sent again");
    Ok(ExitCode::SUCCESS)
}

/// What makes two invocations the same message (the base URL does not).
fn request_hash(args: &SendArgs) -> String {
    let canonical = serde_json::json!({
        "template": args.template, "to": args.to.trim().to_lowercase(),
        "from_email": args.from_email, "from_name": args.from_name,
        "reply_to": args.reply_to, "kind": args.kind.as_str(), "topic": args.topic,
        "data": args.data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
    });
    hex::encode(Sha256::digest(canonical.to_string()))
}
