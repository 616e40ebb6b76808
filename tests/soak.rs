//! The soak test: `SLUICE_SOAK_RECORDS` synthetic clickstream records (default 20 000;
//! `make soak` runs 1 000 000) through kinesis-ingest and s3-transform, with every S3 call going
//! through the fault proxy (500s, 503 SlowDown, resets before and after forwarding, delays)
//! and every PostgreSQL connection through a TCP fault proxy (resets, delays).
//!
//! Lambda's semantics are reproduced: Kinesis batches per shard, batch item failures retried
//! from the lowest failed sequence number; every raw ObjectCreated notification delivered
//! three times, in a shuffled order and concurrently; a failed async invocation retried twice.
//! Then the outcome is checked record by record:
//! - every input is in the raw zone (valid) or the ingest quarantine (invalid), never both,
//!   never missing, nothing else there; a record is in more than one raw object only if its
//!   batch was redelivered after a partial failure (the documented at-least-once raw zone);
//! - every valid record is in PostgreSQL exactly once, and nothing else is;
//! - a sample of purchases equals, field by field, what was sent, in curated Parquet read by
//!   DuckDB and in PostgreSQL;
//! - the declared rollup (`purchases_per_hour`) equals a `GROUP BY` over the loaded table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use s3_transform::event::S3Input;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::warehouse::Postgres;
use serde_json::Value;
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::is_transform_quarantine;
use sluice_core::lake::stream::StreamRecord;
use sluice_core::store::ObjectStore;
use sluice_local::clickstream::generate;
use sluice_local::events::{record, s3_event_json};
use sluice_local::faults::{FaultProxy, Rates};
use sluice_local::invoke::invoke_async;
use sluice_local::stream::{drive_shard, DriveStats};
use sluice_local::{gunzip, moto, unique, workspace_root, Aws, Pg};

const SHARDS: usize = 4;
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-soak";
/// S3 delivers each notification this many times in this test.
const DELIVERIES: usize = 3;
const MAX_CONSECUTIVE_RETRIES: usize = 30;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// An S3 store that remembers every raw object it wrote: each successful PUT is one
/// ObjectCreated notification, as S3 would send.
struct Notifying<'a> {
    inner: &'a S3Store,
    raw_prefix: String,
    written: Mutex<Vec<String>>,
}

#[async_trait]
impl ObjectStore for Notifying<'_> {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> sluice_core::Result<()> {
        self.inner.put(key, body, content_type).await?;
        if key.starts_with(&self.raw_prefix) {
            self.written.lock().expect("lock").push(key.to_string());
        }
        Ok(())
    }
    async fn get(&self, key: &str) -> sluice_core::Result<Vec<u8>> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, start: u64, end: u64) -> sluice_core::Result<Vec<u8>> {
        self.inner.get_range(key, start, end).await
    }
    async fn size(&self, key: &str) -> sluice_core::Result<u64> {
        self.inner.size(key).await
    }
    async fn list(&self, prefix: &str) -> sluice_core::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
}

/// An S3 client through `endpoint` whose SDK retries are few and fast, so injected faults
/// also surface as handler-level failures (partial batch failures, failed invocations).
fn s3_client(aws: &Aws, max_attempts: u32) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&aws.sdk)
        .force_path_style(true)
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(100)),
        )
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[derive(Debug, Default, Clone, Copy)]
struct DeliveryStats {
    invocations: usize,
    async_retries: usize,
    /// Deliveries whose three attempts all failed (Lambda sends them to the on-failure
    /// destination, where failure-notifier archives and alerts).
    exhausted: usize,
    succeeded: bool,
}

