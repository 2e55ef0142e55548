//! What a message is personalised with, printed the same way before sending
//! (`mailcast preview`) and after (`mailcast campaign sent`).

use std::process::ExitCode;

use anyhow::Context;

use crate::dispatch::{AsSent, as_sent};
use crate::domain::EmailAddress;
use crate::render::{RecipientContext, recommendation_line};
use crate::store::Store;

/// The template version, declared segments matched, recommendations and cart.
pub async fn describe(
    store: &Store,
    template_id: i64,
    context: &RecipientContext,
) -> anyhow::Result<String> {
    let template = store.template(template_id).await?;
    let version = store.template_version(template_id).await?.version;
    let mut lines = vec![format!("template: {} version {version}", template.name)];
    let segments = match context.segments.is_empty() {
        true => "none".to_string(),
        false => context.segments.join(", "),
    };
    lines.push(format!("segments: {segments}"));
    if !context.recommendations.is_empty() {
        lines.push("recommendations:".into());
        for (rank, item) in context.recommendations.iter().enumerate() {
            lines.push(recommendation_line(rank + 1, item));
        }
    }
    if !context.cart.is_empty() {
        lines.push("cart:".into());
        for p in &context.cart {
            lines.push(format!("  {} {}", p.sku, p.name));
        }
    }
    Ok(lines.join("\n"))
}

/// `mailcast campaign sent CAMPAIGN --recipient EMAIL`.
pub async fn sent(store: &Store, name: &str, recipient: &str) -> anyhow::Result<ExitCode> {
    let campaign = super::campaign::find(store, name).await?;
    let email = EmailAddress::parse(recipient).context("--recipient")?;
    let recipient = store
        .recipient_by_email(&email)
        .await?
        .with_context(|| format!("no recipient {email}"))?;
    match as_sent(store, &campaign, recipient.id).await? {
        AsSent::NoDelivery => {
            println!("campaign '{}' has no delivery to {email}", campaign.name);
            Ok(ExitCode::FAILURE)
        }
        AsSent::NotSent(delivery) => {
            println!("not sent yet: the delivery is {}", delivery.status);
            Ok(ExitCode::FAILURE)
        }
        AsSent::DataGone(delivery) => {
            println!(
                "{}: the recipient's data as it was then is no longer kept",
                delivery.status
            );
            Ok(ExitCode::FAILURE)
        }
        AsSent::Sent {
            delivery,
            record,
            context,
        } => {
            let handed = delivery.handed_at.map(crate::time::format_timestamp);
            println!(
                "{} (handed to SMTP {})",
                delivery.status,
                handed.as_deref().unwrap_or("at an unknown time")
            );
            println!("{}", describe(store, record.template_id, &context).await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
