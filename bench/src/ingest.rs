//! The ingest figures: sluice's ingest CPU path on the 6 MB event (whole path, event parse,
//! gzip at the configured and other levels) and the Python reference
//! (`bench/python/ingest_ref.py`) on the same event, with the objects whose NDJSON is identical.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::Result;
use sha2::{Digest, Sha256};
use sluice_bench::ingest;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;

use crate::report::{line, Line};
use crate::stats::{fmt_int, time_median, MB};

pub fn gunzip(b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out)?;
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub struct IngestFigures {
    pub records: usize,
    pub event_bytes: usize,
    pub secs: f64,
    /// Event JSON → `StreamRecord`s (serde + base64).
    pub parse_secs: f64,
    pub gzip_secs: f64,
    /// Other gzip levels on the same objects: (level, seconds, bytes).
    pub levels: Vec<(u32, f64, usize)>,
    pub out_bytes: usize,
    pub raw_bytes: usize,
    pub hashes: BTreeMap<String, String>,
    pub objects: usize,
}

pub fn bench_ingest(cfg: &PipelineConfig, event: &[u8], records: usize) -> Result<IngestFigures> {
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

/// The ingest rows of the table.
pub fn rows(lines: &mut Vec<Line>, ing: &IngestFigures) {
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
}
