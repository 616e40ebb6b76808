//! `make demo`: the whole pipeline end to end on the local stack.
//!
//! Starts moto server and a throwaway PostgreSQL cluster on free loopback ports, runs
//! [`sluice_local::pipeline::run`] with `N` synthetic events (default 20 000), prints a summary,
//! and exits non-zero when the counts do not reconcile. It ends with what an operator would
//! run, `sluice status`, against the same local stack. Everything it starts stops with it, on
//! success, on failure and on Ctrl-C; with `KEEP=1` the stack stays up until Ctrl-C, with the
//! commands to look around printed.

use anyhow::{Context, Result};
use sluice_core::config::PipelineConfig;
use sluice_local::pipeline::{run, Options, Summary, ZoneSummary};
use sluice_local::setup::BUCKET;
use sluice_local::{workspace_root, Aws, Pg};

#[tokio::main]
async fn main() -> Result<()> {
    sluice_core::telemetry::set_emf_enabled(false);
    let mut opts = Options::default();
    if let Ok(v) = std::env::var("N") {
        if !v.is_empty() {
            opts.events = v.parse().context("N must be a number of events")?;
        }
    }
    let keep = std::env::var("KEEP").is_ok_and(|v| v == "1");
    let (result, pg) = tokio::select! {
        r = demo(opts, keep) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the local services");
            std::process::exit(130);
        }
    };
    if keep {
        tokio::signal::ctrl_c().await?;
        println!("stopping the local services");
    }
    drop(pg);
    result
}

/// Runs the demo; returns whether it reconciled and the PostgreSQL cluster, which stops when
/// dropped (moto stops with the process).
async fn demo(opts: Options, keep: bool) -> Result<(Result<()>, Pg)> {
    println!(
        "sluice demo: {} events through the whole pipeline, locally\n",
        opts.events
    );
    let cfg_path = workspace_root().join("pipeline.toml");
    let cfg = PipelineConfig::from_path(&cfg_path.to_string_lossy())?;
    let aws = Aws::local().await;
    let pg = tokio::task::spawn_blocking(Pg::start).await??;
    println!("  local AWS API (moto)   {}", aws.endpoint);
    println!("  PostgreSQL             127.0.0.1:{}\n", pg.port);
    let sum = run(&aws, &pg, &cfg, &opts).await?;
    print_summary(&sum, &cfg);
    let result = sum.reconcile();
    match &result {
        Ok(()) => println!(
            "\n  reconciled: every record is in raw, quarantine or PostgreSQL exactly as counted;\n  \
             {} sampled purchases equal what was sent, field by field, in Parquet (DuckDB) and PostgreSQL",
            sum.values.sampled
        ),
        Err(e) => {
            println!("\n  NOT RECONCILED: {e}");
            for m in sum.values.mismatches.iter().take(20) {
                println!("    value differs: {m}");
            }
        }
    }
    let env = [
        ("AWS_ENDPOINT_URL", aws.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let postgres = format!("{} sslmode=disable", pg.url);
    let cli = std::env::current_exe()?.with_file_name("sluice");
    let status_args = [
        "status",
        "--config",
        "pipeline.toml",
        "--bucket",
        BUCKET,
        "--postgres",
        &postgres,
    ];
    println!(
        "\nan operator's view of the same stack:\n$ sluice {}",
        shown(&status_args)
    );
    match std::process::Command::new(&cli)
        .args(status_args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(workspace_root())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => println!("  sluice status exited with {s}"),
        Err(e) => println!(
            "  could not run {} ({e}); `cargo build -p sluice-cli` builds it",
            cli.display()
        ),
    }
    if keep {
        println!("\nthe local stack is still running (KEEP=1); in another shell:");
        println!(
            "  export {}",
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let bin = cli
            .strip_prefix(workspace_root())
            .unwrap_or(&cli)
            .display()
            .to_string();
        println!("  {bin} status --bucket {BUCKET} --postgres \"{postgres}\"");
        println!("  {bin} quarantine list --bucket {BUCKET}");
        println!(
            "  psql \"{postgres}\" -c 'SELECT * FROM {}.purchases LIMIT 5'",
            cfg.warehouse.schema
        );
        println!("press Ctrl-C to stop it");
    }
    Ok((result, pg))
}

/// Arguments as a shell would need them quoted.
fn shown(args: &[&str]) -> String {
    args.iter()
        .map(|a| match a.contains(' ') {
            true => format!("\"{a}\""),
            false => a.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn zone_line(name: &str, z: &ZoneSummary) {
    let ratio = if z.stored_bytes > 0 && z.json_bytes > 0 {
        format!("{:>6.1}x", z.json_bytes as f64 / z.stored_bytes as f64)
    } else {
        "      -".to_string()
    };
    let json = if z.json_bytes > 0 {
        z.json_bytes.to_string()
    } else {
        "-".into()
    };
    println!(
        "  {name:<12} {:>8} {:>10} {:>14} {:>14} {ratio}",
        z.objects, z.records, json, z.stored_bytes
    );
}

fn print_summary(s: &Summary, cfg: &PipelineConfig) {
    println!("\nrecords");
    println!(
        "  produced                 {:>8}  ({} malformed; {} sent over HTTP through http-collector)",
        s.produced,
        s.produced - s.produced_valid,
        s.via_http
    );
    println!("  raw zone                 {:>8}", s.raw.records);
    println!("  quarantined at ingest    {:>8}", s.quarantine_ingest);
    println!(
        "  curated (Parquet)        {:>8}  ({} rejected by transform, {} duplicates)",
        s.curated_rows, s.transform_rejected, s.transform_duplicates
    );
    println!(
        "  left out by filters      {:>8}  ({})",
        s.transform_filtered.values().sum::<usize>(),
        s.transform_filtered
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pg: i64 = s.pg_rows.values().sum();
    println!(
        "  PostgreSQL rows          {:>8}  ({})",
        pg,
        s.pg_rows
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("\nzone              objects    records   bytes (json)  bytes (stored)  ratio");
    zone_line("raw", &s.raw);
    zone_line("quarantine", &s.quarantine);
    zone_line("curated", &s.curated);
    println!("  (curated counts one file the transform did not write: the failure drill's, below)");
    println!("\nGlue database {}", cfg.catalog.database);
    for t in &s.tables {
        println!(
            "  {:<16} {:>4} partitions  {}",
            t.name,
            t.partitions,
            t.columns.join(", ")
        );
    }
    println!("\npurchases per hour (PostgreSQL rollup purchases_per_hour)");
    for (hour, n, amount) in &s.purchases_per_hour {
        println!("  {hour}  {n:>6} orders  {amount:>12.2}");
    }
    println!("\nfailures");
    println!(
        "  on-failure records archived {}  alerts received {}",
        s.failures_archived, s.alerts_received
    );
    for k in &s.dead_letters {
        println!("  s3://{BUCKET}/{k}  (the drill's; in the local bucket, which KEEP=1 keeps)");
    }
    if !s.notifications_skipped.is_empty() {
        println!(
            "  notifications ignored (S3 sends one s3:TestEvent per notification it sets up; the functions skip them): {}",
            s.notifications_skipped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "\ntime: {:.2} s in all; kinesis-ingest {} batches ({} retried) in {:.2} s = {:.0} records/s; pipeline {:.0} records/s",
        s.total_secs,
        s.ingest_batches,
        s.ingest_retries,
        s.ingest_secs,
        s.produced as f64 / s.ingest_secs.max(1e-9),
        s.produced as f64 / s.total_secs.max(1e-9)
    );
}
