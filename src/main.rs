use std::process::ExitCode;

use clap::Parser;

// glibc's malloc took ~14 % of the worker's and the HTTP side's samples (perf, send and
// click benchmarks); mimalloc's thread-local free lists cost less per message.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
