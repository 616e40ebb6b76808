//! What a run of the local pipeline did, and whether it reconciles: per-zone counts read back
//! from the bucket, the Glue tables, PostgreSQL row counts and the value check
//! ([`crate::values`]); [`Summary::reconcile`] names every check that fails.

use sluice_core::lake::keys::{is_transform_quarantine, RAW_EXTENSION};
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::{gunzip, Aws};

/// Counts of one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneSummary {
    pub objects: usize,
    pub records: usize,
    pub json_bytes: usize,
    pub stored_bytes: usize,
}

/// One Glue table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub name: String,
    pub columns: Vec<String>,
    pub partitions: usize,
}

/// What the run did; [`Summary::reconcile`] says whether every record is accounted for.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub produced: usize,
    pub produced_valid: usize,
    /// Well-formed events sent through http-collector over HTTP (the rest with PutRecords).
    pub via_http: usize,
    pub ingest_batches: usize,
    pub ingest_retries: usize,
    pub raw: ZoneSummary,
    pub quarantine: ZoneSummary,
    pub quarantine_ingest: usize,
    pub curated_rows: usize,
    pub curated: ZoneSummary,
    pub transform_rejected: usize,
    pub transform_duplicates: usize,
    /// Records each filter left out of curated and PostgreSQL, by `<dataset>.<filter>`.
    pub transform_filtered: BTreeMap<String, usize>,
    pub pg_rows: BTreeMap<String, i64>,
    pub tables: Vec<TableSummary>,
    pub notifications_skipped: BTreeMap<String, usize>,
    pub failures_archived: usize,
    pub dead_letters: Vec<String>,
    pub alerts_received: usize,
    pub purchases_per_hour: Vec<(String, i64, f64)>,
    /// Where the `purchases_per_hour` rollup differs from a `GROUP BY` over `purchases`.
    pub rollup_mismatches: Vec<String>,
    /// Sent purchases compared by value with curated Parquet (DuckDB) and PostgreSQL.
    pub values: crate::values::ValueCheck,
    pub ingest_secs: f64,
    pub total_secs: f64,
}

impl Summary {
    /// Every record accounted for: produced = raw + quarantined; raw = curated + rejected +
    /// duplicates + filtered; PostgreSQL rows = curated rows; the drill's failure archived and alerted.
    pub fn reconcile(&self) -> Result<()> {
        let pg: i64 = self.pg_rows.values().sum();
        let checks = [
            (
                self.produced == self.raw.records + self.quarantine_ingest,
                "produced = raw + quarantined",
            ),
            (
                self.raw.records == self.produced_valid,
                "raw = valid records produced",
            ),
            (
                self.raw.records
                    == self.curated_rows
                        + self.transform_rejected
                        + self.transform_duplicates
                        + self.transform_filtered.values().sum::<usize>(),
                "raw = curated + rejected by transform + duplicates + filtered",
            ),
            (
                pg == self.curated_rows as i64,
                "PostgreSQL rows = curated rows",
            ),
            (
                self.failures_archived >= 1 && self.alerts_received >= 1,
                "the drill's failure was archived and alerted",
            ),
            (
                !self.purchases_per_hour.is_empty() && self.rollup_mismatches.is_empty(),
                "the purchases_per_hour rollup equals a GROUP BY over purchases",
            ),
            (
                self.values.sampled > 0 && self.values.mismatches.is_empty(),
                "sampled purchases equal what was sent, in Parquet (DuckDB) and PostgreSQL",
            ),
        ];
        let failed: Vec<&str> = checks
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| *what)
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("counts do not reconcile: {}", failed.join("; "))
        }
    }
}

pub(crate) async fn zone(aws: &Aws, bucket: &str, prefix: &str, gz: bool) -> ZoneSummary {
    let mut z = ZoneSummary::default();
    for key in aws.keys(bucket, prefix).await {
        let body = aws.get(bucket, &key).await;
        z.objects += 1;
        z.stored_bytes += body.len();
        if gz && key.ends_with(RAW_EXTENSION) {
            let text = gunzip(&body);
            z.records += text.lines().count();
            z.json_bytes += text.len();
        }
    }
    z
}

pub(crate) async fn count_ingest_quarantine(aws: &Aws, bucket: &str, prefix: &str) -> usize {
    let mut n = 0;
    for key in aws.keys(bucket, prefix).await {
        if key.ends_with(RAW_EXTENSION) && !is_transform_quarantine(&key) {
            n += gunzip(&aws.get(bucket, &key).await).lines().count();
        }
    }
    n
}

pub(crate) async fn glue_tables(aws: &Aws, database: &str) -> Result<Vec<TableSummary>> {
    let mut out = Vec::new();
    let tables = aws
        .glue
        .get_tables()
        .database_name(database)
        .send()
        .await
        .context("get tables")?;
    for t in tables.table_list() {
        let columns = t
            .storage_descriptor()
            .map(|sd| {
                sd.columns()
                    .iter()
                    .map(|c| format!("{} {}", c.name(), c.r#type().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let mut partitions = 0;
        let mut token = None;
        loop {
            let p = aws
                .glue
                .get_partitions()
                .database_name(database)
                .table_name(t.name())
                .set_next_token(token)
                .send()
                .await
                .context("get partitions")?;
            partitions += p.partitions().len();
            token = p.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.push(TableSummary {
            name: t.name().to_string(),
            columns,
            partitions,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
