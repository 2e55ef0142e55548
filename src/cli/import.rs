//! `mailcast import`: the command line over `crate::import`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::import::{ImportKind, ImportOptions, import_file};
use crate::store::Store;

/// `mailcast import recipients|products|events FILE [--strict]`
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    pub kind: ImportKind,
    /// A .csv, .jsonl or .ndjson file (formats: FORMATS.md).
    pub file: PathBuf,
    /// Import nothing unless every row is valid.
    #[arg(long)]
    pub strict: bool,
    /// Rows written per transaction (each a COPY or one statement: larger batches
    /// spread each commit's cost over more rows).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
}

impl ImportArgs {
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            strict: self.strict,
            batch_size: self.batch_size as usize,
            progress: true,
            ..ImportOptions::default()
        }
    }
}

/// Runs the import, prints the rejected rows (stderr) and the summary line (stdout).
/// Exit code 2 when rows were rejected.
pub async fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let report = import_file(store, args.kind, &args.file, &args.options()).await?;
    report.write_errors(&mut std::io::stderr().lock())?;
    writeln!(std::io::stdout().lock(), "{}", report.summary_line())?;
    Ok(report.exit_code())
}
