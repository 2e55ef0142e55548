use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::dispatch::{
    JobQueue, Retemplated, cancel_campaign, pause_campaign, requeue_deliveries, resume_campaign,
    retemplate_campaign, schedule_campaign,
};
use crate::domain::{CampaignKind, DeliveryStatus, EmailAddress};
use crate::experiment::{Experiment, ExperimentInput, VariantInput};
use crate::links::KeyRing;
use crate::render::LinkSettings;
use crate::schedule::{LocalSendTime, QuietHours};
use crate::store::{
    Campaign, CampaignSettings, CampaignSummary, NewCampaign, Store, Template, Waiting,
};

#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Store the template in DIR as the newest version of the directory's name.
    /// Campaigns keep the version they were created with (see `campaign retemplate`).
    Load { dir: PathBuf },
}

/// Wherever a command takes CAMPAIGN, it may be the campaign's name or its id
/// (`mailcast campaign list`). A name is looked up first, so a campaign named "2024"
/// stays reachable by name; `#7` always means the id 7.
#[derive(Debug, clap::Subcommand)]
pub enum CampaignCommand {
    /// One line per campaign: id, name, state, sent/total, created, send time.
    List,
    /// Create a draft campaign.
    Create(Box<CreateArgs>),
    /// Schedule a draft: it starts at its send time (now when none), rendering the
    /// template version it was created with (checked now).
    Schedule { name: String },
    /// Move a draft or scheduled campaign to the newest version of its template
    /// (a scheduled one is checked again first).
    Retemplate { name: String },
    /// What the message to one recipient was personalised with, as it was sent.
    Sent {
        name: String,
        /// The recipient's email address.
        #[arg(long)]
        recipient: String,
    },
    /// Counts by delivery state, and who failed or is unknown, with reasons.
    Status { name: String },
    /// Results: deliveries, human and machine opens and clicks, attributed orders and
    /// revenue, top links; an experiment's variants, judgement and uplift.
    Stats {
        name: String,
        #[arg(long, value_enum, default_value = "text")]
        format: super::stats::StatsFormat,
    },
    /// An experiment's test as the winner rule reads it now (rates, 95% intervals,
    /// z against the leader, the decision), and the judgement stored at the end of
    /// the wait, if any. Nothing is stored or sent.
    Judge { name: String },
    /// Stop sending; running workers stop between batches.
    Pause { name: String },
    /// Go on sending a paused campaign.
    Resume { name: String },
    /// Stop for good; deliveries not yet sent stay unsent.
    Cancel { name: String },
    /// Send the failed deliveries again (same Message-ID).
    RetryFailed { name: String },
    /// Send the deliveries whose outcome is unknown again (same Message-ID: the
    /// receiving side can spot a duplicate).
    ResendUnknown { name: String },
}

/// Delivery jobs enqueued when a campaign resumes or re-queues from the CLI.
const CLI_SLOTS: usize = 8;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub name: String,
    /// Name of a stored template (see `mailcast template load`).
    #[arg(long)]
    pub template: String,
    /// Name of a stored segment; every consented recipient when omitted.
    #[arg(long)]
    pub segment: Option<String>,
    /// Topic recipients must be subscribed to.
    #[arg(long)]
    pub topic: Option<String>,
    #[command(flatten)]
    pub sender: super::SenderArgs,
    /// RFC 3339 time to start sending; with --local, a wall time without offset
    /// (2026-12-08T09:00) that each recipient gets in their own time zone.
    #[arg(long)]
    pub send_at: Option<String>,
    /// Send at --send-at in each recipient's time zone, earliest zones first.
    #[arg(long, requires = "send_at")]
    pub local: bool,
    /// Quiet hours for this campaign (`21:00-08:00`), or `off`; the worker's when unset.
    #[arg(long)]
    pub quiet_hours: Option<String>,
    #[arg(long, value_enum, default_value = "marketing")]
    pub kind: KindArg,
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// How long after a human click a purchase is still this campaign's (`5d`).
    #[arg(long)]
    pub attribution_window: Option<String>,
    /// Also attribute a purchase no human click explains to the last message delivered
    /// within this long before it (`1d`); off when not given.
    #[arg(long)]
    pub view_through: Option<String>,
}

