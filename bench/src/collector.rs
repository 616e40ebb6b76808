//! The collector figures: http-collector's CPU path on one 1 MB NDJSON body, `POST /v1/events`
//! through `Handler::handle` (authenticate, split, check every record, partition keys, cut into
//! PutRecords calls, build the SDK's request entries) with a stream that answers every entry as
//! written, against `bench/python/collector_ref.py` doing the same work on the same bytes.
//! Neither side includes the SDK's request serialisation, signing or the network.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use async_trait::async_trait;
use http_collector::auth::{KeySource, Keys};
use http_collector::body::{split, Framing, Limits};
use http_collector::handler::partition_key;
use http_collector::kinesis::request_entries;
use http_collector::put::{CallResult, Entry, Stream};
use http_collector::{Config, Handler, Request};
use sha2::{Digest, Sha256};
use sluice_bench::repo_root;

use crate::report::{line, Line};
use crate::stats::{fmt_int, time_median, MB};

/// The body's size: 1 MB of NDJSON.
pub const BODY_BYTES: usize = 1_000_000;
/// The record field the partition key comes from (as in the demo).
pub const PARTITION_FIELD: &str = "user_id";
const API_KEY: &str = "sluice-bench-api-key-0001";

/// The generated clickstream (padded, ~3 % malformed) as NDJSON, as many lines as fit.
pub fn body() -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_BYTES);
    for r in sluice_bench::records(4_000) {
        if out.len() + r.data.len() + 1 > BODY_BYTES {
            break;
        }
        out.extend_from_slice(&r.data);
        out.push(b'\n');
    }
    out
}

