//! `sluice status`: per dataset, how fresh each zone is and what went wrong lately, read from
//! the lake itself (S3 listings, Parquet footers, PostgreSQL), not from a store of its own.
//!
//! - **raw** and **curated**: the newest `dt=/hr=` partition (event time), the last write, and
//!   the objects and bytes written in the last hour, over the two newest days of partitions
//!   (a late object written into an older day is not counted). For curated, the newest event
//!   time exactly, from the statistics in the footers of the newest partition's most recent
//!   objects.
//! - **PostgreSQL** (with `--postgres`): the newest event time in the dataset's table.
//! - **quarantine**: records set aside in the last 24 hours, by kind (as `sluice quarantine list`),
//!   per dataset and for the records that matched none (`_unrouted`).
//! - **dead letters**: archives in the dead-letter zone that `sluice replay` has not sent.

use std::collections::BTreeMap;

use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::statistics::Statistics;
use serde::Serialize;
use sluice_core::aws::{Listed, S3Store};
use sluice_core::config::{Dataset, PipelineConfig};
use sluice_core::env::Zones;
use sluice_core::lake::dead_letter::{is_archive, REPLAYED_SUFFIX};
use sluice_core::lake::keys::{dataset_prefix, is_day_folder, parse_zone_key, Partition, UNROUTED};
use sluice_core::schema::format_micros;
use sluice_core::store::ObjectStore;

use crate::error::{Error, Result};
use crate::quarantine::{scan, Selection};
use crate::table::table;
use crate::when::Span;

const HOUR: i64 = 3_600_000_000;
/// Curated objects of the newest partition whose footers are read for the newest event time.
const FOOTERS: usize = 8;
/// Dead letters named in the report.
const NAMED: usize = 5;

/// One zone of one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneStatus {
    /// The newest event-time partition, `YYYY-MM-DDTHH`.
    pub newest_partition: Option<String>,
    /// The newest event time, when it can be read exactly (curated, PostgreSQL).
    pub newest_event: Option<String>,
    /// Seconds from the newest event time (or the end of the newest partition's hour) to now.
    pub lag_secs: Option<i64>,
    /// The most recent write.
    pub last_write: Option<String>,
    pub objects_last_hour: usize,
    pub bytes_last_hour: u64,
}

/// The dataset's PostgreSQL table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub exists: bool,
    pub newest_event: Option<String>,
    pub lag_secs: Option<i64>,
}

/// One dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatasetStatus {
    pub dataset: String,
    /// The event-time column, when the dataset declares one.
    pub event_time: Option<String>,
    pub raw: ZoneStatus,
    pub curated: ZoneStatus,
    pub postgres: Option<TableStatus>,
    /// Records quarantined in the last 24 hours, by kind.
    pub quarantined_24h: BTreeMap<String, usize>,
    /// Whole objects s3-transform set aside in the last 24 hours.
    pub whole_objects_24h: usize,
}

/// The dead-letter zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterStatus {
    /// Archives `sluice replay` has not sent.
    pub not_replayed: usize,
    pub replayed: usize,
    /// The newest archives not replayed, `s3://` URIs, newest first.
    pub newest: Vec<String>,
}

/// The outcome of `sluice status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub bucket: String,
    pub at: String,
    pub datasets: Vec<DatasetStatus>,
    /// Records that matched no dataset, quarantined in the last 24 hours, by kind (only
    /// without `--dataset`).
    pub unrouted_24h: BTreeMap<String, usize>,
    pub dead_letters: DeadLetterStatus,
}

/// What `sluice status` reads.
pub struct Sources<'a> {
    pub store: &'a S3Store,
    pub zones: &'a Zones,
    pub postgres: Option<(&'a tokio_postgres::Client, &'a str)>,
    pub now: i64,
}

