//! The figures of the release function binary as a process: its environment as Lambda would
//! set it, init time (process start → first `GET /next`) and peak RSS (VmHWM) handling one full
//! event against moto, through the fake runtime API.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sluice_bench::runtime_api::{RuntimeApi, Seen};
use sluice_bench::{ingest, repo_root};
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;

use crate::opts::Opts;
use crate::report::{line, Line};
use crate::stats::{median, MB};

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
pub fn bench_init(bin: &std::path::Path, n: usize) -> Result<(f64, f64, f64)> {
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

pub struct RssFigures {
    pub idle_kb: u64,
    pub peak_kb: u64,
    pub objects: usize,
    pub secs: f64,
}

/// Peak RSS of the release binary handling one full event against moto.
pub fn bench_rss(
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

/// Measures init time and peak RSS of `o.ingest_bin` on `event` and adds their rows ("not
/// measured" rows when the binary is missing or a measurement fails).
pub fn rows(lines: &mut Vec<Line>, o: &Opts, cfg: &PipelineConfig, event: &[u8]) -> Result<()> {
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
            let expected = ingest(cfg, &zones, event)?.objects.len();
            match bench_rss(&o.ingest_bin, Arc::new(event.to_vec()), expected) {
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
    Ok(())
}
