//! `mailcast experiment simulate`: the winner rule against the naive one, on simulated
//! tests whose true rates are known.

use std::process::ExitCode;

use std::fmt::Write as _;

use crate::experiment::Experiment;
use crate::experiment::judge::{self, Decision, Judgement};
use crate::experiment::simulate::{self, SimulationConfig};
use crate::store::{Campaign, Store};

#[derive(Debug, clap::Subcommand)]
pub enum ExperimentCommand {
    /// Simulate many tests per scenario (equal variants, a better variant, link
    /// scanners clicking every link of one variant) and report how often each rule
    /// declares a winner, picks the truly best variant, or picks a wrong one.
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Simulated tests per scenario.
    #[arg(long, default_value_t = 2_000)]
    pub runs: u32,
    /// Recipients per variant in each test.
    #[arg(long, default_value_t = 10_000)]
    pub per_arm: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: &ExperimentCommand) -> anyhow::Result<ExitCode> {
    let ExperimentCommand::Simulate(args) = command;
    if args.runs == 0 || args.per_arm < 100 {
        anyhow::bail!("--runs must be at least 1 and --per-arm at least 100 (the rule's minimum)");
    }
    let config = SimulationConfig {
        runs: args.runs,
        seed: args.seed,
    };
    let reports: Vec<_> = simulate::standard_scenarios(args.per_arm)
        .iter()
        .map(|scenario| simulate::run(scenario, &config))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", simulate::report_text(&reports));
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailcast campaign judge NAME`: the rule applied to the test's figures as they are.
pub async fn judge_now(store: &Store, campaign: &Campaign) -> anyhow::Result<ExitCode> {
    let Some(experiment) = &campaign.settings.0.experiment else {
        anyhow::bail!("campaign '{}' has no experiment", campaign.name);
    };
    let metric = experiment.metric();
    let samples = store
        .experiment_samples(campaign.id, metric, experiment.variants.len())
        .await?;
    let judgement = judge::judge(metric, &samples);
    print!("{}", judgement_text(&judgement));
    match store.judgement(campaign.id).await? {
        Some(stored) => println!(
            "stored judgement ({}): {}; variant {} went to the rest",
            crate::time::format_timestamp(stored.judged_at),
            stored
                .winner
                .map(|w| format!("winner {}", Experiment::label(w as usize)))
                .unwrap_or_else(|| "no significant winner".into()),
            Experiment::label(stored.sent_variant as usize)
        ),
        None if experiment.picks_a_winner() => {
            println!("not judged yet: the judge job decides when the wait is over")
        }
        None => println!("a split: no winner is sent, the figures are measured"),
    }
    Ok(ExitCode::SUCCESS)
}

fn judgement_text(judgement: &Judgement) -> String {
    let mut out = format!("{}\n", judgement.rule);
    let _ = writeln!(
        out,
        "{:<8} {:>10} {:>12} {:>21} {:>8}",
        "VARIANT",
        "RECIPIENTS",
        judgement.metric.name().to_uppercase(),
        "95% INTERVAL",
        "Z"
    );
    for (arm, z) in judgement.arms.iter().zip(&judgement.z_scores) {
        let z = z
            .map(|z| format!("{z:.2}"))
            .unwrap_or_else(|| "leader".into());
        let _ = writeln!(
            out,
            "{:<8} {:>10} {:>12.4} {:>10.4} to {:<8.4} {:>8}",
            Experiment::label(arm.variant),
            arm.recipients,
            arm.value,
            arm.low,
            arm.high,
            z
        );
    }
    let decision = match &judgement.decision {
        Decision::Winner { variant } => format!(
            "winner now: {} (z of at least {:.2} against every other variant)",
            Experiment::label(*variant),
            judgement.threshold
        ),
        Decision::NoSignificantWinner { reason } => format!("no significant winner now: {reason}"),
    };
    let _ = writeln!(out, "{decision}");
    out
}
