//! The transform figures: s3-transform's CPU path over generated raw objects (.json.gz →
//! Parquet), in total and per phase; also hands back the page_views rows for the load figures.

use anyhow::Result;
use s3_transform::transform::{Column, Row};
use sluice_bench::{hash_key, raw_objects, transform_object};
use sluice_core::config::PipelineConfig;

use crate::report::{line, Line};
use crate::stats::{fmt_int, median, time_median};

pub struct TransformFigures {
    /// Median seconds in read (gunzip + JSON), transform (coerce, mask, dedupe), Parquet.
    pub phases: [f64; 3],
    pub objects: usize,
    pub rows: usize,
    pub secs: f64,
    pub parquet_bytes: usize,
    /// Median seconds of the same run with every dataset filter removed.
    pub secs_without_filters: f64,
    /// Filters declared across the datasets (the demo's `page_views.no_bots`).
    pub filters: usize,
}

pub fn bench_transform(cfg: &PipelineConfig) -> Result<(TransformFigures, Vec<Row>, Vec<Column>)> {
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
    let mut unfiltered = cfg.clone();
    let filters = unfiltered.datasets.iter().map(|d| d.filters.len()).sum();
    for d in &mut unfiltered.datasets {
        d.filters.clear();
    }
    let secs_without_filters = time_median(1, 7, || {
        let mut n = 0;
        for o in &objs {
            n += transform_object(&unfiltered, o, Some(&key))?.0.row_count();
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
            secs_without_filters,
            filters,
        },
        pv_rows,
        pv_cols,
    ))
}

/// The transform rows of the table.
pub fn rows(lines: &mut Vec<Line>, tf: &TransformFigures) {
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
        "transform: cost of the filters (same run without them)",
        format!(
            "{:+.1} ns per row ({} filter(s); {} rows/s without)",
            (tf.secs - tf.secs_without_filters) / tf.rows as f64 * 1e9,
            tf.filters,
            fmt_int(tf.rows as f64 / tf.secs_without_filters)
        ),
        "",
        None,
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
}
