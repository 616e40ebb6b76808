//! `sluice-bench`: measures every figure of the benchmark table in one run, prints the table
//! and writes BENCHMARKS.md (date, machine, command, table, notes from `bench/NOTES.md`).
//!
//! Usage: `sluice-bench [--out FILE] [--command TEXT] [--ingest-bin PATH] [--skip-rss] [--only-ingest]`
//! (`bench/run.sh`, i.e. `make bench`, builds the release binaries and runs it).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use s3_transform::transform::{Column, Row};
use s3_transform::warehouse::{copy_columns, copy_rows, Postgres, Warehouse};
use sha2::{Digest, Sha256};
use sluice_bench::runtime_api::{RuntimeApi, Seen};
use sluice_bench::{
    demo_config, hash_key, ingest, ingest_event, raw_objects, repo_root, transform_object,
};
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{object_key, Partition, RAW_EXTENSION};
use tokio_postgres::types::Type;

const MB: f64 = 1_000_000.0;
const FUNCTIONS: [&str; 4] = [
    "kinesis-ingest",
    "s3-transform",
    "glue-catalog",
    "failure-notifier",
];

struct Opts {
    out: PathBuf,
    command: String,
    ingest_bin: PathBuf,
    skip_rss: bool,
    /// Only the ingest figures (Rust and Python), printed, BENCHMARKS.md untouched.
    only_ingest: bool,
}