/// Builds the report for `datasets` of `cfg` (all when empty).
pub async fn status(
    src: &Sources<'_>,
    cfg: &PipelineConfig,
    only: Option<&str>,
) -> Result<StatusReport> {
    if let Some(d) = only {
        if cfg.dataset(d).is_none() {
            return Err(Error::Usage(format!(
                "--dataset {d}: the config declares no such dataset (it declares {})",
                cfg.datasets
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut report = StatusReport {
        bucket: src.store.bucket().to_string(),
        at: format_micros(src.now),
        ..StatusReport::default()
    };
    for ds in cfg
        .datasets
        .iter()
        .filter(|d| only.is_none_or(|o| o == d.name))
    {
        report.datasets.push(dataset_status(src, ds).await?);
    }
    if only.is_none() {
        report.unrouted_24h = quarantined_24h(src, UNROUTED).await?.0;
    }
    report.dead_letters = dead_letters(src).await?;
    Ok(report)
}

async fn dataset_status(src: &Sources<'_>, ds: &Dataset) -> Result<DatasetStatus> {
    let event_col = ds.event_time_field().map(|f| f.column.clone());
    let raw_objects = recent(src.store, &src.zones.raw, &ds.name).await?;
    let curated_objects = recent(src.store, &src.zones.curated, &ds.name).await?;
    let raw = zone(&src.zones.raw, &raw_objects, src.now);
    let mut curated = zone(&src.zones.curated, &curated_objects, src.now);
    if let Some(col) = &event_col {
        if let Some(t) =
            newest_curated_event(src.store, &src.zones.curated, &curated_objects, col).await?
        {
            curated.newest_event = Some(format_micros(t));
            curated.lag_secs = Some((src.now - t).div_euclid(1_000_000));
        }
    }
    let postgres = match (src.postgres, &event_col) {
        (Some((pg, schema)), col) => {
            Some(table_status(pg, schema, &ds.name, col.as_deref(), src.now).await?)
        }
        (None, _) => None,
    };
    let (quarantined_24h, whole_objects_24h) = quarantined_24h(src, &ds.name).await?;
    Ok(DatasetStatus {
        dataset: ds.name.clone(),
        event_time: event_col,
        raw,
        curated,
        postgres,
        quarantined_24h,
        whole_objects_24h,
    })
}

/// Records quarantined under `dataset` in the last 24 hours by kind, and whole objects.
async fn quarantined_24h(
    src: &Sources<'_>,
    dataset: &str,
) -> Result<(BTreeMap<String, usize>, usize)> {
    let q = scan(
        src.store,
        &src.zones.quarantine,
        &Selection {
            dataset: Some(dataset.to_string()),
            kinds: Vec::new(),
            span: Span {
                from: src.now - 24 * HOUR,
                to: src.now,
            },
        },
    )
    .await?;
    let mut by_kind = BTreeMap::new();
    for r in &q.records {
        *by_kind.entry(r.kind.to_string()).or_default() += 1;
    }
    Ok((by_kind, q.copies.len()))
}

fn kinds(by_kind: &BTreeMap<String, usize>) -> String {
    let n: usize = by_kind.values().sum();
    match n {
        0 => "none in 24 h".into(),
        _ => format!(
            "{n} in 24 h: {}",
            by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The objects of the two newest days of a dataset in a zone.
async fn recent(store: &S3Store, prefix: &str, dataset: &str) -> Result<Vec<Listed>> {
    let days = store
        .list_level(&dataset_prefix(prefix, dataset))
        .await?
        .folders;
    let mut out = Vec::new();
    for day in days.iter().filter(|f| is_day_folder(f)).rev().take(2) {
        out.extend(store.list_detailed(day).await?);
    }
    Ok(out)
}

fn partition_of(prefix: &str, key: &str) -> Option<Partition> {
    parse_zone_key(prefix, key)?.partition
}

fn zone(prefix: &str, objects: &[Listed], now: i64) -> ZoneStatus {
    let newest = objects
        .iter()
        .filter_map(|o| partition_of(prefix, &o.key))
        .max();
    let recent: Vec<&Listed> = objects
        .iter()
        .filter(|o| o.modified_micros >= now - HOUR)
        .collect();
    let end_of_hour = newest
        .as_ref()
        .map(|p| crate::quarantine::hour_start(p) + HOUR);
    ZoneStatus {
        newest_partition: newest.map(|p| format!("{}T{}", p.dt, p.hr)),
        newest_event: None,
        lag_secs: end_of_hour.map(|t| (now - t).max(0).div_euclid(1_000_000)),
        last_write: objects
            .iter()
            .map(|o| o.modified_micros)
            .max()
            .map(format_micros),
        objects_last_hour: recent.len(),
        bytes_last_hour: recent.iter().map(|o| o.size).sum(),
    }
}

/// The newest value of the event-time column in the footers of the newest partition's most
/// recently written objects.
async fn newest_curated_event(
    store: &S3Store,
    prefix: &str,
    objects: &[Listed],
    column: &str,
) -> Result<Option<i64>> {
    let Some(newest) = objects
        .iter()
        .filter_map(|o| partition_of(prefix, &o.key))
        .max()
    else {
        return Ok(None);
    };
    let mut candidates: Vec<&Listed> = objects
        .iter()
        .filter(|o| partition_of(prefix, &o.key).as_ref() == Some(&newest))
        .collect();
    candidates.sort_by_key(|o| std::cmp::Reverse(o.modified_micros));
    let mut best: Option<i64> = None;
    for o in candidates.into_iter().take(FOOTERS) {
        if let Some(t) = footer_max(store, o, column).await? {
            best = best.max(Some(t));
        }
    }
    Ok(best)
}

async fn footer_max(store: &S3Store, o: &Listed, column: &str) -> Result<Option<i64>> {
    if o.size < 12 {
        return Ok(None);
    }
    let tail = store.get_range(&o.key, o.size - 8, o.size).await?;
    let Some((len, magic)) = tail.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u64::from(u32::from_le_bytes(*len));
    if magic != b"PAR1" || len + 8 > o.size {
        return Ok(None);
    }
    let footer = store
        .get_range(&o.key, o.size - 8 - len, o.size - 8)
        .await?;
    let Ok(meta) = ParquetMetaDataReader::decode_metadata(&footer) else {
        return Ok(None);
    };
    let schema = meta.file_metadata().schema_descr();
    let Some(idx) = (0..schema.num_columns()).find(|&i| schema.column(i).name() == column) else {
        return Ok(None);
    };
    Ok(meta
        .row_groups()
        .iter()
        .filter_map(|rg| match rg.column(idx).statistics() {
            Some(Statistics::Int64(s)) => s.max_opt().copied(),
            _ => None,
        })
        .max())
}

/// A PostgreSQL error with the server's code and message when it sent one.
fn pg_error(e: tokio_postgres::Error) -> Error {
    Error::Postgres(match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    })
}

async fn table_status(
    pg: &tokio_postgres::Client,
    schema: &str,
    dataset: &str,
    event_col: Option<&str>,
    now: i64,
) -> Result<TableStatus> {
    use s3_transform::sql::ident;
    let table = format!("{schema}.{dataset}");
    let exists: bool = pg
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.{}", ident(schema), ident(dataset))],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let mut out = TableStatus {
        table,
        exists,
        ..TableStatus::default()
    };
    if let (true, Some(col)) = (exists, event_col) {
        let sql = format!(
            "SELECT (extract(epoch FROM max({c})) * 1000000)::bigint FROM {}.{}",
            ident(schema),
            ident(dataset),
            c = ident(col)
        );
        let newest: Option<i64> = pg.query_one(&sql, &[]).await.map_err(pg_error)?.get(0);
        out.newest_event = newest.map(format_micros);
        out.lag_secs = newest.map(|t| (now - t).div_euclid(1_000_000));
    }
    Ok(out)
}

async fn dead_letters(src: &Sources<'_>) -> Result<DeadLetterStatus> {
    let all = src.store.list_detailed(&src.zones.dead_letter).await?;
    let notes: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|o| o.key.strip_suffix(REPLAYED_SUFFIX))
        .collect();
    let mut waiting: Vec<&Listed> = all
        .iter()
        .filter(|o| is_archive(&o.key) && !notes.contains(o.key.as_str()))
        .collect();
    waiting.sort_by_key(|o| std::cmp::Reverse(o.modified_micros));
    Ok(DeadLetterStatus {
        not_replayed: waiting.len(),
        replayed: notes.len(),
        newest: waiting
            .iter()
            .take(NAMED)
            .map(|o| format!("s3://{}/{}", src.store.bucket(), o.key))
            .collect(),
    })
}

fn lag(secs: Option<i64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s} s"),
        Some(s) if s < 7200 => format!("{} min", s / 60),
        Some(s) if s < 172_800 => format!("{} h", s / 3600),
        Some(s) => format!("{} d", s / 86_400),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n < 10_000 => format!("{n} B"),
        n if n < 10_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{:.1} MB", n as f64 / 1e6),
    }
}

impl StatusReport {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = format!("sluice status of s3://{} at {}\n", self.bucket, self.at);
        let mut rows = vec![vec![
            "DATASET".to_string(),
            "ZONE".into(),
            "NEWEST EVENT (UTC)".into(),
            "LAG".into(),
            "LAST WRITE (UTC)".into(),
            "OBJECTS/1H".into(),
            "BYTES/1H".into(),
        ]];
        for d in &self.datasets {
            for (name, z) in [("raw", &d.raw), ("curated", &d.curated)] {
                let (newest, lag) = match (&z.newest_event, &z.newest_partition) {
                    (Some(t), _) => (t.clone(), lag(z.lag_secs)),
                    (None, Some(p)) if z.lag_secs == Some(0) => {
                        (format!("{p} (hour)"), "this hour".into())
                    }
                    (None, Some(p)) => (format!("{p} (hour)"), lag(z.lag_secs)),
                    (None, None) => ("nothing yet".into(), lag(None)),
                };
                rows.push(vec![
                    d.dataset.clone(),
                    name.into(),
                    newest,
                    lag,
                    z.last_write.clone().unwrap_or_else(|| "-".into()),
                    z.objects_last_hour.to_string(),
                    bytes(z.bytes_last_hour),
                ]);
            }
            if let Some(t) = &d.postgres {
                let newest = match (t.exists, &t.newest_event) {
                    (false, _) => format!("no table {} yet", t.table),
                    (true, Some(e)) => e.clone(),
                    (true, None) if d.event_time.is_none() => "no event time declared".into(),
                    (true, None) => "no rows".into(),
                };
                rows.push(vec![
                    d.dataset.clone(),
                    "postgres".into(),
                    newest,
                    lag(t.lag_secs),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
            }
        }
        out.push_str(&table(&rows, &[5, 6]));
        out.push_str("quarantined in the last 24 h (sluice quarantine list)\n");
        let mut q: Vec<Vec<String>> = self
            .datasets
            .iter()
            .map(|d| {
                let mut k = kinds(&d.quarantined_24h);
                if d.whole_objects_24h > 0 {
                    k.push_str(&format!("; {} whole object(s)", d.whole_objects_24h));
                }
                vec![d.dataset.clone(), k]
            })
            .collect();
        if !self.unrouted_24h.is_empty() {
            q.push(vec![UNROUTED.into(), kinds(&self.unrouted_24h)]);
        }
        out.push_str(&table(&q, &[]));

        let dl = &self.dead_letters;
        out.push_str(&format!(
            "dead letters not replayed: {} ({} replayed)\n",
            dl.not_replayed, dl.replayed
        ));
        for u in &dl.newest {
            out.push_str(&format!("  {u}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, size: u64, modified: i64) -> Listed {
        Listed {
            key: key.into(),
            size,
            modified_micros: modified,
        }
    }

    #[test]
    fn a_zone_reports_its_newest_partition_last_write_and_last_hour() {
        let now = crate::quarantine::hour_start(&Partition::parse("2026-12-04", "10").expect("p"))
            + 30 * 60 * 1_000_000;
        let objects = vec![
            obj("raw/p/dt=2026-12-04/hr=09/a.json.gz", 100, now - 2 * HOUR),
            obj("raw/p/dt=2026-12-04/hr=10/b.json.gz", 50, now - 60_000_000),
            obj("raw/p/dt=2026-12-03/hr=23/c.json.gz", 7, now - 10_000_000),
        ];
        let z = zone("raw/", &objects, now);
        assert_eq!(z.newest_partition.as_deref(), Some("2026-12-04T10"));
        assert_eq!(z.lag_secs, Some(0), "the hour is not over yet");
        assert_eq!(z.objects_last_hour, 2);
        assert_eq!(z.bytes_last_hour, 57);
        assert_eq!(z.last_write, Some(format_micros(now - 10_000_000)));
        assert_eq!(zone("raw/", &[], now), ZoneStatus::default());
        assert_eq!(lag(Some(30)), "30 s");
        assert_eq!(lag(Some(600)), "10 min");
        assert_eq!(lag(Some(200_000)), "2 d");
    }
}
