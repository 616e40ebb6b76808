//! The `sluice` command: parse the command line, build SDK clients once, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use sluice_cli::ports::aws_ports;
use sluice_cli::{replay, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay(args) => {
            let (s3, writer, invoker) = aws_ports().await?;
            let report = replay(&s3, &writer, &invoker, &args.into()).await?;
            print!("{}", report.text);
            Ok(())
        }
    }
}
