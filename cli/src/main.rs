//! The `sluice` command: parse the command line, build SDK clients once, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use sluice_cli::check::run_check;
use sluice_cli::ports::aws_ports;
use sluice_cli::{replay, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => {
            let (s3, writer, invoker) = aws_ports().await?;
            let report = replay(&s3, &writer, &invoker, &args.into()).await?;
            print!("{}", report.text);
        }
        Command::Check(a) => {
            let report = run_check(&a.config, a.glue, a.postgres.as_deref()).await?;
            match a.json {
                true => println!("{}", serde_json::to_string_pretty(&report)?),
                false => print!("{}", report.text()),
            }
            return Ok(ExitCode::from(u8::from(report.refused() > 0)));
        }
        Command::Completions { shell } => sluice_cli::completions(shell, &mut std::io::stdout()),
    }
    Ok(ExitCode::SUCCESS)
}