/// An A/B/n test: `--variant 'subject=Winter sale' --variant 'subject=Last chance;
/// template=promo-b' --test-share 20% --wait 4h --metric clicks --holdout 5%`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// A variant as `field=value` pairs joined by `;` (subject, preheader, from_name,
    /// template, send_at); unset fields are the campaign's. Two to five; the first is A,
    /// the default sent when no winner is significant.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    /// Test this share of the audience, then send the winner to the rest; without it
    /// every recipient gets one of the variants (a split) and no winner is sent.
    #[arg(long)]
    pub test_share: Option<String>,
    /// How long the test runs before it is judged (default 4h).
    #[arg(long)]
    pub wait: Option<String>,
    /// What the winner is judged on: clicks, opens, conversions or revenue (human
    /// engagement only; default clicks).
    #[arg(long)]
    pub metric: Option<String>,
    /// A share of the audience that gets nothing, to measure uplift against.
    #[arg(long)]
    pub holdout: Option<String>,
}

impl ExperimentArgs {
    fn given(&self) -> bool {
        !self.variants.is_empty()
            || self.test_share.is_some()
            || self.wait.is_some()
            || self.metric.is_some()
            || self.holdout.is_some()
    }

    fn input(&self) -> anyhow::Result<ExperimentInput> {
        let mut variants = Vec::with_capacity(self.variants.len());
        for (index, text) in self.variants.iter().enumerate() {
            let variant = VariantInput::parse_pairs(text)
                .map_err(|e| anyhow::anyhow!("--variant {}: {e}", index + 1))?;
            variants.push(variant);
        }
        Ok(ExperimentInput {
            variants,
            test_share: self.test_share.clone(),
            wait: self.wait.clone(),
            metric: self.metric.clone(),
            holdout: self.holdout.clone(),
        })
    }
}

/// The experiment the arguments describe, checked (None without `--variant` and the
/// other experiment flags).
async fn experiment(store: &Store, args: &CreateArgs) -> anyhow::Result<Option<Experiment>> {
    if !args.experiment.given() {
        return Ok(None);
    }
    if args.local {
        anyhow::bail!(
            "--local: an experiment's variants are sent at --send-at or their own send_at, not at local times"
        );
    }
    let input = args.experiment.input()?;
    match crate::experiment::design::check_in(store, &input).await? {
        Ok(experiment) => Ok(Some(experiment)),
        Err(problems) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            anyhow::bail!("the experiment is refused:\n{}", lines.join("\n"))
        }
    }
}

/// `--attribution-window` and `--view-through` as seconds.
fn windows(args: &CreateArgs) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    let parse = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|t| {
                crate::automation::definition::units::duration(t.trim())
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            })
            .transpose()
    };
    Ok((
        parse("attribution-window", &args.attribution_window)?,
        parse("view-through", &args.view_through)?,
    ))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Marketing,
    Transactional,
}

