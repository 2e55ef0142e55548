//! `mailcast send`: a triggered message to one recipient, from a shell or a script.
//! The same idempotency key within 24 hours never sends twice.

use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::{BaseUrlArg, SenderArgs};
use crate::dispatch::{JobQueue, KeyedOutcome, KeyedSend, TriggeredSend, check_send, send_once};
use crate::domain::{CampaignKind, EmailAddress};
use crate::links::KeyRing;
use crate::render::LinkSettings;
use crate::store::Store;

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
    #[command(flatten)]
    pub sender: SenderArgs,
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
    #[command(flatten)]
    pub public: BaseUrlArg,
}

pub async fn run(store: &Store, args: &SendArgs) -> anyhow::Result<ExitCode> {
    let send = triggered_send(args)?;
    let key = args.idempotency_key.trim();
    anyhow::ensure!(
        !key.is_empty() && key.len() <= 255,
        "--idempotency-key must have 1 to 255 characters"
    );
    let keyring = KeyRing::load(store).await.context("link signing keys")?;
    let links = LinkSettings::new(args.public.base_url.clone(), keyring);
    let checked = check_send(store, &links, send).await?;
    let hash = request_hash(args);
    let keyed = KeyedSend {
        scope: store.internal_scope(CLI_SCOPE).await?,
        key,
        request_hash: &hash,
    };
    match send_once(store, &JobQueue::new(store), &keyed, checked).await? {
        KeyedOutcome::Queued { answer } => println!("{answer}"),
        KeyedOutcome::Replayed { answer, .. } => {
            println!("{answer}");
            eprintln!("idempotency key '{key}' was used already: nothing sent again");
        }
        KeyedOutcome::KeyReused => anyhow::bail!(
            "idempotency key '{key}' was already used for a different message; use a new key"
        ),
        KeyedOutcome::InProgress => anyhow::bail!(
            "a send with idempotency key '{key}' is still being queued; retry shortly"
        ),
    }
    Ok(ExitCode::SUCCESS)
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
        from_email: args.sender.from_email.clone(),
        from_name: args.sender.from_name.clone(),
        reply_to: args.sender.reply_to.clone(),
        kind: args.kind,
        topic: args.topic.clone(),
        utm: Default::default(),
        data,
    })
}

/// What makes two invocations the same message (the base URL does not).
fn request_hash(args: &SendArgs) -> String {
    let canonical = serde_json::json!({
        "template": args.template, "to": address_key(&args.to),
        "from_email": args.sender.from_email, "from_name": args.sender.from_name,
        "reply_to": args.sender.reply_to, "kind": args.kind.as_str(), "topic": args.topic,
        "data": args.data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
    });
    hex::encode(Sha256::digest(canonical.to_string()))
}

/// Every spelling of one mailbox is one request; an invalid address is refused later.
fn address_key(to: &str) -> String {
    EmailAddress::parse(to)
        .map(|address| address.key())
        .unwrap_or_else(|_| to.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        send: SendArgs,
    }

    fn args(to: &str) -> SendArgs {
        let argv = ["mailcast", "--template", "receipt", "--to", to];
        let rest = [
            "--from-email",
            "orders@shop.example.com",
            "--idempotency-key",
            "k",
        ];
        Cli::parse_from(argv.into_iter().chain(rest)).send
    }

    #[test]
    fn every_spelling_of_the_address_is_the_same_request() {
        let composed = request_hash(&args("jos\u{e9}@ex\u{e4}mple.com"));
        let decomposed = request_hash(&args("Jose\u{301}@xn--exmple-cua.COM"));
        assert_eq!(composed, decomposed);
        assert_ne!(composed, request_hash(&args("maria@example.com")));
    }
}
