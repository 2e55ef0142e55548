use std::process::ExitCode;

use clap::Parser;

// glibc's malloc took ~14 % of the worker's and the HTTP side's samples (perf, send and
// click benchmarks); mimalloc's thread-local free lists cost less per message.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = mailcast::cli::Cli::parse();
    if !cli.command.is_long_running() {
        end_quietly_on_closed_stdout();
    }
    mailcast::cli::init_tracing(cli.verbose, cli.log_format);
    match mailcast::cli::run(cli).await {
        Ok(code) => code,
        // The reader of our output went away (`mailcast … | head`): nothing to say.
        Err(error) if mailcast::cli::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mailcast: error: {}", mailcast::cli::error_message(&error));
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` into a closed pipe panics with a backtrace.
/// A command whose output is cut off (`mailcast segment sample … | head`) should end
/// as other Unix tools do: silently, by the signal. Servers and workers keep ignoring
/// it, so that a closed pipe on a log never stops them.
fn end_quietly_on_closed_stdout() {
    // SAFETY: called at start, before any thread of ours could be writing to a pipe;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
