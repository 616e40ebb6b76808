//! The Lambda handler: S3 ObjectCreated under `raw/` → curated Parquet, quarantined records,
//! and an idempotent PostgreSQL load.
//!
//! Data problems (corrupt gzip, a gzip bomb, unsupported files, records that fail coercion)
//! never fail the invocation: objects are copied to the quarantine with their reason, records
//! are written there line by line. Only retryable infrastructure errors (S3, PostgreSQL) fail
//! it, so Lambda's async retries and the on-failure destination take over.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{
    curated_key, object_copy_key, output_stem, reason_key, transform_quarantine_key, Partition,
    SourceKey,
};
use sluice_core::lake::quarantine::{ObjectReason, Origin, QuarantineLine, RejectKind};
use sluice_core::ndjson::{gzip, push_json_line};
use sluice_core::notify::decide;

use crate::event::S3Input;
use sluice_core::store::{ObjectStore, CONTENT_TYPE_NDJSON_GZ, CONTENT_TYPE_PARQUET};
use sluice_core::telemetry::{freshness_ms, now_micros, Metrics, Unit};

use crate::error::TransformError;
use crate::input::{format_of, read_object, Limits, ObjectError};
use crate::parquet_out;
use crate::pii::HashKey;
use crate::rollup::rollups_of;
use crate::transform::{columns, transform, Row};
use crate::warehouse::Warehouse;

/// Name used in metrics and logs.
pub const FUNCTION: &str = "s3-transform";

/// Everything the handler needs, built once at cold start.
pub struct Handler<'a> {
    pub cfg: &'a PipelineConfig,
    pub zones: &'a Zones,
    pub store: &'a dyn ObjectStore,
    pub warehouse: &'a dyn Warehouse,
    pub limits: Limits,
    pub hash_key: Option<&'a HashKey>,
}

/// What happened to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectOutcome {
    pub key: String,
    pub rows: usize,
    pub rejected: usize,
    pub duplicates: usize,
    /// Records left out by each of the dataset's filters, by `<dataset>.<filter>` (raw keeps
    /// them).
    pub filtered: BTreeMap<String, usize>,
    pub inserted: u64,
    pub updated: u64,
    pub curated_keys: Vec<String>,
    /// Set when the whole object was quarantined, with the reason.
    pub quarantined: Option<String>,
    /// The newest event time among the rows written, in µs.
    pub newest_event_micros: Option<i64>,
    /// When the last curated object was written (wall clock, µs).
    pub curated_at_micros: Option<i64>,
    /// When the PostgreSQL load committed (wall clock, µs).
    pub loaded_at_micros: Option<i64>,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub objects: Vec<ObjectOutcome>,
    pub skipped: BTreeMap<String, usize>,
}

