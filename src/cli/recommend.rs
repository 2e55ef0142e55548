//! `mailcast recommend evaluate|show`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::domain::EmailAddress;
use crate::recommend::{Evaluation, RecommendOptions, Recommender, evaluate, evaluate_fixtures};
use crate::render::recommendation_line;
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum RecommendCommand {
    /// Hold out each buyer's last purchase and compare hit-rate@N of the recommender
    /// with the popularity baseline.
    Evaluate(EvaluateArgs),
    /// A recipient's recommendations with their reasons, and their cart.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Products per recipient (N).
    #[arg(long, default_value_t = 4)]
    pub count: usize,
    /// Interactions lose half their weight every this many days.
    #[arg(long, default_value_t = 60.0)]
    pub half_life_days: f64,
}

impl ModelArgs {
    fn options(&self) -> RecommendOptions {
        RecommendOptions {
            count: self.count,
            half_life_days: self.half_life_days,
            ..RecommendOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Evaluate on the recipients.csv, products.csv and events.jsonl in DIR,
    /// imported into a temporary SQLite database (--database is not touched).
    /// Without it, evaluate on the --database store.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The recipient's email address.
    #[arg(long)]
    pub recipient: String,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Opens `database` only when the command needs it: `evaluate --fixtures` works
/// on a temporary database of its own.
pub async fn run(database: &str, command: &RecommendCommand) -> anyhow::Result<ExitCode> {
    if let RecommendCommand::Evaluate(args) = command
        && let Some(dir) = &args.fixtures
    {
        let evaluation = evaluate_fixtures(dir, &args.model.options()).await?;
        print!("{}", report(&evaluation));
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(database).await?;
    let code = match command {
        RecommendCommand::Evaluate(args) => run_evaluate(&store, args).await,
        RecommendCommand::Show(args) => run_show(&store, args).await,
    };
    store.close().await;
    code
}

async fn run_evaluate(store: &Store, args: &EvaluateArgs) -> anyhow::Result<ExitCode> {
    let evaluation = evaluate(store, &args.model.options()).await?;
    print!("{}", report(&evaluation));
    Ok(ExitCode::SUCCESS)
}

/// The evaluation as printed: both hit rates, with counts.
pub fn report(e: &Evaluation) -> String {
    format!(
        "held out the last purchase of {buyers} buyers (model as of {now})\n\
         hit-rate@{k}  recommender  {model:.4}  ({mh}/{buyers})\n\
         hit-rate@{k}  popularity   {base:.4}  ({bh}/{buyers})\n",
        buyers = e.buyers,
        now = crate::time::format_timestamp(e.now),
        k = e.k,
        model = e.model_hit_rate(),
        mh = e.model_hits,
        base = e.baseline_hit_rate(),
        bh = e.baseline_hits,
    )
}

async fn run_show(store: &Store, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(&args.recipient)
        .map_err(|e| anyhow::anyhow!("--recipient '{}': {e}", args.recipient))?;
    let ids = store.recipient_ids(&[email.key().as_str()]).await?;
    let id = *ids
        .values()
        .next()
        .with_context(|| format!("no recipient {}", email.as_str()))?;
    let options = args.model.options();
    let model = Recommender::build_with(store, crate::time::now(), options.clone()).await?;
    let histories = store.histories(&[id]).await?;
    let history = histories.get(&id).cloned().unwrap_or_default();
    println!("recommendations for {}:", email.as_str());
    for (rank, item) in model
        .for_recipient(&history, options.count)
        .iter()
        .enumerate()
    {
        println!("{}", recommendation_line(rank + 1, item));
    }
    let cart = model.cart(&history);
    if !cart.is_empty() {
        println!("cart:");
        for p in cart {
            println!("  {} {}", p.sku, p.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
