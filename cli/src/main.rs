//! `logs-sse`: follow Datashop log channels from a terminal (`tail`) and
//! put a job's output on a log page (`publish`).
//!
//! Layout: `args` parses the command line; `tail` (network loop) with
//! `follow` (resume cursors, pure) and `render` (line format); `publish`
//! (stdin, batching, retries) with `batch` (items and bodies, pure);
//! `http` (client, error bodies), `backoff`, `exit` (documented exit codes).

mod args;
mod backoff;
mod batch;
mod exit;
mod follow;
mod http;
mod publish;
mod render;
mod tail;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("logs-sse: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("logs-sse: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let base = http::base_url(&cli.gateway)?;
    let token = cli.token.filter(|t| !t.is_empty());
    match cli.command {
        Command::Tail(args) => {
            let options = args.into_options(base, token)?;
            tokio::select! {
                result = tail::run(options) => result,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Publish(args) => publish::run(args.into_options(base, token)).await,
    }
}
