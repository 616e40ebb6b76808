//! The PostgreSQL figures: the loader's idempotent load (stage + merge), the same load with a
//! rollup, and its no-op replay, against a plain binary COPY of the same rows, on a local
//! PostgreSQL.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use s3_transform::rollup::{rollups_of, RollupSql};
use s3_transform::transform::{Column, Row};
use s3_transform::warehouse::{copy_columns, copy_rows, Postgres, Warehouse};
use sluice_core::config::{Grain, Measure, MeasureFn, PipelineConfig, Rollup};
use sluice_core::lake::keys::{object_key, Partition, RAW_EXTENSION};
use tokio_postgres::types::Type;

use crate::report::{line, Line};
use crate::stats::{fmt_int, median};

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

pub struct PgFigures {
    pub rows: usize,
    pub copy_secs: f64,
    pub load_secs: f64,
    pub replay_secs: f64,
    /// A first load with one rollup on the table (hour × url: count, count_distinct, max).
    pub rollup_secs: f64,
}

/// The rollup the load is measured with: page_views per hour and url, with three measures.
fn bench_rollup(cfg: &PipelineConfig, cols: &[Column]) -> Result<Vec<RollupSql>> {
    let mut ds = cfg
        .dataset("page_views")
        .context("the demo config has page_views")?
        .clone();
    let field = |name: &str| ds.fields.iter().position(|f| f.name == name);
    let (url, user, duration) = (field("url"), field("user_id"), field("duration_ms"));
    let (Some(url), Some(user), Some(duration)) = (url, user, duration) else {
        bail!("page_views lacks url, user_id or duration_ms");
    };
    ds.rollups = vec![Rollup {
        name: "bench_hourly".into(),
        grain: Grain::Hour,
        dimensions: vec![url],
        measures: vec![
            Measure {
                name: "views".into(),
                func: MeasureFn::Count,
                field: None,
            },
            Measure {
                name: "users".into(),
                func: MeasureFn::CountDistinct,
                field: Some(user),
            },
            Measure {
                name: "longest".into(),
                func: MeasureFn::Max,
                field: Some(duration),
            },
        ],
    }];
    Ok(rollups_of(&ds, cols))
}

pub fn bench_postgres(cfg: &PipelineConfig, rows: &[Row], cols: &[Column]) -> Result<PgFigures> {
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
        wh.load("page_views", cols, &refs[..1], source, &[]).await?;
        wh.load("page_views_copy", cols, &refs[..1], source, &[])
            .await?;
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
                    let stats = wh.load("page_views", cols, &refs, source, &[]).await?;
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
            let again = wh.load("page_views", cols, &refs, source, &[]).await?;
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
        // The same first load with a rollup recomputed in its transaction.
        let rollups = bench_rollup(cfg, cols)?;
        let rollup_table = format!("\"{schema}\".\"page_views_bench_hourly\"");
        wh.load("page_views", cols, &refs[..1], source, &rollups)
            .await?;
        let mut rollup_t = Vec::new();
        for i in 0..6 {
            client
                .batch_execute(&format!(
                    "TRUNCATE {load_table}; TRUNCATE {rollup_table}; CHECKPOINT"
                ))
                .await?;
            let t = Instant::now();
            wh.load("page_views", cols, &refs, source, &rollups).await?;
            if i > 0 {
                rollup_t.push(t.elapsed().as_secs_f64());
            }
        }
        Ok(PgFigures {
            rows: rows.len(),
            copy_secs: median(copy_t),
            load_secs: median(load_t),
            replay_secs: median(replay_t),
            rollup_secs: median(rollup_t),
        })
    })
}

/// The PostgreSQL rows of the table (or one "not measured" row).
pub fn rows(lines: &mut Vec<Line>, pg: Result<PgFigures>) {
    match pg {
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
            let with_rollup = pg.rows as f64 / pg.rollup_secs;
            lines.push(line(
                "PostgreSQL: the same load with a rollup (hour × url; count, count_distinct, max), rows/s",
                format!(
                    "{} ({:+.2} µs per row for the rollup)",
                    fmt_int(with_rollup),
                    (pg.rollup_secs - pg.load_secs) / pg.rows as f64 * 1e6
                ),
                "",
                None,
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
}
