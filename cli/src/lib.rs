//! sluice-cli: the `sluice` command-line tool (binary `sluice`).
//!
//! [`Cli`] is the command line (clap) and [`run`] carries it out. [`check`] validates a
//! pipeline config and compares it with the live Glue and PostgreSQL tables; [`status`] reports
//! each dataset's freshness and recent failures from the lake; [`quarantine`] lists, shows and
//! requeues quarantined records; [`backfill`] runs s3-transform over a time range of raw again;
//! [`replay`] reads a dead letter written by failure-notifier (its
//! format lives in `sluice_core::lake::dead_letter`), plans and carries out the replay; [`ports`]
//! holds the Kinesis and Lambda ports with their AWS adapters; [`notes`] the JSON notes the CLI
//! keeps beside objects; [`when`] and [`table`] parse times and print tables; [`error`] is the
//! crate's error type.

pub mod backfill;
pub mod check;
pub mod error;
pub mod notes;
pub mod ports;
pub mod quarantine;
pub mod replay;
pub mod status;
pub mod table;
pub mod when;

use std::process::ExitCode;

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
    /// function of a failed asynchronous invocation with its original event. Once: a second
    /// replay of the same dead letter sends nothing unless --force.
    #[command(
        after_help = "Exit status: 0 sent (or already replayed); 1 an error; 2 a usage error.\n\nExamples:\n  sluice replay s3://my-lake/dead-letter/kinesis/sluice-events/shardId-000000000000/4959…-4959….json.gz --dry-run\n  sluice replay s3://my-lake/dead-letter/s3-transform/…/e4b46cbf-b738-4a8e-8880-a18cdf61200e.json\n\n(sluice status lists the dead letters not replayed yet.)"
    )]
    Replay(ReplayArgs),
    /// Validate a pipeline config offline and, with --glue / --postgres, compare it with the
    /// live tables it would change: new columns, widenings, and changes the functions would
    /// refuse (exit status 1).
    #[command(
        after_help = "Exit status: 0 valid and nothing refused; 1 an invalid config, a refused change, or an error; 2 a usage error.\n\nExamples:\n  sluice check pipeline.toml\n  sluice check s3://my-bucket/config/pipeline.toml --glue\n  sluice check pipeline.toml --postgres \"host=db.example.com user=sluice dbname=sluice\" --json"
    )]
    Check(CheckArgs),
    /// Per dataset: the newest event time in raw, curated and PostgreSQL, objects and bytes in
    /// the last hour, records quarantined in the last 24 hours by kind; and the dead letters not
    /// yet replayed.
    #[command(
        after_help = "Exit status: 0 the report was printed; 1 an error; 2 a usage error.\n\nExamples:\n  sluice status --bucket my-lake\n  sluice status --bucket my-lake --dataset purchases --postgres \"host=db.example.com user=sluice dbname=sluice\"\n  SLUICE_BUCKET=my-lake sluice status --json"
    )]
    Status(StatusArgs),
    /// List, show and requeue quarantined records.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineCommand,
    },
    /// Run s3-transform again over the raw objects of a dataset and time range (after a schema
    /// or PII-rule change): here against the bucket and PostgreSQL (--local), or by invoking
    /// the deployed function asynchronously (--function). Idempotent and resumable.
    #[command(
        after_help = "Exit status: 0 every object done (or already done); 1 some failed (they stay out of the checkpoint), or an error; 2 a usage error.\n\nExamples:\n  sluice backfill --bucket my-lake --dataset purchases --from 2026-11-27 --to 2026-12-04 --function sluice-s3-transform --dry-run\n  sluice backfill --bucket my-lake --dataset purchases --from 7d --function sluice-s3-transform --parallel 8\n  SLUICE_HMAC_KEY=… sluice backfill --bucket my-lake --dataset purchases --from 2026-12-04T00 --to 2026-12-04T06 --local --postgres \"host=db.example.com user=sluice dbname=sluice\""
    )]
    Backfill(BackfillArgs),
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