fn opts() -> Result<Opts> {
    let root = repo_root();
    let mut o = Opts {
        out: root.join("BENCHMARKS.md"),
        command: "make bench".into(),
        ingest_bin: root.join("target/release/kinesis-ingest"),
        skip_rss: false,
        only_ingest: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => o.out = args.next().context("--out FILE")?.into(),
            "--command" => o.command = args.next().context("--command TEXT")?,
            "--ingest-bin" => o.ingest_bin = args.next().context("--ingest-bin PATH")?.into(),
            "--skip-rss" => o.skip_rss = true,
            "--only-ingest" => o.only_ingest = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(o)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median wall time of `f` over `n` runs after `warm` unmeasured ones.
fn time_median<T>(warm: usize, n: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    for _ in 0..warm {
        std::hint::black_box(f()?);
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f()?);
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn gunzip(b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out)?;
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One row of the table.
struct Line {
    figure: String,
    value: String,
    target: String,
    met: Option<bool>,
}

fn line(figure: &str, value: String, target: &str, met: Option<bool>) -> Line {
    Line {
        figure: figure.into(),
        value,
        target: target.into(),
        met,
    }
}

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let neg = s.starts_with('-');
    let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(*c);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

struct IngestFigures {
    records: usize,
    event_bytes: usize,
    secs: f64,
    /// Event JSON → `StreamRecord`s (serde + base64).
    parse_secs: f64,
    gzip_secs: f64,
    /// Other gzip levels on the same objects: (level, seconds, bytes).
    levels: Vec<(u32, f64, usize)>,
    out_bytes: usize,
    raw_bytes: usize,
    hashes: BTreeMap<String, String>,
    objects: usize,
}

fn bench_ingest(cfg: &PipelineConfig, event: &[u8], records: usize) -> Result<IngestFigures> {
    let zones = Zones::default();
    let plan = ingest(cfg, &zones, event)?;
    let secs = time_median(2, 15, || ingest(cfg, &zones, event))?;
    let parse_secs = time_median(1, 9, || {
        let ev: kinesis_ingest::KinesisBatch = serde_json::from_slice(event)?;
        Ok(ev.records)
    })?;
    let mut hashes = BTreeMap::new();
    let mut raw = Vec::new();
    for o in &plan.objects {
        let nd = gunzip(&o.body)?;
        hashes.insert(o.key.clone(), hex(&Sha256::digest(&nd)));
        raw.push(nd);
    }
    let gzip_at = |level: u32| {
        time_median(1, 9, || {
            raw.iter()
                .map(|r| sluice_core::ndjson::gzip(r, level))
                .collect::<sluice_core::Result<Vec<_>>>()
                .map_err(anyhow::Error::from)
        })
    };
    let gzip_secs = gzip_at(cfg.gzip_level)?;
    let mut levels = Vec::new();
    for level in [1u32, 3, 9] {
        let bytes: usize = raw
            .iter()
            .map(|r| sluice_core::ndjson::gzip(r, level).map(|g| g.len()))
            .sum::<sluice_core::Result<usize>>()?;
        levels.push((level, gzip_at(level)?, bytes));
    }
    Ok(IngestFigures {
        records,
        event_bytes: event.len(),
        secs,
        parse_secs,
        gzip_secs,
        levels,
        out_bytes: plan.objects.iter().map(|o| o.body.len()).sum(),
        raw_bytes: plan.objects.iter().map(|o| o.raw_bytes).sum(),
        hashes,
        objects: plan.objects.len(),
    })
}

struct PyFigures {
    version: String,
    secs: f64,
    gzip_secs: f64,
    out_bytes: usize,
    identical: usize,
    objects: usize,
    /// (level, gzip seconds, gzip bytes) of the what-if levels.
    levels: Vec<(u32, f64, usize)>,
}

fn bench_python(event_path: &std::path::Path, ingest: &IngestFigures) -> Result<PyFigures> {
    let root = repo_root();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root.join("bench/python/ingest_ref.py"))
        .arg(event_path)
        .arg(root.join("pipeline.toml"))
        .args(["--iterations", "7"])
        .arg("--levels")
        .arg(
            ingest
                .levels
                .iter()
                .map(|(l, _, _)| l.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .output()
        .with_context(|| format!("run {python} bench/python/ingest_ref.py"))?;
    if !out.status.success() {
        bail!(
            "python reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let objects = v["objects"].as_array().context("objects")?;
    let mut identical = 0;
    let mut out_bytes = 0;
    for o in objects {
        out_bytes += o["gz_bytes"].as_u64().unwrap_or(0) as usize;
        let key = o["key"].as_str().unwrap_or("");
        if ingest.hashes.get(key).map(String::as_str) == o["sha256"].as_str() {
            identical += 1;
        }
    }
    let mut levels = Vec::new();
    for l in v["levels"].as_array().context("levels")? {
        levels.push((
            l["level"].as_u64().context("level")? as u32,
            l["gzip_seconds_median"].as_f64().context("level seconds")?,
            l["gz_bytes"].as_u64().context("level bytes")? as usize,
        ));
    }
    Ok(PyFigures {
        levels,
        version: v["python"].as_str().unwrap_or("?").to_string(),
        secs: v["seconds_median"].as_f64().context("seconds")?,
        gzip_secs: v["gzip_seconds_median"].as_f64().context("gzip seconds")?,
        out_bytes,
        identical,
        objects: objects.len(),
    })
}

struct TransformFigures {
    /// Median seconds in read (gunzip + JSON), transform (coerce, mask, dedupe), Parquet.
    phases: [f64; 3],
    objects: usize,
    rows: usize,
    secs: f64,
    parquet_bytes: usize,
}

fn bench_transform(cfg: &PipelineConfig) -> Result<(TransformFigures, Vec<Row>, Vec<Column>)> {
    let objs = raw_objects(cfg, 20_000, 5_000)?;
    let key = hash_key()?;
    let mut rows = 0;
    let mut parquet = 0;
    let mut pv_rows = Vec::new();
    let mut pv_cols = Vec::new();
    for o in &objs {
        let (t, cols, bytes) = transform_object(cfg, o, Some(&key))?;
        rows += t.row_count();
        parquet += bytes;
        if o.dataset == "page_views" {
            pv_cols = cols;
            pv_rows.extend(t.rows.into_values().flatten());
        }
    }
    let secs = time_median(1, 7, || {
        let mut n = 0;
        for o in &objs {
            n += transform_object(cfg, o, Some(&key))?.0.row_count();
        }
        Ok(n)
    })?;
    let mut phases = Vec::new();
    for _ in 0..5 {
        phases.push(sluice_bench::transform_phases(cfg, &objs, Some(&key))?);
    }
    let phase = |i: usize| median(phases.iter().map(|p| p[i]).collect());
    Ok((
        TransformFigures {
            phases: [phase(0), phase(1), phase(2)],
            objects: objs.len(),
            rows,
            secs,
            parquet_bytes: parquet,
        },
        pv_rows,
        pv_cols,
    ))
}

/// Plain binary COPY of the rows straight into the (already created) table, through the
/// loader's own COPY code (`warehouse::copy_rows`): the baseline the merge is compared with.
async fn plain_copy(
    client: &mut tokio_postgres::Client,
    qualified: &str,
    cols: &[Column],
    rows: &[&Row],
    source: &str,
) -> Result<()> {
    let columns = copy_columns(cols);
    let names: Vec<&str> = columns.iter().map(|(n, _, _)| n.as_str()).collect();
    let types: Vec<Type> = columns.iter().map(|(_, _, t)| t.clone()).collect();
    let tx = client.transaction().await?;
    let sql = format!(
        "COPY {qualified} ({}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    );
    copy_rows(&tx, &sql, &types, cols, rows, source).await?;
    tx.commit().await?;
    Ok(())
}

struct PgFigures {
    rows: usize,
    copy_secs: f64,
    load_secs: f64,
    replay_secs: f64,
}

fn bench_postgres(cfg: &PipelineConfig, rows: &[Row], cols: &[Column]) -> Result<PgFigures> {
    let pg = sluice_local::Pg::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let schema = cfg.warehouse.schema.clone();
        let config: tokio_postgres::Config = pg.url.parse()?;
        let wh = Postgres::new(config, None, &schema);
        let mut client = pg.client().await?;
        let refs: Vec<&Row> = rows.iter().collect();
        let file = format!("bench{RAW_EXTENSION}");
        let source = object_key("raw/", "page_views", &Partition::of_hour(489_945), &file);
        let source = source.as_str();
        // Create both tables with the loader's DDL (primary key on _sluice_key), then empty them.
        wh.load("page_views", cols, &refs[..1], source).await?;
        wh.load("page_views_copy", cols, &refs[..1], source).await?;
        let copy_table = format!("\"{schema}\".\"page_views_copy\"");
        let load_table = format!("\"{schema}\".\"page_views\"");
        let (mut copy_t, mut load_t, mut replay_t) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..6 {
            // Each load into a freshly emptied table after a checkpoint; which one goes first
            // alternates between rounds so neither gets the warmer start.
            let mut c = 0.0;
            let mut l = 0.0;
            for step in 0..2 {
                let copy_turn = (step + i) % 2 == 0;
                let table = if copy_turn { &copy_table } else { &load_table };
                client
                    .batch_execute(&format!("TRUNCATE {table}; CHECKPOINT"))
                    .await?;
                let t = Instant::now();
                if copy_turn {
                    plain_copy(&mut client, &copy_table, cols, &refs, source).await?;
                    c = t.elapsed().as_secs_f64();
                } else {
                    let stats = wh.load("page_views", cols, &refs, source).await?;
                    l = t.elapsed().as_secs_f64();
                    if stats.inserted as usize != refs.len() {
                        bail!(
                            "idempotent load inserted {} of {}",
                            stats.inserted,
                            refs.len()
                        );
                    }
                }
            }
            let t = Instant::now();
            let again = wh.load("page_views", cols, &refs, source).await?;
            let r = t.elapsed().as_secs_f64();
            if again.inserted + again.updated != 0 {
                bail!("replay changed rows: {again:?}");
            }
            if i > 0 {
                copy_t.push(c);
                load_t.push(l);
                replay_t.push(r);
            }
        }
        Ok(PgFigures {
            rows: rows.len(),
            copy_secs: median(copy_t),
            load_secs: median(load_t),
            replay_secs: median(replay_t),
        })
    })
}

fn function_env(cmd: &mut Command, api: &str, bucket: &str, endpoint: &str) {
    let root = repo_root();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "kinesis-ingest")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/kinesis-ingest")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/11/22/[$LATEST]bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_SESSION_TOKEN", "test")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env(sluice_core::env::CONFIG, root.join("pipeline.toml"))
        .env(sluice_core::env::BUCKET, bucket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// Process start → first `GET /next`, median of `n` cold starts (after one unmeasured).
fn bench_init(bin: &std::path::Path, n: usize) -> Result<(f64, f64, f64)> {
    let mut times = Vec::new();
    for i in 0..=n {
        let api = RuntimeApi::start(None)?;
        let mut cmd = Command::new(bin);
        function_env(&mut cmd, &api.addr, "x", "http://127.0.0.1:9");
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let seen = api.wait(Duration::from_secs(20));
        let _ = child.kill();
        let _ = child.wait();
        match seen? {
            Seen::Next(at) => {
                if i > 0 {
                    times.push(at.duration_since(t0).as_secs_f64());
                }
            }
            other => bail!("expected GET /next, got {other:?}"),
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok((median(times), min, max))
}

fn vm_hwm_kb(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/<pid>/status")
}

struct RssFigures {
    idle_kb: u64,
    peak_kb: u64,
    objects: usize,
    secs: f64,
}

/// Peak RSS of the release binary handling one full event against moto.
fn bench_rss(
    bin: &std::path::Path,
    event: Arc<Vec<u8>>,
    expected_objects: usize,
) -> Result<RssFigures> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let aws = rt.block_on(sluice_local::Aws::local());
    let bucket = rt.block_on(aws.bucket());
    let api = RuntimeApi::start(Some(event))?;
    let mut cmd = Command::new(bin);
    function_env(&mut cmd, &api.addr, &bucket, &aws.endpoint);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let pid = child.id();
    let result = (|| {
        let Seen::Next(_) = api.wait(Duration::from_secs(30))? else {
            bail!("expected GET /next first");
        };
        let idle_kb = vm_hwm_kb(pid)?;
        let t = Instant::now();
        let body = match api.wait(Duration::from_secs(300))? {
            Seen::Response(b) => b,
            other => bail!("the invocation failed: {other:?}"),
        };
        let secs = t.elapsed().as_secs_f64();
        let peak_kb = vm_hwm_kb(pid)?;
        let resp: serde_json::Value = serde_json::from_slice(&body)?;
        let failures = resp["batchItemFailures"].as_array().map_or(0, Vec::len);
        if failures != 0 {
            bail!("{failures} batch item failures: {resp}");
        }
        Ok((idle_kb, peak_kb, secs))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let (idle_kb, peak_kb, secs) = result?;
    let objects = rt.block_on(aws.keys(&bucket, "")).len();
    if objects != expected_objects {
        bail!("{objects} objects in the bucket, expected {expected_objects}");
    }
    Ok(RssFigures {
        idle_kb,
        peak_kb,
        objects,
        secs,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let uname = run_text("uname", &["-srm"]);
    let rustc = run_text("rustc", &["-V"]);
    format!("{cpu}, {cores} cores, {mem} RAM; {uname}; {rustc}; load average at the start {load}")
}

fn run_text(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<()> {
    let o = opts()?;
    let machine = machine();
    let root = repo_root();
    let cfg = demo_config()?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();

    eprintln!("[1/7] building the 6 MB Kinesis event");
    let (event, records) = ingest_event()?;
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let event_path = dir.join("kinesis-6mb.json");
    std::fs::write(&event_path, &event)?;
    let payload: usize = sluice_bench::records(records)
        .iter()
        .map(|r| r.data.len())
        .sum();
    notes.push(format!(
        "Input: one Kinesis event of {} bytes ({records} records, {:.0} B average decoded record, \
         ~3 % malformed; `target/bench/kinesis-6mb.json`), the largest that fits Lambda's 6 MiB payload.",
        event.len(),
        payload as f64 / records as f64
    ));

    eprintln!("[2/7] ingest CPU path (Rust)");
    let ing = bench_ingest(&cfg, &event, records)?;
    let rps = ing.records as f64 / ing.secs;
    lines.push(line(
        "ingest: records/s per core (6 MB event → objects)",
        fmt_int(rps),
        "≥ 150 000",
        Some(rps >= 150_000.0),
    ));
    lines.push(line(
        "ingest: MB/s per core (event JSON in)",
        format!("{:.1}", ing.event_bytes as f64 / MB / ing.secs),
        "",
        None,
    ));
    lines.push(line(
        "ingest: output bytes (gzip, all objects)",
        format!(
            "{} ({} objects; NDJSON {} → ratio {:.2})",
            fmt_int(ing.out_bytes as f64),
            ing.objects,
            fmt_int(ing.raw_bytes as f64),
            ing.raw_bytes as f64 / ing.out_bytes as f64
        ),
        "",
        None,
    ));
    lines.push(line(
        "ingest: of which event parse + base64 / gzip",
        format!(
            "{:.1} ms / {:.1} ms of {:.1} ms (gzip {:.0} %)",
            ing.parse_secs * 1e3,
            ing.gzip_secs * 1e3,
            ing.secs * 1e3,
            100.0 * ing.gzip_secs / ing.secs
        ),
        "",
        None,
    ));

    eprintln!("[3/7] ingest CPU path (Python reference)");
    match bench_python(&event_path, &ing) {
        Ok(py) => {
            let py_rps = ing.records as f64 / py.secs;
            let ratio = py.secs / ing.secs;
            lines.push(line(
                &format!("Python {} reference: records/s", py.version),
                fmt_int(py_rps),
                "",
                None,
            ));
            lines.push(line(
                "Python reference: output bytes",
                format!(
                    "{} ({}/{} objects with NDJSON identical to sluice's)",
                    fmt_int(py.out_bytes as f64),
                    py.identical,
                    py.objects
                ),
                "",
                None,
            ));
            lines.push(line(
                "Python reference: of which gzip",
                format!("{:.1} ms of {:.1} ms", py.gzip_secs * 1e3, py.secs * 1e3),
                "",
                None,
            ));
            lines.push(line(
                "ingest: sluice / Python (speed; output size)",
                format!(
                    "{ratio:.2}× ; {:.3}× the bytes",
                    ing.out_bytes as f64 / py.out_bytes as f64
                ),
                "≥ 5× at ≤ 1.000× the bytes",
                Some(ratio >= 5.0 && ing.out_bytes <= py.out_bytes),
            ));
            for (level, secs, bytes) in &ing.levels {
                // Both paths with only the gzip step at another level (each side's own measured
                // gzip time at that level, on the same objects).
                let total = ing.secs - ing.gzip_secs + secs;
                let Some((_, py_gz, py_bytes)) = py.levels.iter().find(|(l, _, _)| l == level)
                else {
                    continue;
                };
                let py_total = py.secs - py.gzip_secs + py_gz;
                lines.push(line(
                    &format!("what-if: gzip level {level} instead of {}", cfg.gzip_level),
                    format!(
                        "sluice {} records/s (gzip {:.1} ms), Python at level {level} {} records/s → {:.2}×; {:.3}× Python's bytes at level {level} ({:.3}× at level {})",
                        fmt_int(ing.records as f64 / total),
                        secs * 1e3,
                        fmt_int(ing.records as f64 / py_total),
                        py_total / total,
                        *bytes as f64 / *py_bytes as f64,
                        *bytes as f64 / py.out_bytes as f64,
                        cfg.gzip_level
                    ),
                    "",
                    None,
                ));
            }
        }
        Err(e) => lines.push(line(
            "Python reference",
            format!("not measured: {e:#}"),
            "",
            Some(false),
        )),
    }

    if o.only_ingest {
        // Keep sluice's objects for comparison with the reference (target/bench/rust/).
        let zones = Zones::default();
        let out = dir.join("rust");
        std::fs::create_dir_all(&out)?;
        for ob in ingest(&cfg, &zones, &event)?.objects {
            std::fs::write(out.join(ob.key.replace('/', "_")), gunzip(&ob.body)?)?;
        }
        for l in &lines {
            println!("{}: {}", l.figure, l.value);
        }
        return Ok(());
    }

    eprintln!("[4/7] transform CPU path");
    let (tf, pv_rows, pv_cols) = bench_transform(&cfg)?;
    let trps = tf.rows as f64 / tf.secs;
    lines.push(line(
        "transform: rows/s per core (.json.gz → Parquet)",
        format!(
            "{} ({} rows in {} raw objects → {} B Parquet)",
            fmt_int(trps),
            fmt_int(tf.rows as f64),
            tf.objects,
            fmt_int(tf.parquet_bytes as f64)
        ),
        "≥ 200 000",
        Some(trps >= 200_000.0),
    ));

    lines.push(line(
        "transform: of which read / transform / Parquet",
        format!(
            "{:.1} / {:.1} / {:.1} ms of {:.1} ms",
            tf.phases[0] * 1e3,
            tf.phases[1] * 1e3,
            tf.phases[2] * 1e3,
            tf.secs * 1e3
        ),
        "",
        None,
    ));

    eprintln!("[5/7] PostgreSQL load");
    match bench_postgres(&cfg, &pv_rows, &pv_cols) {
        Ok(pg) => {
            let copy = pg.rows as f64 / pg.copy_secs;
            let load = pg.rows as f64 / pg.load_secs;
            lines.push(line(
                &format!(
                    "PostgreSQL: plain binary COPY, rows/s ({} page_views rows)",
                    pg.rows
                ),
                fmt_int(copy),
                "",
                None,
            ));
            lines.push(line(
                "PostgreSQL: idempotent load (stage + merge), rows/s",
                format!("{} ({:.2}× COPY)", fmt_int(load), load / copy),
                "≥ 0.8× COPY",
                Some(load / copy >= 0.8),
            ));
            lines.push(line(
                "PostgreSQL: replay of the same rows (no-op merge), rows/s",
                fmt_int(pg.rows as f64 / pg.replay_secs),
                "",
                None,
            ));
        }
        Err(e) => lines.push(line(
            "PostgreSQL load",
            format!("not measured: {e:#}"),
            "≥ 0.8× COPY",
            Some(false),
        )),
    }

    eprintln!("[6/7] init time and peak RSS ({})", o.ingest_bin.display());
    if o.ingest_bin.exists() {
        match bench_init(&o.ingest_bin, 25) {
            Ok((med, min, max)) => lines.push(line(
                "init: process start → first GET /next (median of 25)",
                format!(
                    "{:.1} ms (min {:.1}, max {:.1})",
                    med * 1e3,
                    min * 1e3,
                    max * 1e3
                ),
                "≤ 15 ms",
                Some(med <= 0.015),
            )),
            Err(e) => lines.push(line(
                "init time",
                format!("not measured: {e:#}"),
                "≤ 15 ms",
                Some(false),
            )),
        }
        if o.skip_rss {
            lines.push(line(
                "peak RSS",
                "skipped (--skip-rss)".into(),
                "≤ 48 MB",
                None,
            ));
        } else {
            let zones = Zones::default();
            let expected = ingest(&cfg, &zones, &event)?.objects.len();
            match bench_rss(&o.ingest_bin, Arc::new(event.clone()), expected) {
                Ok(r) => lines.push(line(
                    "peak RSS: one full 6 MB batch (VmHWM)",
                    format!(
                        "{:.1} MB (idle after init {:.1} MB; {} objects written to moto in {:.2} s)",
                        r.peak_kb as f64 * 1024.0 / MB,
                        r.idle_kb as f64 * 1024.0 / MB,
                        r.objects,
                        r.secs
                    ),
                    "≤ 48 MB",
                    Some(r.peak_kb as f64 * 1024.0 <= 48.0 * MB),
                )),
                Err(e) => lines.push(line(
                    "peak RSS",
                    format!("not measured: {e:#}"),
                    "≤ 48 MB",
                    Some(false),
                )),
            }
        }
    } else {
        lines.push(line(
            "init time, peak RSS",
            format!("not measured: {} is missing", o.ingest_bin.display()),
            "",
            Some(false),
        ));
    }

    eprintln!("[7/7] zip sizes");
    for f in FUNCTIONS {
        let zip = root.join(format!("target/lambda/{f}/bootstrap.zip"));
        match std::fs::metadata(&zip) {
            Ok(m) => lines.push(line(
                &format!("zip: {f} (arm64 release)"),
                format!("{:.2} MB", m.len() as f64 / MB),
                "≤ 6 MB",
                Some(m.len() as f64 <= 6.0 * MB),
            )),
            Err(_) => lines.push(line(
                &format!("zip: {f} (arm64 release)"),
                format!(
                    "not measured: target/lambda/{f}/bootstrap.zip is missing (run `make build`)"
                ),
                "≤ 6 MB",
                None,
            )),
        }
    }

    let mut table =
        String::from("| figure | measured | target | met |\n| --- | --- | --- | --- |\n");
    for l in &lines {
        let met = match l.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        table.push_str(&format!(
            "| {} | {} | {} | {met} |\n",
            l.figure, l.value, l.target
        ));
    }
    println!("{table}");
    for n in &notes {
        println!("{n}");
    }

    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let mut md = format!(
        "# Benchmarks\n\nGenerated by `{}` (bench/run.sh → `sluice-bench`) on {date}.\n\n\
         Machine: {}.\n\nEvery figure below was measured in this one run; per-core figures are \
         single-threaded.\n\n{table}\n",
        o.command, machine
    );
    for n in &notes {
        md.push_str(&format!("{n}\n\n"));
    }
    if let Ok(extra) = std::fs::read_to_string(root.join("bench/NOTES.md")) {
        md.push_str(&extra);
    }
    std::fs::write(&o.out, md).with_context(|| format!("write {}", o.out.display()))?;
    eprintln!("wrote {}", o.out.display());
    Ok(())
}
