//! The Python reference figures: `bench/python/ingest_ref.py` run on the same 6 MB event
//! (speed, gzip share, output bytes, objects whose NDJSON is identical to sluice's), and its
//! rows of the table, set against sluice's ingest figures.

use std::process::Command;

use anyhow::{bail, Context, Result};
use sluice_bench::repo_root;
use sluice_core::config::PipelineConfig;

use crate::ingest::IngestFigures;
use crate::report::{line, Line};
use crate::stats::fmt_int;

pub struct PyFigures {
    pub version: String,
    pub secs: f64,
    pub gzip_secs: f64,
    pub out_bytes: usize,
    pub identical: usize,
    pub objects: usize,
    /// (level, gzip seconds, gzip bytes) of the what-if levels.
    pub levels: Vec<(u32, f64, usize)>,
}

pub fn bench_python(event_path: &std::path::Path, ingest: &IngestFigures) -> Result<PyFigures> {
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

/// The Python reference rows (or one "not measured" row), with the gzip-level what-ifs.
pub fn rows(
    lines: &mut Vec<Line>,
    cfg: &PipelineConfig,
    ing: &IngestFigures,
    py: Result<PyFigures>,
) {
    match py {
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
}
