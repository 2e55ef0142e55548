//! `mailcast preview`: one real recipient's message as .eml, .html and .txt files.

use super::BaseUrlArg;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::dispatch::CampaignRuntime;
use crate::domain::EmailAddress;
use crate::links::KeyRing;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Campaign name or id.
    #[arg(long)]
    pub campaign: String,
    /// A stored recipient's address.
    #[arg(long)]
    pub recipient: String,
    /// Directory for the files.
    #[arg(long, default_value = "preview")]
    pub out: PathBuf,
    #[command(flatten)]
    pub public: BaseUrlArg,
}

pub async fn run(store: &Store, args: &PreviewArgs) -> anyhow::Result<ExitCode> {
    let campaign = super::campaign::find(store, &args.campaign).await?;
    let email = EmailAddress::parse(&args.recipient).context("--recipient")?;
    let recipient = store
        .recipient_by_email(&email)
        .await?
        .with_context(|| format!("no recipient {email}"))?;
    let keyring = KeyRing::load(store).await.context("link signing keys")?;
    let runtime = CampaignRuntime::load(
        store,
        &args.public.base_url,
        &keyring,
        None,
        campaign.id,
        crate::time::now(),
    )
    .await?;
    let context = runtime
        .contexts(store, vec![recipient], crate::time::now())
        .await?
        .pop()
        .context("no context built")?;
    let rendered = runtime.renderer.render(&context)?;
    let files = crate::render::write_preview(&rendered, &args.out)?;
    println!("subject: {}", rendered.subject);
    let template_id = runtime.rendered_with(&context, None).template_id;
    println!(
        "{}",
        super::personalised::describe(store, template_id, &context).await?
    );
    for path in [files.eml, files.html, files.text] {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
