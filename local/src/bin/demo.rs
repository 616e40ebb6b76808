//! `make demo`: the pipeline end to end on the local stack.
//!
//! Starts moto server on a free loopback port, creates the stream and bucket, puts N synthetic
//! clickstream events (a share of them malformed) into Kinesis with PutRecords, drives
//! kinesis-ingest from the stream the way Lambda's event source mapping does, and prints what
//! landed. Exits non-zero when the counts do not reconcile. Everything it starts stops with it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use kinesis_ingest::{handle, Ingest};
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_local::clickstream::generate;
use sluice_local::{gunzip, workspace_root, Aws};

const STREAM: &str = "sluice-events";
const BUCKET: &str = "sluice-demo";
const SHARDS: i32 = 2;
const BAD_PER_MILLE: u32 = 30;
const PUT_RECORDS_MAX: usize = 500;
const BATCH_SIZE: i32 = 1_000;

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = match std::env::var("N") {
        Ok(v) if !v.is_empty() => v.parse().context("N must be a number of events")?,
        _ => 20_000,
    };
    let started = Instant::now();
    sluice_core::telemetry::set_emf_enabled(false);
    println!("sluice demo: {n} events through the local pipeline");
    let cfg_path = workspace_root().join("pipeline.toml");
    let cfg = PipelineConfig::from_path(&cfg_path.to_string_lossy())?;
    let aws = Aws::local().await;
    println!("  local AWS API (moto) at {}", aws.endpoint);

    aws.s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("create bucket")?;
    aws.kinesis
        .create_stream()
        .stream_name(STREAM)
        .shard_count(SHARDS)
        .send()
        .await
        .context("create stream")?;
    wait_active(&aws).await?;

    let now = chrono::Utc::now().timestamp();
    let events = generate(n, now, BAD_PER_MILLE, 42);
    let produced_valid = events.iter().filter(|e| e.valid).count();
    for chunk in events.chunks(PUT_RECORDS_MAX) {
        put_records(&aws, chunk).await?;
    }
    println!(
        "  produced {n} events ({} malformed) with PutRecords",
        n - produced_valid
    );

    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), BUCKET);
    let ctx = Ingest {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 8,
    };
    let ingest_started = Instant::now();
    let stats = sluice_local::stream::drain(&aws.kinesis, STREAM, BATCH_SIZE, 5, |event| async {
        handle(&ctx, event).await.map_err(anyhow::Error::from)
    })
    .await?;
    let ingest_secs = ingest_started.elapsed().as_secs_f64();

    let raw = zone_summary(&aws, &zones.raw).await?;
    let quarantine = zone_summary(&aws, &zones.quarantine).await?;
    println!();
    println!(
        "  kinesis-ingest: {} batches from {} shards, {} retried",
        stats.batches, stats.shards, stats.retries
    );
    println!(
        "  {:<12} {:>8} {:>10} {:>14} {:>14} {:>7}",
        "zone", "objects", "records", "bytes (json)", "bytes (gzip)", "ratio"
    );
    for (name, z) in [("raw", &raw), ("quarantine", &quarantine)] {
        println!(
            "  {:<12} {:>8} {:>10} {:>14} {:>14} {:>6.1}x",
            name,
            z.objects,
            z.records,
            z.json_bytes,
            z.gzip_bytes,
            z.json_bytes as f64 / z.gzip_bytes.max(1) as f64
        );
    }
    println!();
    println!(
        "  {} records in {:.2} s of ingest ({:.0} records/s); {:.2} s in all",
        n,
        ingest_secs,
        n as f64 / ingest_secs.max(1e-9),
        started.elapsed().as_secs_f64()
    );
    let ok = raw.records + quarantine.records == n && raw.records == produced_valid;
    if !ok {
        bail!(
            "counts do not reconcile: produced {n} ({produced_valid} valid), raw {}, quarantine {}",
            raw.records,
            quarantine.records
        );
    }
    println!("  reconciled: produced = raw + quarantined, nothing lost");
    Ok(())
}

async fn wait_active(aws: &Aws) -> Result<()> {
    for _ in 0..100 {
        let d = aws
            .kinesis
            .describe_stream_summary()
            .stream_name(STREAM)
            .send()
            .await?;
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("stream {STREAM} did not become active")
}

async fn put_records(aws: &Aws, chunk: &[sluice_local::clickstream::Generated]) -> Result<()> {
    let mut pending: Vec<PutRecordsRequestEntry> = chunk
        .iter()
        .map(|e| {
            PutRecordsRequestEntry::builder()
                .partition_key(&e.partition_key)
                .data(Blob::new(e.data.clone()))
                .build()
        })
        .collect::<Result<_, _>>()?;
    for _ in 0..10 {
        let out = aws
            .kinesis
            .put_records()
            .stream_name(STREAM)
            .set_records(Some(pending.clone()))
            .send()
            .await?;
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(());
        }
        pending = pending
            .into_iter()
            .zip(out.records())
            .filter(|(_, r)| r.error_code().is_some())
            .map(|(e, _)| e)
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("PutRecords kept failing")
}

#[derive(Debug, Default)]
struct ZoneSummary {
    objects: usize,
    records: usize,
    json_bytes: usize,
    gzip_bytes: usize,
}

async fn zone_summary(aws: &Aws, prefix: &str) -> Result<ZoneSummary> {
    let mut z = ZoneSummary::default();
    for key in aws.keys(BUCKET, prefix).await {
        let body = aws.get(BUCKET, &key).await;
        let text = gunzip(&body);
        z.objects += 1;
        z.records += text.lines().count();
        z.json_bytes += text.len();
        z.gzip_bytes += body.len();
    }
    Ok(z)
}
