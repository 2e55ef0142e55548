use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = mailcast::cli::Cli::parse();
    mailcast::cli::init_tracing(cli.verbose);
    match mailcast::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mailcast: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