pub async fn run_template(store: &Store, command: TemplateCommand) -> anyhow::Result<ExitCode> {
    let TemplateCommand::Load { dir } = command;
    let template = crate::render::load_template_dir(&dir)?;
    let stored = store.store_template(&template).await?;
    let (name, version) = (&template.name, stored.version);
    if !stored.is_new {
        println!(
            "template '{name}' unchanged: version {version} (id {})",
            stored.id
        );
    } else {
        println!(
            "template '{name}' stored as version {version} (id {})",
            stored.id
        );
    }
    if stored.is_new && version > 1 {
        println!(
            "campaigns keep the version they were created with; \
             `mailcast campaign retemplate CAMPAIGN` moves one to version {version}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(store: &Store, command: CampaignCommand) -> anyhow::Result<ExitCode> {
    match command {
        CampaignCommand::List => list(store).await,
        CampaignCommand::Create(args) => create(store, *args).await,
        CampaignCommand::Schedule { name } => schedule(store, &name).await,
        CampaignCommand::Retemplate { name } => retemplate(store, &name).await,
        CampaignCommand::Status { name } => status(store, &name).await,
        CampaignCommand::Sent { name, recipient } => {
            super::personalised::sent(store, &name, &recipient).await
        }
        CampaignCommand::Stats { name, format } => super::stats::run(store, &name, format).await,
        CampaignCommand::Judge { name } => {
            super::experiment::judge_now(store, &find(store, &name).await?).await
        }
        CampaignCommand::Pause { name } => {
            let campaign = find(store, &name).await?;
            pause_campaign(store, campaign.id).await?;
            println!("campaign '{}' paused", campaign.name);
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Resume { name } => {
            let campaign = find(store, &name).await?;
            resume_campaign(store, &JobQueue::new(store), campaign.id, CLI_SLOTS).await?;
            println!("campaign '{}' resumed", campaign.name);
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Cancel { name } => {
            let campaign = find(store, &name).await?;
            cancel_campaign(store, campaign.id).await?;
            println!("campaign '{}' cancelled", campaign.name);
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::RetryFailed { name } => {
            requeue(store, &name, DeliveryStatus::Failed).await
        }
        CampaignCommand::ResendUnknown { name } => {
            requeue(store, &name, DeliveryStatus::Unknown).await
        }
    }
}

async fn schedule(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let campaign = find(store, name).await?;
    schedule_campaign(store, &JobQueue::new(store), campaign.id).await?;
    let current = store.template_version(campaign.template_id).await?;
    let newest = store.newest_template_version(campaign.template_id).await?;
    println!(
        "campaign '{name}' scheduled with template version {}; a running `mailcast worker` sends it",
        current.version
    );
    if newest.version > current.version {
        println!(
            "note: template version {} is newer; `mailcast campaign retemplate {name}` moves to it",
            newest.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn retemplate(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let campaign = find(store, name).await?;
    match retemplate_campaign(store, &JobQueue::new(store), campaign.id).await? {
        Retemplated::Unchanged { version } => {
            println!("campaign '{name}' already renders the newest template version ({version})")
        }
        Retemplated::Moved { from, to } => {
            println!("campaign '{name}' moved from template version {from} to {to}")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn requeue(store: &Store, name: &str, from: DeliveryStatus) -> anyhow::Result<ExitCode> {
    let id = find(store, name).await?.id;
    let count = requeue_deliveries(store, &JobQueue::new(store), id, from, CLI_SLOTS).await?;
    println!("campaign '{name}': {count} {from} deliveries queued again");
    Ok(ExitCode::SUCCESS)
}

/// When the campaign starts, and the local wall time it is sent at (--local).
fn send_time(args: &CreateArgs) -> anyhow::Result<(Option<i64>, Option<LocalSendTime>)> {
    let Some(text) = args.send_at.as_deref() else {
        return Ok((None, None));
    };
    if args.local {
        let local: LocalSendTime = text
            .parse()
            .map_err(|e| anyhow::anyhow!("--send-at: {e}"))?;
        return Ok((Some(local.earliest()), Some(local)));
    }
    let at = crate::time::parse_timestamp(text).map_err(|e| anyhow::anyhow!("--send-at: {e}"))?;
    Ok((Some(at), None))
}

/// The campaign CAMPAIGN names: by name first, then by id when it is all digits;
/// `#7` is always the id.
pub(super) async fn find(store: &Store, name: &str) -> anyhow::Result<Campaign> {
    if let Some(id) = name.strip_prefix('#') {
        let id: i64 = id
            .parse()
            .map_err(|_| anyhow::anyhow!("'{name}' is not a campaign id (#7, say)"))?;
        return by_id(store, id)
            .await?
            .with_context(|| format!("no campaign with id {id}"));
    }
    if let Some(campaign) = store.campaign_by_name(name).await? {
        return Ok(campaign);
    }
    if let Ok(id) = name.parse::<i64>() {
        if let Some(campaign) = by_id(store, id).await? {
            return Ok(campaign);
        }
        anyhow::bail!("no campaign named or with id '{name}' (see `mailcast campaign list`)");
    }
    anyhow::bail!("no campaign named '{name}' (see `mailcast campaign list`)")
}

async fn by_id(store: &Store, id: i64) -> anyhow::Result<Option<Campaign>> {
    match store.campaign(id).await {
        Ok(campaign) => Ok(Some(campaign)),
        Err(crate::store::StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let campaigns = store.list_campaigns().await?;
    if campaigns.is_empty() {
        println!("no campaigns yet (`mailcast campaign create`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<24} {:<10} {:>15} {:>7}  {:<25} SEND AT",
        "ID", "NAME", "STATE", "SENT/TOTAL", "FAILED", "CREATED"
    );
    for campaign in campaigns {
        println!("{}", list_line(&campaign));
    }
    Ok(ExitCode::SUCCESS)
}

fn list_line(campaign: &CampaignSummary) -> String {
    let send_at = campaign
        .send_at
        .map(crate::time::format_timestamp)
        .unwrap_or_else(|| "-".into());
    let progress = format!("{}/{}", campaign.sent, campaign.total);
    format!(
        "{:>5}  {:<24} {:<10} {:>15} {:>7}  {:<25} {}",
        campaign.id,
        campaign.name,
        campaign.status,
        progress,
        campaign.failed,
        crate::time::format_timestamp(campaign.created_at),
        send_at
    )
}

async fn create(store: &Store, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let (send_at, local_send_time) = send_time(&args)?;
    let experiment = experiment(store, &args).await?;
    let (attribution_window, view_through_window) = windows(&args)?;
    let template = store
        .template_by_name(&args.template)
        .await?
        .with_context(|| format!("no template named '{}'", args.template))?;
    let template_id = template.id;
    let segment_id = match &args.segment {
        Some(name) => Some(
            store
                .segment_by_name(name)
                .await?
                .with_context(|| format!("no segment named '{name}'"))?
                .id,
        ),
        None => None,
    };
    EmailAddress::parse(&args.sender.from_email).context("--from-email")?;
    if let Some(reply_to) = &args.sender.reply_to {
        EmailAddress::parse(reply_to).context("--reply-to")?;
    }
    if let Some(hours) = args.quiet_hours.as_deref().filter(|h| h.trim() != "off") {
        hours
            .parse::<QuietHours>()
            .map_err(|e| anyhow::anyhow!("--quiet-hours: {e}"))?;
    }
    let campaign = NewCampaign {
        name: args.name.clone(),
        kind: match args.kind {
            KindArg::Marketing => CampaignKind::Marketing,
            KindArg::Transactional => CampaignKind::Transactional,
        },
        template_id,
        segment_id,
        topic: args.topic,
        from_name: args.sender.from_name,
        from_email: args.sender.from_email,
        reply_to: args.sender.reply_to,
        send_at,
        settings: CampaignSettings {
            local_send_time: local_send_time.map(|t| t.to_string()),
            quiet_hours: args.quiet_hours.clone(),
            experiment,
            attribution_window,
            view_through_window,
            ..CampaignSettings::default()
        },
    };
    refuse_what_cannot_render(&campaign, template)?;
    let id = store.create_campaign(&campaign).await?;
    let version = store.template_version(template_id).await?.version;
    println!(
        "campaign '{}' created as a draft (id {id}) with template '{}' version {version}",
        args.name, args.template
    );
    Ok(ExitCode::SUCCESS)
}

/// The template compiled as the worker will: a marketing template without an
/// unsubscribe link, or one that does not compile, is refused here already.
fn refuse_what_cannot_render(campaign: &NewCampaign, template: Template) -> anyhow::Result<()> {
    let template_name = template.name.clone();
    let links = LinkSettings::new("http://localhost".into(), KeyRing::development());
    crate::dispatch::compiles(campaign, template, &links).map_err(|reason| {
        anyhow::anyhow!(
            "campaign '{}' refused: template '{template_name}': {reason}",
            campaign.name
        )
    })
}

async fn status(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let campaign = find(store, name).await?;
    let counts = store.ledger_counts(campaign.id).await?;
    let template = store.template_version(campaign.template_id).await?;
    println!(
        "campaign '{}' is {} (template version {})",
        campaign.name, campaign.status, template.version
    );
    if let Some(reason) = &campaign.pause_reason {
        println!("  paused because {reason}");
    }
    println!(
        "  audience {}: sent {}, pending {}, sending {}, deferred {}, failed {}, suppressed {}, unknown {}, bounced {}",
        counts.total(),
        counts.sent,
        counts.pending,
        counts.sending,
        counts.deferred,
        counts.failed,
        counts.suppressed,
        counts.unknown,
        counts.bounced
    );
    let waiting = store.waiting(campaign.id).await?;
    if waiting != Waiting::default() {
        println!(
            "  waiting: {} for their local send time, {} for quiet hours to end, {} for the frequency cap; {} skipped by the cap",
            waiting.local_time,
            waiting.quiet_hours,
            waiting.capped_deferred,
            waiting.capped_skipped
        );
    }
    let attention = [DeliveryStatus::Failed, DeliveryStatus::Unknown];
    for report in store.deliveries_in(campaign.id, &attention).await? {
        println!(
            "  {:<9} {} (attempts {}): {}",
            report.status,
            report.email,
            report.attempts,
            report.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