/// Handles one S3 notification.
pub async fn handle(ctx: &Handler<'_>, input: S3Input) -> Result<Outcome, TransformError> {
    let mut metrics = Metrics::new(FUNCTION);
    let mut outcome = Outcome::default();
    let notices = match input.notices() {
        Ok(n) => n,
        Err(reason) => {
            tracing::info!(reason = %reason, "notification skipped");
            metrics.count(&format!("Skipped_{reason}"), 1);
            metrics.emit();
            *outcome.skipped.entry(reason.to_string()).or_default() += 1;
            return Ok(outcome);
        }
    };
    let mut first_error = None;
    for n in notices {
        let accepted = match decide(&n, ctx.store.bucket(), &[&ctx.zones.raw]) {
            Ok(a) => a,
            Err(reason) => {
                tracing::info!(reason = %reason, key = %n.raw_key, "object skipped");
                metrics.count(&format!("Skipped_{reason}"), 1);
                *outcome.skipped.entry(reason.to_string()).or_default() += 1;
                continue;
            }
        };
        // Per-dataset metrics only for configured datasets: each name is a metric series.
        let dataset = SourceKey::parse(&ctx.zones.raw, &accepted.key)
            .first
            .and_then(|d| ctx.cfg.dataset(d))
            .map(|d| d.name.as_str());
        let set = match dataset {
            Some(d) => metrics.dataset(d),
            None => metrics.function(),
        };
        match process_object(ctx, &accepted.key).await {
            Ok(o) => {
                set.count("ObjectsProcessed", 1);
                set.count("RowsCurated", o.rows);
                set.count("RowsRejected", o.rejected);
                set.count("RowsDuplicate", o.duplicates);
                for (name, n) in &o.filtered {
                    set.count(&format!("Filtered_{name}"), *n);
                }
                set.count("RowsInserted", o.inserted as usize);
                set.count("RowsUpdated", o.updated as usize);
                if o.quarantined.is_some() {
                    set.count("ObjectsQuarantined", 1);
                }
                if let Some(newest) = o.newest_event_micros {
                    if let Some(at) = o.curated_at_micros {
                        let ms = freshness_ms(at, newest);
                        set.least("FreshnessCurated", ms, Unit::Milliseconds);
                    }
                    if let Some(at) = o.loaded_at_micros {
                        let ms = freshness_ms(at, newest);
                        set.least("FreshnessWarehouse", ms, Unit::Milliseconds);
                    }
                }
                tracing::info!(key = %o.key, rows = o.rows, rejected = o.rejected, duplicates = o.duplicates, filtered = o.filtered.values().sum::<usize>(), inserted = o.inserted, updated = o.updated, quarantined = o.quarantined.is_some(), "object transformed");
                outcome.objects.push(o);
            }
            Err(TransformError::Core(sluice_core::Error::NotFound { key, .. })) => {
                tracing::warn!(key = %key, "object no longer exists; skipped");
                metrics.count("Skipped_not_found", 1);
                *outcome.skipped.entry("not_found".into()).or_default() += 1;
            }
            Err(e) => {
                tracing::error!(key = %accepted.key, error = %e, retryable = e.is_retryable(), "object failed");
                set.count("ObjectsFailed", 1);
                if e.is_connection() {
                    metrics.count("DatabaseConnectionErrors", 1);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    metrics.emit();
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

async fn process_object(ctx: &Handler<'_>, key: &str) -> Result<ObjectOutcome, TransformError> {
    let mut out = ObjectOutcome {
        key: key.to_string(),
        ..ObjectOutcome::default()
    };
    let source = SourceKey::parse(&ctx.zones.raw, key);
    let dataset = source.first.and_then(|d| ctx.cfg.dataset(d));
    let key_partition = source.partition.clone();
    let file = source.file;
    // Outputs are named after the whole key below the dataset directory (the whole key below
    // raw/ when no dataset matches), so distinct sources never share an output key.
    let rel_to_dataset = source.rel_for(dataset.is_some());
    let stem = output_stem(rel_to_dataset, key_partition.as_ref());
    let quarantine_dir =
        source.quarantine_dir(&ctx.zones.quarantine, dataset.map(|d| d.name.as_str()));

    let Some(ds) = dataset else {
        let reason = "the key names no configured dataset (expected raw/<dataset>/...)";
        quarantine_object(
            ctx,
            key,
            &quarantine_dir,
            &stem,
            RejectKind::UnknownDataset,
            reason,
        )
        .await?;
        out.quarantined = Some(reason.into());
        return Ok(out);
    };
    let Some((format, gz)) = format_of(file) else {
        let reason = ObjectError::Unsupported.to_string();
        quarantine_object(
            ctx,
            key,
            &quarantine_dir,
            &stem,
            RejectKind::Unsupported,
            &reason,
        )
        .await?;
        out.quarantined = Some(reason);
        return Ok(out);
    };
    let body = ctx.store.get(key).await?;
    let mut items = Vec::new();
    if let Err(e) = read_object(&body, format, gz, ctx.limits, &mut |i| items.push(i)) {
        let kind = match e {
            ObjectError::TooLarge(_) => RejectKind::TooLarge,
            ObjectError::Corrupt(_) => RejectKind::Corrupt,
            ObjectError::BadHeader(_) => RejectKind::BadHeader,
            ObjectError::Unsupported => RejectKind::Unsupported,
        };
        let reason = e.to_string();
        quarantine_object(ctx, key, &quarantine_dir, &stem, kind, &reason).await?;
        out.quarantined = Some(reason);
        return Ok(out);
    }
    drop(body);

    let cols = columns(ds);
    let fallback = key_partition
        .clone()
        .unwrap_or_else(|| Partition::of_micros(0));
    let t = transform(ds, &cols, items, key, &fallback, ctx.hash_key);
    out.rows = t.row_count();
    out.rejected = t.rejected.len();
    out.duplicates = t.duplicates;
    out.filtered = ds
        .filters
        .iter()
        .zip(&t.filtered)
        .map(|(f, n)| (format!("{}.{}", ds.name, f.name), *n))
        .collect();

    for (partition, rows) in &t.rows {
        let curated = curated_key(
            &ctx.zones.curated,
            &ds.name,
            partition,
            &output_stem(rel_to_dataset, Some(partition)),
        );
        let bytes =
            parquet_out::encode(&cols, rows, key).map_err(|message| TransformError::Parquet {
                key: curated.clone(),
                message,
            })?;
        ctx.store.put(&curated, bytes, CONTENT_TYPE_PARQUET).await?;
        out.curated_keys.push(curated);
        out.curated_at_micros = Some(now_micros());
    }
    if !t.rejected.is_empty() {
        let mut lines = Vec::new();
        for r in &t.rejected {
            push_json_line(
                &mut lines,
                &QuarantineLine::new(
                    r.kind,
                    &r.reason,
                    Origin::Object {
                        source: Cow::Borrowed(key),
                        line: r.line,
                    },
                    &r.payload,
                ),
            )?;
        }
        let qkey = transform_quarantine_key(&quarantine_dir, &stem);
        ctx.store
            .put(
                &qkey,
                gzip(&lines, ctx.cfg.gzip_level)?,
                CONTENT_TYPE_NDJSON_GZ,
            )
            .await?;
    }
    let rows: Vec<&Row> = t.rows.values().flatten().collect();
    out.newest_event_micros = rows.iter().map(|r| r.event_micros).max();
    if !rows.is_empty() {
        let rollups = rollups_of(ds, &cols);
        let stats = ctx
            .warehouse
            .load(&ds.name, &cols, &rows, key, &rollups)
            .await?;
        out.inserted = stats.inserted;
        out.updated = stats.updated;
        out.loaded_at_micros = Some(now_micros());
    }
    Ok(out)
}

/// Copies an unreadable object to `<dir>objects/<stem>` with a `.reason.json` beside it.
async fn quarantine_object(
    ctx: &Handler<'_>,
    key: &str,
    dir: &str,
    stem: &str,
    kind: RejectKind,
    reason: &str,
) -> Result<(), TransformError> {
    let body = match ctx.store.get(key).await {
        Ok(b) => b,
        Err(sluice_core::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let file = key.rsplit('/').next().unwrap_or(stem);
    let copy = object_copy_key(dir, file, stem);
    ctx.store
        .put(&copy, body, "application/octet-stream")
        .await?;
    let mut note = Vec::new();
    push_json_line(
        &mut note,
        &ObjectReason {
            error_kind: kind,
            reason: Cow::Borrowed(reason),
            source: Cow::Borrowed(key),
        },
    )?;
    ctx.store
        .put(&reason_key(&copy), note, "application/json")
        .await?;
    tracing::warn!(key = %key, kind = kind.as_str(), "object quarantined");
    Ok(())
}
