//! sluice-cli: the `sluice` command-line tool (binary `sluice`).
//!
//! [`Cli`] is the command line (clap); [`check`] validates a pipeline config and compares it
//! with the live Glue and PostgreSQL tables; [`replay`] reads a dead letter written by
//! failure-notifier (its format lives in `sluice_core::lake::dead_letter`), plans and carries out
//! the replay; [`ports`] holds the Kinesis and Lambda ports with their AWS adapters; [`error`]
//! is the crate's error type.

pub mod check;
pub mod error;
pub mod ports;
pub mod replay;

use clap::{Args, Parser, Subcommand};

pub use error::{Error, Result};
pub use replay::{replay, Plan, ReplayOptions, Report};

/// The `sluice` command line.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "Operate a sluice pipeline")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a dead letter: put Kinesis records back into their stream, or re-invoke the
    /// function of a failed asynchronous invocation with its original event.
    Replay(ReplayArgs),
    /// Validate a pipeline config offline and, with --glue / --postgres, compare it with the
    /// live tables it would change: new columns, widenings, and changes the functions would
    /// refuse (exit status 1).
    #[command(
        after_help = "Exit status: 0 valid and nothing refused; 1 an invalid config, a refused change, or an error; 2 a usage error.\n\nExamples:\n  sluice check pipeline.toml\n  sluice check s3://my-bucket/config/pipeline.toml --glue\n  sluice check pipeline.toml --postgres \"host=db.example.com user=sluice dbname=sluice\" --json"
    )]
    Check(CheckArgs),
    /// Print a shell completion script, e.g. `sluice completions bash > ~/.local/share/bash-completion/completions/sluice`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script of `shell` for the `sluice` command line.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "sluice", out);
}

/// Arguments of `sluice check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pipeline config: a path or s3://bucket/key.
    #[arg(default_value = "pipeline.toml")]
    pub config: String,
    /// Compare with the curated tables in the config's Glue database (AWS credentials, region
    /// and AWS_ENDPOINT_URL from the environment, as for every AWS tool).
    #[arg(long)]
    pub glue: bool,
    /// Compare with the tables in the config's PostgreSQL schema at this connection string
    /// (libpq style; TLS verified against the system roots unless sslmode=disable).
    #[arg(long, value_name = "CONNECTION")]
    pub postgres: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sluice replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The dead letter, e.g. s3://bucket/dead-letter/kinesis/<stream>/<shard>/<start>-<end>.json.gz
    pub uri: String,
    /// Show what would be sent without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Put Kinesis records into this stream (name or ARN) instead of their own.
    #[arg(long)]
    pub stream: Option<String>,
    /// Invoke this function (name or ARN) instead of the one that failed.
    #[arg(long)]
    pub function: Option<String>,
    /// The dead-letter prefix of the bucket.
    #[arg(
        long,
        env = sluice_core::env::DEAD_LETTER_PREFIX,
        default_value = "dead-letter/"
    )]
    pub dead_letter_prefix: String,
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(a: ReplayArgs) -> Self {
        ReplayOptions {
            uri: a.uri,
            dry_run: a.dry_run,
            stream: a.stream,
            function: a.function,
            dead_letter_prefix: a.dead_letter_prefix,
        }
    }
}
