//! `mailcast experiment simulate`: the winner rule against the naive one, on simulated
//! tests whose true rates are known.

use std::process::ExitCode;

use crate::experiment::simulate::{self, SimulationConfig};

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