/// SHA-256 over `partition key \t data \n` of every accepted record, in order: what both
/// sides would send to Kinesis.
pub fn entries_digest(body: &[u8]) -> Result<(usize, String)> {
    let items = split(
        body,
        Framing::Lines,
        &Limits::default(),
        Some(PARTITION_FIELD),
    )?;
    let mut h = Sha256::new();
    let mut n = 0;
    for it in items.iter().filter(|i| i.is_ok()) {
        h.update(partition_key(it.bytes, it.key).as_bytes());
        h.update(b"\t");
        h.update(it.bytes);
        h.update(b"\n");
        n += 1;
    }
    Ok((n, hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct OneKey;

#[async_trait]
impl KeySource for OneKey {
    async fn secret_text(&self) -> http_collector::Result<String> {
        Ok(serde_json::json!({ "bench": API_KEY }).to_string())
    }
    fn name(&self) -> &str {
        "bench-keys"
    }
}

/// A stream that builds the SDK's PutRecords entries (`KinesisStream`'s own code) and answers
/// every entry as written.
struct Sink {
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Stream for Sink {
    async fn put_records(&self, entries: &[Entry<'_>]) -> CallResult {
        std::hint::black_box(request_entries(entries)?);
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(vec![None; entries.len()])
    }
}

pub struct CollectorFigures {
    pub body_bytes: usize,
    pub records: usize,
    pub accepted: usize,
    pub secs: f64,
    pub calls_per_request: usize,
    pub digest: String,
    /// Median seconds of `split` alone (framing, UTF-8, JSON and validity checks per record)
    /// and of the partition keys of the accepted records alone.
    pub split_secs: f64,
    pub keys_secs: f64,
}

pub fn bench_rust(body: &[u8]) -> Result<CollectorFigures> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let cfg = Config {
        stream: "sluice-events".into(),
        keys_secret: "bench-keys".into(),
        keys_ttl: Duration::from_secs(300),
        partition_key: Some(PARTITION_FIELD.into()),
        limits: Limits::default(),
        deadline: Duration::from_secs(10),
    };
    let keys = Keys::new(Box::new(OneKey), cfg.keys_ttl);
    rt.block_on(keys.load())?;
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = Handler {
        cfg,
        stream: Box::new(Sink {
            calls: calls.clone(),
        }),
        keys,
    };
    let req = Request {
        method: "POST".into(),
        path: "/v1/events".into(),
        headers: vec![
            ("content-type".into(), "application/x-ndjson".into()),
            ("x-api-key".into(), API_KEY.into()),
        ],
        body: body.to_vec(),
        request_id: "bench".into(),
    };
    let first = rt.block_on(handler.handle(&req, None));
    let answer: serde_json::Value = serde_json::from_str(&first.body)?;
    let accepted = answer["accepted"].as_u64().context("accepted")? as usize;
    let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
    ensure!(
        answer["failed"].as_array().is_none_or(Vec::is_empty),
        "the sink wrote everything, yet: {}",
        first.body
    );
    let calls_per_request = calls.load(Ordering::Relaxed);
    let secs = time_median(2, 21, || Ok(rt.block_on(handler.handle(&req, None))))?;
    let (n, digest) = entries_digest(body)?;
    ensure!(
        n == accepted,
        "digest over {n} entries, handler accepted {accepted}"
    );
    let limits = Limits::default();
    let field = Some(PARTITION_FIELD);
    let split_secs = time_median(2, 21, || {
        Ok(split(body, Framing::Lines, &limits, field)?.len())
    })?;
    let items = split(body, Framing::Lines, &limits, field)?;
    let keys_secs = time_median(2, 21, || {
        Ok(items
            .iter()
            .filter(|i| i.is_ok())
            .map(|i| partition_key(i.bytes, i.key))
            .collect::<Vec<_>>())
    })?;
    Ok(CollectorFigures {
        body_bytes: body.len(),
        records: accepted + rejected,
        accepted,
        secs,
        calls_per_request,
        digest,
        split_secs,
        keys_secs,
    })
}

pub struct PyCollector {
    pub version: String,
    pub secs: f64,
    pub accepted: usize,
    pub calls: usize,
    pub digest: String,
}

pub fn bench_python(body_path: &Path) -> Result<PyCollector> {
    let root = repo_root();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root.join("bench/python/collector_ref.py"))
        .arg(body_path)
        .args(["--partition-key", PARTITION_FIELD, "--iterations", "21"])
        .output()
        .with_context(|| format!("run {python} bench/python/collector_ref.py"))?;
    if !out.status.success() {
        bail!(
            "python collector reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(PyCollector {
        version: v["python"].as_str().unwrap_or("?").to_string(),
        secs: v["seconds_median"].as_f64().context("seconds")?,
        accepted: v["accepted"].as_u64().context("accepted")? as usize,
        calls: v["put_records_calls"].as_u64().context("calls")? as usize,
        digest: v["entries_sha256"].as_str().unwrap_or("").to_string(),
    })
}

/// Writes the body to `dir/collector-1mb.ndjson`, measures both sides, adds their rows and
/// returns the note that describes the input.
pub fn measure(dir: &Path, lines: &mut Vec<Line>) -> Result<String> {
    let body = body();
    let body_path = dir.join("collector-1mb.ndjson");
    std::fs::write(&body_path, &body)?;
    let rs = bench_rust(&body)?;
    rows(lines, &rs, bench_python(&body_path));
    Ok(format!(
        "Collector input: one NDJSON body of {} bytes ({} lines of the same clickstream, ~3 % \
         malformed; `target/bench/collector-1mb.ndjson`), posted to `/v1/events` with an API key.",
        body.len(),
        rs.records
    ))
}

/// The collector rows of the table.
pub fn rows(lines: &mut Vec<Line>, rs: &CollectorFigures, py: Result<PyCollector>) {
    let rps = rs.records as f64 / rs.secs;
    lines.push(line(
        "collector: records/s per core (1 MB NDJSON body → PutRecords entries)",
        format!(
            "{} ({} records, {} accepted, {} PutRecords calls; {:.1} MB/s; {:.2} ms per request)",
            fmt_int(rps),
            rs.records,
            rs.accepted,
            rs.calls_per_request,
            rs.body_bytes as f64 / MB / rs.secs,
            rs.secs * 1e3
        ),
        "",
        None,
    ));
    lines.push(line(
        "collector: of which split + record checks (+ key field) / partition keys / the rest",
        format!(
            "{:.2} / {:.2} / {:.2} ms of {:.2} ms",
            rs.split_secs * 1e3,
            rs.keys_secs * 1e3,
            (rs.secs - rs.split_secs - rs.keys_secs) * 1e3,
            rs.secs * 1e3
        ),
        "",
        None,
    ));
    match py {
        Ok(py) => {
            let same = py.digest == rs.digest && py.accepted == rs.accepted;
            lines.push(line(
                &format!("collector: Python {} reference records/s", py.version),
                format!(
                    "{} ({} accepted, {} calls; entries {} sluice's)",
                    fmt_int(rs.records as f64 / py.secs),
                    py.accepted,
                    py.calls,
                    if same { "identical to" } else { "DIFFER from" }
                ),
                "",
                Some(same),
            ));
            lines.push(line(
                "collector: sluice / Python (speed)",
                format!("{:.2}×", py.secs / rs.secs),
                "",
                None,
            ));
        }
        Err(e) => lines.push(line(
            "collector: Python reference",
            format!("not measured: {e:#}"),
            "",
            Some(false),
        )),
    }
}
