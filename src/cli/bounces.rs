//! `mailcast bounces evaluate`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bounce::{DEFAULT_PREFIX, LineEnding, ReturnPath, evaluate_dir};

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

/// `--bounce-domain` and `--bounce-prefix`: where bounces of the messages sent go.
#[derive(Debug, Clone, clap::Args)]
pub struct ReturnPathArgs {
    /// Send every message with the envelope sender PREFIX+TOKEN@DOMAIN, TOKEN naming
    /// its delivery (signed with the link keys), so each bounce finds its delivery.
    /// Without it, the envelope sender is the campaign's sender address.
    #[arg(long, env = "MAILCAST_BOUNCE_DOMAIN")]
    pub bounce_domain: Option<String>,
    /// The local part before the `+TOKEN` of the return path.
    #[arg(long, env = "MAILCAST_BOUNCE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub bounce_prefix: String,
}

impl ReturnPathArgs {
    pub fn return_path(&self) -> anyhow::Result<Option<ReturnPath>> {
        self.bounce_domain
            .as_deref()
            .map(|domain| ReturnPath::new(&self.bounce_prefix, domain))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--bounce-domain/--bounce-prefix: {e}"))
    }
}