/// `sluice quarantine` subcommands.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Count quarantined records by dataset, kind and hour (and list whole objects set aside).
    #[command(
        after_help = "Examples:\n  sluice quarantine list --bucket my-lake\n  sluice quarantine list --bucket my-lake --dataset purchases --kind wrong_type --from 2026-12-04T08 --to 2026-12-04T12"
    )]
    List {
        #[command(flatten)]
        select: SelectArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the records of one quarantine object, with their reasons and decoded payloads.
    /// Payloads are the records as received: they may hold personal data.
    #[command(
        after_help = "Example:\n  sluice quarantine show s3://my-lake/quarantine/purchases/…/shardId-000000000000-4959…-4959….json.gz --line 3\n\n(quarantine list prints the URI of the first record of each group.)"
    )]
    Show {
        /// The quarantine object, s3://bucket/key (as `list` prints it).
        uri: String,
        /// Only this 1-based line.
        #[arg(long)]
        line: Option<usize>,
        /// The zone prefix of the quarantine.
        #[arg(long, env = sluice_core::env::QUARANTINE_PREFIX, default_value = "quarantine/")]
        quarantine_prefix: String,
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put selected quarantined records back into the stream with their original partition
    /// keys (after the config has been fixed). A record is sent once: the lines sent are noted
    /// beside their object, and a second run skips them.
    #[command(
        after_help = "Exit status: 0 every selected record was sent (or already had been); 1 an error; 2 a usage error.\n\nExamples:\n  sluice quarantine requeue --bucket my-lake --stream sluice-events --dataset purchases --kind wrong_type --dry-run\n  sluice quarantine requeue --bucket my-lake --stream sluice-events --dataset purchases --kind wrong_type"
    )]
    Requeue {
        #[command(flatten)]
        select: SelectArgs,
        /// The stream to put the records into (name or ARN).
        #[arg(long, env = sluice_core::env::STREAM)]
        stream: String,
        /// Show what would be sent without sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which quarantined records: bucket, dataset, kinds and hours.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// The data bucket.
    #[arg(long, env = sluice_core::env::BUCKET)]
    pub bucket: String,
    /// Only this dataset (`_unrouted` for records that matched none).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only this kind (repeatable), e.g. wrong_type, missing_field, invalid_json.
    #[arg(long = "kind", value_parser = quarantine::parse_kind)]
    pub kinds: Vec<sluice_core::lake::quarantine::RejectKind>,
    /// From this time: an age (90m, 24h, 7d), a date, an hour (2026-12-04T13) or RFC 3339, UTC.
    #[arg(long, default_value = "24h", value_parser = when::checked)]
    pub from: String,
    /// Up to this time (same forms).
    #[arg(long, default_value = "now", value_parser = when::checked)]
    pub to: String,
}

impl SelectArgs {
    /// The selection, times resolved against `now`.
    pub fn selection(&self, now: i64) -> Result<quarantine::Selection> {
        Ok(quarantine::Selection {
            dataset: self.dataset.clone(),
            kinds: self.kinds.clone(),
            span: when::Span::parse(&self.from, &self.to, now).map_err(Error::Usage)?,
        })
    }
}

