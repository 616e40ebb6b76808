//! sluice-bench: the inputs and CPU paths that `make bench` and the criterion benches measure.
//!
//! [`ingest_event`] builds one Kinesis event near Lambda's 6 MB payload limit from the demo
//! clickstream (padded to ≈ 0.85 KB per event), deterministically, so Rust and the Python
//! reference (`bench/python/ingest_ref.py`) get exactly the same bytes. [`ingest`] is the whole
//! ingest CPU path as the handler runs it (event JSON → `KinesisBatch` of `StreamRecord`s →
//! `plan_batch`); [`transform_object`] is s3-transform's CPU path for one raw object (read →
//! transform → Parquet). The measurement harness itself is the binary: `src/main.rs` and the
//! modules it declares.

pub mod runtime_api;

use std::path::PathBuf;

use anyhow::{Context, Result};
use kinesis_ingest::{plan_batch, KinesisBatch, Plan};
use s3_transform::input::{format_of, read_object, Limits};
use s3_transform::pii::HashKey;
use s3_transform::transform::{columns, transform, Column, Transformed};
use serde_json::{json, Map, Value};
use sluice_core::config::{Dataset, PipelineConfig};
use sluice_core::env::Zones;
use sluice_core::lake::keys::Partition;
use sluice_core::lake::stream::StreamRecord;
use sluice_local::events::{kinesis_event_json, record};

/// Lambda's invocation payload limit (synchronous and event-source invocations), bytes.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// Average size the generated events are padded to, bytes.
pub const TARGET_EVENT_BYTES: usize = 850;
/// The shard every generated record comes from.
pub const SHARD: &str = sluice_local::events::SHARD;
/// 2025-11-22T10:00:00Z: event times fall in the four hours before, arrivals just after.
pub const NOW_SECS: i64 = 1_763_805_600;
/// Malformed events per thousand (every kind the pipeline classifies).
pub const BAD_PER_MILLE: u32 = 30;
/// Seed of the synthetic clickstream.
pub const SEED: u64 = 2025;
/// The HMAC key used for the `hash` PII rule in the transform benchmark.
pub const HMAC_KEY: &[u8] = b"sluice-bench-hmac-key-0123456789";

/// The repository root.
pub fn repo_root() -> PathBuf {
    sluice_local::workspace_root()
}

/// The demo pipeline config (`pipeline.toml`).
pub fn demo_config() -> Result<PipelineConfig> {
    let path = repo_root().join("pipeline.toml");
    PipelineConfig::from_path(&path.to_string_lossy()).context("load pipeline.toml")
}

const WORDS: &[&str] = &[
    "boots", "winter", "sale", "jacket", "merino", "running", "trail", "outdoor", "kids", "rain",
    "gift", "card", "wool", "socks", "hiking", "summer", "beanie", "gloves", "scarf", "fleece",
];

/// Pads a valid generated event with realistic context fields to about `target` bytes.
fn pad(data: &[u8], target: usize, rng: &mut u64) -> Vec<u8> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(data) else {
        return data.to_vec();
    };
    let mut next = || {
        // xorshift64*: deterministic, dependency-free.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let ctx = json!({
        "app": {"name": "shop-web", "version": format!("4.{}.{}", next() % 20, next() % 100), "build": format!("{:08x}", next() as u32)},
        "device": {"type": (["desktop", "mobile", "tablet"][(next() % 3) as usize]), "screen": (["1920x1080", "390x844", "1440x900", "820x1180"][(next() % 4) as usize]), "timezone": "Pacific/Auckland"},
        "locale": (["en-NZ", "de-DE", "en-US", "pt-BR", "ja-JP"][(next() % 5) as usize]),
        "trace_id": format!("{:016x}{:016x}", next(), next()),
        "anonymous_id": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", next() as u32, next() as u16, next() % 4096, next() % 4096, next() % (1 << 48)),
    });
    map.insert("context".into(), ctx);
    let mut tags: Vec<Value> = Vec::new();
    map.insert("tags".into(), Value::Array(Vec::new()));
    let mut len = Value::Object(map.clone()).to_string().len();
    while len < target {
        let w = format!(
            "{}-{}",
            WORDS[(next() % WORDS.len() as u64) as usize],
            next() % 1000
        );
        len += w.len() + 3;
        tags.push(Value::String(w));
    }
    map.insert("tags".into(), Value::Array(tags));
    Value::Object(map).to_string().into_bytes()
}

/// The generated clickstream records of the benchmark (padded, with ~3 % malformed ones).
pub fn records(n: usize) -> Vec<StreamRecord> {
    let mut rng = SEED | 1;
    sluice_local::clickstream::generate(n, NOW_SECS, BAD_PER_MILLE, SEED)
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            // Targets spread over 600..1100 bytes, averaging ≈ TARGET_EVENT_BYTES.
            let target = TARGET_EVENT_BYTES - 250 + (i * 7919) % 500;
            let data = if g.valid {
                pad(&g.data, target, &mut rng)
            } else {
                g.data
            };
            // Arrivals 250 ms apart, with a millisecond part that never ends in 0:
            // aws_lambda_events 1.2 reads `approximateArrivalTimestamp` through f64::to_string
            // and takes the digits after the point as milliseconds, so `.25` or `.980` would be
            // misread as 25 ms / 98 ms (see bench/NOTES.md).
            let millis = 60_000 + i as i64 * 250 + 1;
            let arrival = NOW_SECS as f64 + millis as f64 / 1000.0;
            let mut r = record(i as u64 + 1, data, arrival);
            r.partition_key = g.partition_key;
            r
        })
        .collect()
}

