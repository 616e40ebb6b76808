//! The `sluice` command: parse the command line and run it ([`sluice_cli::run`]).

use std::process::ExitCode;

use clap::Parser;
use sluice_cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match sluice_cli::run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
