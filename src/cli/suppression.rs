//! `mailcast suppression list|show|remove`: the addresses never mailed again, why each
//! is there, and taking one off.

use std::process::ExitCode;

use anyhow::Context;

use crate::domain::EmailAddress;
use crate::store::{Store, Suppression};
use crate::time::format_timestamp;

#[derive(Debug, clap::Subcommand)]
pub enum SuppressionCommand {
    /// Suppressed addresses, newest first, with their reasons.
    List {
        /// How many to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// How many of the newest to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Why an address is suppressed: the reason, and the campaign, delivery and SMTP
    /// reply that caused it.
    Show { email: String },
    /// Take an address off the list: later campaigns may mail it again.
    Remove { email: String },
}

pub async fn run(store: &Store, command: SuppressionCommand) -> anyhow::Result<ExitCode> {
    match command {
        SuppressionCommand::List { limit, offset } => list(store, limit, offset).await,
        SuppressionCommand::Show { email } => show(store, &email).await,
        SuppressionCommand::Remove { email } => remove(store, &email).await,
    }
}

async fn list(store: &Store, limit: u32, offset: u32) -> anyhow::Result<ExitCode> {
    let suppressions = store.suppressions(limit.into(), offset.into()).await?;
    if suppressions.is_empty() {
        println!("no suppressed addresses");
    }
    for suppression in &suppressions {
        println!("{}", one_line(suppression));
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, email: &str) -> anyhow::Result<ExitCode> {
    let address = parse(email)?;
    let suppression = store
        .suppression(&address)
        .await?
        .with_context(|| format!("{address} is not on the suppression list"))?;
    print!("{}", described(&address, &suppression));
    Ok(ExitCode::SUCCESS)
}

async fn remove(store: &Store, email: &str) -> anyhow::Result<ExitCode> {
    let address = parse(email)?;
    let removed = store
        .remove_suppression(&address)
        .await?
        .with_context(|| format!("{address} is not on the suppression list"))?;
    println!(
        "{address} removed from the suppression list (was: {}); later campaigns may mail it",
        removed.reason
    );
    Ok(ExitCode::SUCCESS)
}

fn parse(email: &str) -> anyhow::Result<EmailAddress> {
    Ok(EmailAddress::parse(email)?)
}

fn one_line(suppression: &Suppression) -> String {
    let who = suppression
        .email
        .clone()
        .unwrap_or_else(|| format!("(erased) sha256:{}", suppression.email_hash));
    let mut line = format!(
        "{}  {who}  {}",
        format_timestamp(suppression.created_at),
        suppression.reason
    );
    if let Some(campaign) = campaign(suppression) {
        line.push_str(&format!("  [{campaign}]"));
    }
    line
}

fn described(address: &EmailAddress, suppression: &Suppression) -> String {
    let mut text = format!(
        "{address} is suppressed since {}\n  reason    {}\n",
        format_timestamp(suppression.created_at),
        suppression.reason
    );
    if let Some(campaign) = campaign(suppression) {
        text.push_str(&format!("  campaign  {campaign}\n"));
    }
    if let Some(delivery) = suppression.delivery_id {
        text.push_str(&format!("  delivery  {delivery}\n"));
    }
    if let Some(reply) = &suppression.smtp_reply {
        text.push_str(&format!("  reply     {reply}\n"));
    }
    text
}

/// `name (id N)`, or `id N` once the campaign is gone.
fn campaign(suppression: &Suppression) -> Option<String> {
    let id = suppression.campaign_id?;
    Some(match &suppression.campaign {
        Some(name) => format!("{name} (id {id})"),
        None => format!("id {id}, since deleted"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_is_shown_with_its_campaign_delivery_and_reply() {
        let address = EmailAddress::parse("cat@example.com").unwrap();
        let suppression = Suppression {
            email: Some("cat@example.com".into()),
            email_hash: address.hash(),
            reason: "bounce: the receiving server refused the mailbox".into(),
            created_at: 0,
            campaign_id: Some(3),
            campaign: Some("spring sale".into()),
            delivery_id: Some(17),
            smtp_reply: Some("permanent error (550): 5.1.1 no such user".into()),
        };
        let text = described(&address, &suppression);
        assert!(text.contains("campaign  spring sale (id 3)"), "{text}");
        assert!(text.contains("delivery  17"), "{text}");
        assert!(
            text.contains("reply     permanent error (550): 5.1.1"),
            "{text}"
        );
        assert!(one_line(&suppression).ends_with("[spring sale (id 3)]"));
    }
}