/// The largest Kinesis event of generated records that fits Lambda's 6 MB payload limit.
/// Returns the event JSON and its record count.
pub fn ingest_event() -> Result<(Vec<u8>, usize)> {
    let all = records(8_000);
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events";
    // The compact JSON of `{"Records":[r0,r1,...]}` is the sum of its records' JSON plus commas.
    let mut total = r#"{"Records":[]}"#.len();
    let mut n = 0;
    for r in &all {
        let one = kinesis_event_json(arn, std::slice::from_ref(r)).to_string();
        let add = one.len() - r#"{"Records":[]}"#.len() + usize::from(n > 0);
        if total + add > LAMBDA_PAYLOAD_LIMIT {
            break;
        }
        total += add;
        n += 1;
    }
    let bytes = kinesis_event_json(arn, &all[..n]).to_string().into_bytes();
    anyhow::ensure!(
        bytes.len() <= LAMBDA_PAYLOAD_LIMIT,
        "event is {} bytes",
        bytes.len()
    );
    Ok((bytes, n))
}

/// The whole ingest CPU path, as the Lambda handler runs it on one invocation payload.
pub fn ingest(cfg: &PipelineConfig, zones: &Zones, event_json: &[u8]) -> Result<Plan> {
    let event: KinesisBatch = serde_json::from_slice(event_json).context("parse Kinesis event")?;
    Ok(plan_batch(cfg, zones, &event.records)?)
}

/// One raw object of the transform benchmark, with its dataset.
#[derive(Debug, Clone)]
pub struct RawObject {
    pub key: String,
    pub body: Vec<u8>,
    pub dataset: String,
}

/// The raw-zone objects kinesis-ingest writes for `n` generated records (one shard, batches
/// of `batch` records), as inputs of s3-transform.
pub fn raw_objects(cfg: &PipelineConfig, n: usize, batch: usize) -> Result<Vec<RawObject>> {
    let zones = Zones::default();
    let recs = records(n);
    let mut out = Vec::new();
    for chunk in recs.chunks(batch.max(1)) {
        let plan = plan_batch(cfg, &zones, chunk)?;
        for o in plan.objects {
            if o.zone != kinesis_ingest::Zone::Raw {
                continue;
            }
            let rel = o.key.strip_prefix(zones.raw.as_str()).unwrap_or(&o.key);
            let dataset = rel.split('/').next().unwrap_or("").to_string();
            out.push(RawObject {
                key: o.key,
                body: o.body,
                dataset,
            });
        }
    }
    Ok(out)
}

/// The read limits s3-transform uses by default.
pub fn limits() -> Limits {
    Limits::default()
}

/// The HMAC key of the `hash` rule.
pub fn hash_key() -> Result<HashKey> {
    HashKey::new(HMAC_KEY.to_vec()).context("hash key")
}

/// s3-transform's CPU path for one raw object: read (gunzip, parse), transform (coerce, mask,
/// de-duplicate) and encode one Parquet file per partition. Returns the transform and the total
/// Parquet bytes.
pub fn transform_object(
    cfg: &PipelineConfig,
    obj: &RawObject,
    hash_key: Option<&HashKey>,
) -> Result<(Transformed, Vec<Column>, usize)> {
    let ds: &Dataset = cfg.dataset(&obj.dataset).context("dataset of raw object")?;
    let file = obj.key.rsplit('/').next().unwrap_or("");
    let (format, gz) = format_of(file).context("format of raw object")?;
    let mut items = Vec::new();
    read_object(&obj.body, format, gz, limits(), &mut |i| items.push(i))
        .map_err(|e| anyhow::anyhow!("read {}: {e}", obj.key))?;
    let cols = columns(ds);
    let t = transform(
        ds,
        &cols,
        items,
        &obj.key,
        &Partition::of_micros(0),
        hash_key,
    );
    let mut parquet_bytes = 0;
    for rows in t.rows.values() {
        let bytes = s3_transform::parquet_out::encode(&cols, rows, &obj.key)
            .map_err(|e| anyhow::anyhow!("parquet: {e}"))?;
        parquet_bytes += bytes.len();
    }
    Ok((t, cols, parquet_bytes))
}

/// Counts valid top-level objects of a JSON document (used to check a generated event).
pub fn count_records(event_json: &[u8]) -> Result<usize> {
    let v: Map<String, Value> = serde_json::from_slice(event_json)?;
    Ok(v.get("Records")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
}

/// Seconds spent in each phase of [`transform_object`] over `objs`: read, transform, encode.
pub fn transform_phases(
    cfg: &PipelineConfig,
    objs: &[RawObject],
    hash_key: Option<&HashKey>,
) -> Result<[f64; 3]> {
    let mut t = [0.0; 3];
    for obj in objs {
        let ds: &Dataset = cfg.dataset(&obj.dataset).context("dataset of raw object")?;
        let file = obj.key.rsplit('/').next().unwrap_or("");
        let (format, gz) = format_of(file).context("format of raw object")?;
        let start = std::time::Instant::now();
        let mut items = Vec::new();
        read_object(&obj.body, format, gz, limits(), &mut |i| items.push(i))
            .map_err(|e| anyhow::anyhow!("read {}: {e}", obj.key))?;
        t[0] += start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        let cols = columns(ds);
        let tr = transform(
            ds,
            &cols,
            items,
            &obj.key,
            &Partition::of_micros(0),
            hash_key,
        );
        t[1] += start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        for rows in tr.rows.values() {
            std::hint::black_box(
                s3_transform::parquet_out::encode(&cols, rows, &obj.key)
                    .map_err(|e| anyhow::anyhow!("parquet: {e}"))?,
            );
        }
        t[2] += start.elapsed().as_secs_f64();
    }
    Ok(t)
}
