//! sluice-cli: the `sluice` command-line tool (binary `sluice`).
//!
//! [`Cli`] is the command line (clap); [`replay`] reads a dead letter written by
//! failure-notifier (its format lives in `sluice_core::lake::dead_letter`), plans and carries out
//! the replay; [`ports`] holds the Kinesis and Lambda ports with their AWS adapters; [`error`]
//! is the crate's error type.

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
