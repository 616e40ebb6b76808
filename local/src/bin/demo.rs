//! `make demo`: the whole pipeline end to end on the local stack.
//!
//! Starts moto server and a throwaway PostgreSQL cluster on free loopback ports, runs
//! [`sluice_local::pipeline::run`] with `N` synthetic events (default 20 000), prints a summary,
//! and exits non-zero when the counts do not reconcile. Everything it starts stops with it,
//! on success, on failure and on Ctrl-C.

use anyhow::{Context, Result};
use sluice_core::config::PipelineConfig;
use sluice_local::pipeline::{run, Options, Summary, ZoneSummary};
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
    tokio::select! {
        r = demo(opts) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the local services");
            std::process::exit(130);
        }
    }
}

async fn demo(opts: Options) -> Result<()> {
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
    result
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
        println!("  s3://sluice-demo/{k}");
    }
    if !s.notifications_skipped.is_empty() {
        println!(
            "  notifications skipped: {}",
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