/// Arguments of `sluice backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The pipeline config: a path or s3://bucket/key (the deployed one, for --function).
    #[arg(long, env = sluice_core::env::CONFIG, default_value = "pipeline.toml")]
    pub config: String,
    /// The data bucket.
    #[arg(long, env = sluice_core::env::BUCKET)]
    pub bucket: String,
    /// The dataset.
    #[arg(long)]
    pub dataset: String,
    /// From this event hour: an age (90m, 24h, 7d), a date, an hour (2026-12-04T13) or RFC 3339, UTC.
    #[arg(long, value_parser = when::checked)]
    pub from: String,
    /// Up to this time (same forms).
    #[arg(long, default_value = "now", value_parser = when::checked)]
    pub to: String,
    /// Invoke this deployed s3-transform (name or ARN) asynchronously, once per raw object.
    #[arg(long, conflicts_with = "local", required_unless_present = "local")]
    pub function: Option<String>,
    /// Transform here, with s3-transform's own code, writing to the bucket and --postgres
    /// (the hash rule's key from SLUICE_HMAC_KEY or SLUICE_HMAC_SECRET_ARN, as the function).
    #[arg(long, requires = "postgres")]
    pub local: bool,
    /// PostgreSQL for --local (libpq style; TLS verified unless sslmode=disable).
    #[arg(long, value_name = "CONNECTION")]
    pub postgres: Option<String>,
    /// Objects in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The checkpoint file (default sluice-backfill-<dataset>.ckpt here); removed when a run
    /// ends with nothing failed.
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// List what would be done without doing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sluice status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The pipeline config: a path or s3://bucket/key.
    #[arg(long, env = sluice_core::env::CONFIG, default_value = "pipeline.toml")]
    pub config: String,
    /// The data bucket.
    #[arg(long, env = sluice_core::env::BUCKET)]
    pub bucket: String,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Also read the newest event time of each dataset's PostgreSQL table at this connection
    /// string (libpq style; TLS verified unless sslmode=disable).
    #[arg(long, value_name = "CONNECTION")]
    pub postgres: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Send even if the dead letter has been replayed before (its `.replayed.json` note).
    #[arg(long)]
    pub force: bool,
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(a: ReplayArgs) -> Self {
        ReplayOptions {
            uri: a.uri,
            dry_run: a.dry_run,
            stream: a.stream,
            function: a.function,
            dead_letter_prefix: a.dead_letter_prefix,
            force: a.force,
        }
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("  [{bar:32}] {pos}/{len} objects  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

/// Prints `report` as pretty JSON or as its text.
fn emit<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    match json {
        true => println!("{}", serde_json::to_string_pretty(report)?),
        false => print!("{}", text(report)),
    }
    Ok(())
}

/// Carries out a command line: builds the SDK clients it needs from the environment (the
/// standard credential, region and profile chain, `AWS_ENDPOINT_URL`) and prints the report.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let now = sluice_core::telemetry::now_micros();
    match cli.command {
        Command::Replay(args) => {
            let (s3, writer, invoker) = ports::aws_ports().await?;
            let report = replay(&s3, &writer, &invoker, &args.into()).await?;
            print!("{}", report.text);
        }
        Command::Check(a) => {
            let report = check::run_check(&a.config, a.glue, a.postgres.as_deref()).await?;
            emit(a.json, &report, check::CheckReport::text)?;
            return Ok(ExitCode::from(u8::from(report.refused() > 0)));
        }
        Command::Status(a) => {
            let (s3, _, _) = ports::aws_ports().await?;
            let cfg = sluice_core::aws::load_pipeline_config(&a.config, &s3).await?;
            let zones = sluice_core::env::Zones::from_env()?;
            let store = sluice_core::aws::S3Store::new(s3, &a.bucket);
            let pg = match &a.postgres {
                Some(url) => Some(check::connect(url).await?),
                None => None,
            };
            let src = status::Sources {
                store: &store,
                zones: &zones,
                postgres: pg.as_ref().map(|c| (c, cfg.warehouse.schema.as_str())),
                now,
            };
            let report = status::status(&src, &cfg, a.dataset.as_deref()).await?;
            emit(a.json, &report, status::StatusReport::text)?;
        }
        Command::Quarantine { action } => return quarantine_command(action, now).await,
        Command::Backfill(a) => return backfill_command(a, now).await,
        Command::Completions { shell } => completions(shell, &mut std::io::stdout()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn quarantine_command(action: QuarantineCommand, now: i64) -> anyhow::Result<ExitCode> {
    let (s3, writer, _) = ports::aws_ports().await?;
    let zones = sluice_core::env::Zones::from_env()?;
    match action {
        QuarantineCommand::List { select, json } => {
            let sel = select.selection(now)?;
            let store = sluice_core::aws::S3Store::new(s3, &select.bucket);
            let scan = quarantine::scan(&store, &zones.quarantine, &sel).await?;
            emit(
                json,
                &quarantine::ListReport::of(&scan, sel.span),
                quarantine::ListReport::text,
            )?;
        }
        QuarantineCommand::Show {
            uri,
            line,
            quarantine_prefix,
            json,
        } => {
            let shown = quarantine::show(&s3, &quarantine_prefix, &uri, line).await?;
            emit(json, &shown, |s| {
                s.iter().map(quarantine::Shown::text).collect()
            })?;
        }
        QuarantineCommand::Requeue {
            select,
            stream,
            dry_run,
            json,
        } => {
            let sel = select.selection(now)?;
            let store = sluice_core::aws::S3Store::new(s3, &select.bucket);
            let target = ports::StreamTarget(stream);
            let pb = progress_bar();
            let progress = |done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
            };
            let report = quarantine::requeue(
                &store,
                &writer,
                &zones.quarantine,
                &sel,
                &target,
                dry_run,
                &progress,
            )
            .await?;
            pb.finish_and_clear();
            emit(json, &report, quarantine::RequeueReport::text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn backfill_command(a: BackfillArgs, now: i64) -> anyhow::Result<ExitCode> {
    // s3-transform's EMF lines are for CloudWatch; here stdout is the report.
    sluice_core::telemetry::set_emf_enabled(false);
    let span = when::Span::parse(&a.from, &a.to, now).map_err(Error::Usage)?;
    let sdk = sluice_core::aws::sdk_config().await;
    let (s3, _, invoker) = ports::aws_ports().await?;
    let cfg = sluice_core::aws::load_pipeline_config(&a.config, &s3).await?;
    let zones = sluice_core::env::Zones::from_env()?;
    let store = sluice_core::aws::S3Store::new(s3, &a.bucket);
    let warehouse = match &a.postgres {
        Some(url) if a.local => {
            let mut db: tokio_postgres::Config = url
                .parse()
                .map_err(|e| Error::Usage(format!("--postgres: {e}")))?;
            db.application_name("sluice-backfill");
            let tls = match db.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => None,
                _ => Some(s3_transform::config::tls_connector(None, true)?),
            };
            Some(s3_transform::warehouse::Postgres::new(
                db,
                tls,
                &cfg.warehouse.schema,
            ))
        }
        _ => None,
    };
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let hash_key = match a.local {
        true => s3_transform::config::hash_key_from_env(&cfg, &sm).await?,
        false => None,
    };
    let mode = match (&warehouse, a.function) {
        (Some(w), _) => backfill::Mode::Local(s3_transform::Handler {
            cfg: &cfg,
            zones: &zones,
            store: &store,
            warehouse: w,
            limits: s3_transform::input::Limits::default(),
            hash_key: hash_key.as_ref(),
        }),
        (None, Some(function)) => backfill::Mode::Invoke {
            function,
            invoker: &invoker,
        },
        (None, None) => return Err(Error::Usage("give --function or --local".into()).into()),
    };
    let pb = progress_bar();
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let checkpoint = a
        .checkpoint
        .unwrap_or_else(|| std::path::PathBuf::from(format!("sluice-backfill-{}.ckpt", a.dataset)));
    let job = backfill::Backfill {
        store: &store,
        zones: &zones,
        cfg: &cfg,
        dataset: a.dataset,
        span,
        mode,
        parallel: usize::from(a.parallel),
        dry_run: a.dry_run,
        checkpoint: Some(checkpoint),
        progress: &progress,
    };
    let report = backfill::backfill(&job).await?;
    pb.finish_and_clear();
    emit(a.json, &report, backfill::BackfillReport::text)?;
    Ok(ExitCode::from(u8::from(!report.failed.is_empty())))
}
