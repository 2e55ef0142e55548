//! `mailcast bounces evaluate`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bounce::{LineEnding, evaluate_dir};

#[derive(Debug, clap::Subcommand)]
pub enum BouncesCommand {
    /// Classify the messages of DIR/mail and compare with DIR/labels.tsv: agreement on
    /// class and recipient, the confusion table and every disagreement.
    Evaluate(EvaluateArgs),
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// A directory holding mail/ (one message per file) and labels.tsv.
    pub dir: PathBuf,
    /// Convert each message to this line-ending convention before classifying it.
    #[arg(long, value_enum, default_value = "lf")]
    pub line_endings: LineEnding,
    /// Classify the corpus this many times, for the throughput figure.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

pub fn run(command: &BouncesCommand) -> anyhow::Result<ExitCode> {
    let BouncesCommand::Evaluate(args) = command;
    let evaluation = evaluate_dir(&args.dir, args.line_endings, args.repeat)?;
    print!("{}", evaluation.render());
    Ok(ExitCode::SUCCESS)
}
