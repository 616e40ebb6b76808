//! The `sluice` command: parse the command line, build SDK clients once, run the subcommand.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice_cli::ports::{KinesisWriter, LambdaInvoker};
use sluice_cli::{replay, Cli, Command};

/// Upper bound on one Kinesis or Lambda call attempt, so the command never hangs.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
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
            let sdk = sluice_core::aws::sdk_config().await;
            let s3 = sluice_core::aws::s3_client(&sdk)?;
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build();
            let kinesis = aws_sdk_kinesis::config::Builder::from(&sdk)
                .timeout_config(timeouts.clone())
                .build();
            let lambda = aws_sdk_lambda::config::Builder::from(&sdk)
                .timeout_config(timeouts)
                .build();
            let writer = KinesisWriter(aws_sdk_kinesis::Client::from_conf(kinesis));
            let invoker = LambdaInvoker(aws_sdk_lambda::Client::from_conf(lambda));
            let report = replay(&s3, &writer, &invoker, &args.into()).await?;
            print!("{}", report.text);
            Ok(())
        }
    }
}