/// One notification delivered as an async invocation (retried twice on any function error).
async fn deliver(ctx: &s3_transform::Handler<'_>, bucket: &str, key: &str) -> DeliveryStats {
    let invoked = invoke_async(Duration::from_millis(20), || async {
        let input: S3Input =
            serde_json::from_value(s3_event_json(bucket, key, 0)).expect("s3 event");
        s3_transform::handle(ctx, input).await
    })
    .await;
    let mut st = DeliveryStats {
        invocations: invoked.attempts,
        async_retries: invoked.attempts - 1,
        ..DeliveryStats::default()
    };
    match invoked.result {
        Ok(out) => {
            assert!(
                out.objects.iter().all(|o| o.quarantined.is_none()),
                "a raw object written by ingest was quarantined: {out:?}"
            );
            st.succeeded = true;
        }
        Err(e) => {
            eprintln!("s3-transform: {key} failed {} times: {e}", invoked.attempts);
            st.exhausted += 1;
        }
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_record_lands_exactly_once_through_faults() {
    let n = env_usize("SLUICE_SOAK_RECORDS", 20_000);
    let default_batch = if n >= 200_000 { 10_000 } else { 2_500 };
    let batch = env_usize("SLUICE_SOAK_BATCH", default_batch).clamp(1, 10_000);
    let fault_rate: f64 = std::env::var("SLUICE_SOAK_FAULT_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.02);
    let seed = 9;
    let started = Instant::now();
    sluice_core::telemetry::set_emf_enabled(false);

    let cfg = PipelineConfig::from_path(&workspace_root().join("pipeline.toml").to_string_lossy())
        .expect("demo config");
    let zones = Zones::default();
    let direct = Aws::local().await;
    let bucket = direct.bucket().await;

    // S3 through the HTTP fault proxy; PostgreSQL through the TCP fault proxy.
    let s3_proxy = FaultProxy::http(&moto().endpoint, Rates::uniform(fault_rate), seed)
        .await
        .expect("s3 fault proxy");
    let faulty = Aws::at(&s3_proxy.endpoint).await;
    let store = S3Store::new(s3_client(&faulty, 2), &bucket);
    let pg = Pg::start().expect("postgres");
    let pg_proxy = FaultProxy::tcp(
        &format!("127.0.0.1:{}", pg.port),
        Rates {
            // Every connection is refused at connect or cut within 5 s of opening.
            reset: 0.15,
            reset_after: 0.85,
            cut_after: Duration::from_secs(5),
            ..Rates::NONE
        },
        seed + 1,
    )
    .await
    .expect("pg fault proxy");
    let pg_url = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        pg_proxy.port
    );

    // Producers: records spread over the shards, sequence numbers increasing per shard.
    let now = chrono::Utc::now().timestamp();
    let generated = generate(n, now, 30, seed);
    let mut shards: Vec<Vec<StreamRecord>> = vec![Vec::new(); SHARDS];
    let mut valid: HashMap<String, (String, String)> = HashMap::new(); // seq -> (dataset, key)
    let mut invalid: HashSet<String> = HashSet::new();
    let mut purchases_sent: Vec<Value> = Vec::new();
    for (i, g) in generated.into_iter().enumerate() {
        let mut r = record(i as u64, g.data, now as f64);
        r.partition_key = g.partition_key;
        r.shard = format!("shardId-{:012}", i % SHARDS);
        if g.valid {
            let v: Value = serde_json::from_slice(&r.data).expect("valid record is JSON");
            let (ds, key) = match v["type"].as_str().expect("type") {
                "page_view" => ("page_views", &v["event_id"]),
                "signup" => ("signups", &v["event_id"]),
                _ => ("purchases", &v["order_id"]),
            };
            valid.insert(
                r.seq.clone(),
                (ds.to_string(), key.as_str().expect("key").to_string()),
            );
            if ds == "purchases" {
                purchases_sent.push(v.clone());
            }
        } else {
            invalid.insert(r.seq.clone());
        }
        shards[i % SHARDS].push(r);
    }

    // kinesis-ingest, shards in parallel (as Lambda runs one invocation per shard at a time).
    let notifying = Notifying {
        inner: &store,
        raw_prefix: zones.raw.clone(),
        written: Mutex::new(Vec::new()),
    };
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &notifying,
        max_concurrency: 8,
    };
    let t = Instant::now();
    let per_shard = futures::future::join_all(shards.iter().map(|recs| {
        let ingest = &ingest;
        drive_shard(
            STREAM_ARN,
            recs,
            batch,
            MAX_CONSECUTIVE_RETRIES,
            move |event| async move {
                kinesis_ingest::handle(ingest, event)
                    .await
                    .map_err(anyhow::Error::from)
            },
        )
    }))
    .await;
    let ingest_secs = t.elapsed().as_secs_f64();
    let s3_after_ingest = s3_proxy.counts();
    let mut ist = DriveStats::default();
    for s in per_shard {
        let s = s.expect("every batch is eventually written");
        ist.batches += s.batches;
        ist.retries += s.retries;
        ist.function_errors += s.function_errors;
        ist.redelivered.extend(s.redelivered);
    }
    drop(shards);

    // s3-transform: every notification three times, shuffled, four invocations at a time.
    let notices = notifying.written.lock().expect("lock").clone();
    let mut deliveries: Vec<&String> = notices
        .iter()
        .flat_map(|k| std::iter::repeat_n(k, DELIVERIES))
        .collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut deliveries);
    let schema = unique("soak").replace('-', "_");
    let warehouse = Postgres::new(pg_url.parse().expect("pg url"), None, &schema);
    let hash_key = HashKey::new(b"soak-hmac-key-0123456789".to_vec()).expect("key");
    let transform = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: Limits::default(),
        hash_key: Some(&hash_key),
    };
    let t = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total_deliveries = deliveries.len();
    let dstats: Vec<(&String, DeliveryStats)> = stream::iter(deliveries.iter().map(|k| {
        let transform = &transform;
        let bucket = &bucket;
        let done = &done;
        async move {
            let st = deliver(transform, bucket, k).await;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d % 500 == 0 {
                eprintln!("  s3-transform: {d}/{total_deliveries} deliveries");
            }
            (*k, st)
        }
    }))
    .buffer_unordered(4)
    .collect()
    .await;
    let transform_secs = t.elapsed().as_secs_f64();
    let mut dst = DeliveryStats::default();
    let mut succeeded: HashSet<&String> = HashSet::new();
    for (k, d) in &dstats {
        dst.invocations += d.invocations;
        dst.async_retries += d.async_retries;
        dst.exhausted += d.exhausted;
        if d.succeeded {
            succeeded.insert(*k);
        }
    }
    // Every notification was processed by at least one of its deliveries; a delivery that
    // exhausted its retries is what Lambda hands to the on-failure destination.
    for k in &notices {
        assert!(succeeded.contains(k), "{k}: no delivery succeeded");
    }
    let s3_total = s3_proxy.counts();
    let pg_total = pg_proxy.counts();

    // Record by record: the raw zone and the ingest quarantine (read without faults).
    let t = Instant::now();
    let mut raw_seen: HashMap<String, u32> = HashMap::new();
    let mut quarantine_seen: HashMap<String, u32> = HashMap::new();
    let raw_keys = direct.keys(&bucket, &zones.raw).await;
    for key in &raw_keys {
        for line in gunzip(&direct.get(&bucket, key).await).lines() {
            let v: Value = serde_json::from_str(line).expect("raw line is JSON");
            let meta = &v["_sluice"];
            assert_eq!(meta["sub"], 0, "one user record per stream record");
            *raw_seen
                .entry(meta["seq"].as_str().expect("seq").to_string())
                .or_default() += 1;
        }
    }
    let q_keys: Vec<String> = direct
        .keys(&bucket, &zones.quarantine)
        .await
        .into_iter()
        .filter(|k| !is_transform_quarantine(k))
        .collect();
    for key in &q_keys {
        for line in gunzip(&direct.get(&bucket, key).await).lines() {
            let v: Value = serde_json::from_str(line).expect("quarantine line is JSON");
            *quarantine_seen
                .entry(v["seq"].as_str().expect("seq").to_string())
                .or_default() += 1;
        }
    }
    let transform_quarantine: Vec<String> = direct
        .keys(&bucket, &zones.quarantine)
        .await
        .into_iter()
        .filter(|k| is_transform_quarantine(k))
        .collect();
    assert!(
        transform_quarantine.is_empty(),
        "s3-transform quarantined valid data: {transform_quarantine:?}"
    );
    let mut raw_duplicates = 0usize;
    for seq in valid.keys() {
        let c = raw_seen.get(seq).copied().unwrap_or(0);
        assert!(c >= 1, "valid record {seq} is missing from the raw zone");
        assert!(
            !quarantine_seen.contains_key(seq),
            "valid record {seq} is in the quarantine"
        );
        if c > 1 {
            raw_duplicates += 1;
            assert!(
                ist.redelivered.contains(seq),
                "record {seq} is in {c} raw objects but its batch was never redelivered"
            );
        }
    }
    let mut quarantine_duplicates = 0usize;
    for seq in &invalid {
        let c = quarantine_seen.get(seq).copied().unwrap_or(0);
        assert!(
            c >= 1,
            "invalid record {seq} is missing from the quarantine"
        );
        assert!(
            !raw_seen.contains_key(seq),
            "invalid record {seq} is in the raw zone"
        );
        if c > 1 {
            quarantine_duplicates += 1;
            assert!(
                ist.redelivered.contains(seq),
                "{seq} duplicated without redelivery"
            );
        }
    }
    assert_eq!(
        raw_seen.len(),
        valid.len(),
        "the raw zone holds only inputs"
    );
    assert_eq!(
        quarantine_seen.len(),
        invalid.len(),
        "the quarantine holds only inputs"
    );

    // PostgreSQL: every valid record exactly once, nothing else.
    let client = pg.client().await.expect("pg client");
    let mut expected: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for (ds, key) in valid.values() {
        assert!(
            expected.entry(ds.clone()).or_default().insert(key.clone()),
            "generated keys are unique"
        );
    }
    let mut pg_rows = 0usize;
    for (ds, keys) in &expected {
        let rows = client
            .query(
                &format!("SELECT _sluice_key, count(*) OVER (PARTITION BY _sluice_key) FROM \"{schema}\".\"{ds}\""),
                &[],
            )
            .await
            .expect("query table");
        let mut got = HashSet::new();
        for r in &rows {
            let k: String = r.get(0);
            let c: i64 = r.get(1);
            assert_eq!(c, 1, "{ds}: {k} is in PostgreSQL {c} times");
            assert!(keys.contains(&k), "{ds}: {k} is not a valid input");
            got.insert(k);
        }
        assert_eq!(got.len(), keys.len(), "{ds}: every valid record is loaded");
        pg_rows += rows.len();
    }
    assert_eq!(pg_rows, valid.len());
    // The declared rollup equals a GROUP BY after every retry, replay and reordering above.
    let rollup = sluice_local::values::purchases_rollup_mismatches(&client, &schema)
        .await
        .expect("compare the rollup");
    assert!(
        rollup.is_empty(),
        "purchases_per_hour differs from a GROUP BY: {rollup:?}"
    );
    // By value: sampled purchases as sent, in curated Parquet (read by DuckDB) and PostgreSQL.
    let values = sluice_local::values::check_purchases(
        &direct,
        &bucket,
        &format!("{}purchases/", zones.curated),
        &[],
        &pg,
        &schema,
        &purchases_sent,
        500,
    )
    .await
    .expect("value check");
    assert!(values.sampled > 0, "purchases were sampled");
    assert!(
        values.mismatches.is_empty(),
        "values differ from what was sent: {:?}",
        &values.mismatches[..values.mismatches.len().min(20)]
    );
    let verify_secs = t.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();

    println!("soak: {n} records ({} valid, {} invalid), {SHARDS} shards, batch {batch}, fault rate {fault_rate} per kind", valid.len(), invalid.len());
    println!(
        "  kinesis-ingest: {} batches, {} partial-failure retries, {} function errors, {} records redelivered; {:.1} s, {:.0} records/s",
        ist.batches,
        ist.retries,
        ist.function_errors,
        ist.redelivered.len(),
        ingest_secs,
        n as f64 / ingest_secs
    );
    println!(
        "  raw zone: {} objects ({} notifications), {} records in more than one object (redelivered batches), quarantine: {} objects, {} duplicated",
        raw_keys.len(),
        notices.len(),
        raw_duplicates,
        q_keys.len(),
        quarantine_duplicates
    );
    println!(
        "  s3-transform: {} deliveries ({} per notification), {} invocations, {} async retries, {} deliveries exhausted their retries (on-failure destination; every notification succeeded at least once); {:.1} s, {:.0} records/s (x{DELIVERIES})",
        deliveries.len(),
        DELIVERIES,
        dst.invocations,
        dst.async_retries,
        dst.exhausted,
        transform_secs,
        valid.len() as f64 / transform_secs
    );
    println!("  S3 proxy during ingest: {s3_after_ingest}");
    println!("  S3 proxy in total:      {s3_total}");
    println!("  PostgreSQL proxy:       {pg_total}");
    println!(
        "  PostgreSQL: {pg_rows} rows = valid records, each exactly once; {} sampled purchases equal what was sent in Parquet (DuckDB) and PostgreSQL; verification {verify_secs:.1} s; total {total:.1} s",
        values.sampled
    );
    assert!(
        s3_total.injected() > 0 || n < 1_000,
        "the proxy injected faults"
    );
}
