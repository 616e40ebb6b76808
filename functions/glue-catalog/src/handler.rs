//! The Lambda handler: S3 `ObjectCreated` under the curated (or raw) zone → Glue tables and
//! partitions.
//!
//! Each accepted object is mapped to its table (`<dataset>` for `curated/…/*.parquet`,
//! `<dataset>_raw` for `raw/…/*.json.gz`), the table is created or evolved, and its partition
//! is registered (or, with partition projection, left to Athena). Notifications that are not
//! for this function (test events, deletes, other buckets, keys outside the zones, files of
//! another format or outside the `dt=/hr=` layout) are skipped, logged without payloads and
//! counted as `Skipped_<reason>`. Every error fails the invocation (see [`crate::error`]).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{parse_zone_key, Partition};
use sluice_core::notify::{decide, Accepted};

use crate::event::S3Input;
use sluice_core::store::ObjectStore;
use sluice_core::telemetry::{Metrics, Unit};

use crate::catalog::{Catalog, StorageSpec, TableSpec};
use crate::error::CatalogError;
use crate::footer::read_schema;
use crate::hive::columns_of;
use crate::register::{CatalogCache, PartitionCounts, Registrar, RetryPolicy, Source};
use crate::tables::{
    curated_table, projection_parameters, raw_table, table_location, without_partition_keys, Zone,
};

/// Name used in metrics and logs.
pub const FUNCTION: &str = "glue-catalog";

/// Everything the handler needs, built once at cold start.
pub struct Handler<'a> {
    pub cfg: &'a PipelineConfig,
    pub zones: &'a Zones,
    pub store: &'a dyn ObjectStore,
    pub catalog: &'a dyn Catalog,
    /// Lives as long as the container.
    pub cache: &'a CatalogCache,
    pub retry: RetryPolicy,
}

/// What happened to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectOutcome {
    pub key: String,
    pub table: String,
    /// `dt=YYYY-MM-DD/hr=HH`.
    pub partition: String,
    pub table_created: bool,
    pub columns_added: Vec<String>,
    /// `name:old->new`.
    pub columns_widened: Vec<String>,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub objects: Vec<ObjectOutcome>,
    pub skipped: BTreeMap<String, usize>,
    pub partitions_created: usize,
    pub partitions_existing: usize,
    pub partitions_cached: usize,
    /// Partitions left to partition projection (not registered).
    pub partitions_projected: usize,
}

/// Why an accepted notification is still not catalogued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayoutSkip {
    /// Not `<zone><dataset>/dt=../hr=../<file>`.
    NotInLayout,
    /// Not the zone's data format (`.parquet` / `.json.gz`).
    OtherFormat,
}

impl LayoutSkip {
    fn as_str(self) -> &'static str {
        match self {
            LayoutSkip::NotInLayout => "not_in_layout",
            LayoutSkip::OtherFormat => "other_format",
        }
    }
}

/// An object to catalogue.
struct Target {
    zone: Zone,
    dataset: String,
    partition: Partition,
}

fn target(zones: &Zones, a: &Accepted) -> Result<Target, LayoutSkip> {
    let zone = if a.prefix == zones.curated {
        Zone::Curated
    } else {
        Zone::Raw
    };
    let zk = parse_zone_key(&a.prefix, &a.key).ok_or(LayoutSkip::NotInLayout)?;
    if !zk.file.to_ascii_lowercase().ends_with(zone.extension()) || zk.file.starts_with('.') {
        return Err(LayoutSkip::OtherFormat);
    }
    let partition = zk.partition.ok_or(LayoutSkip::NotInLayout)?;
    Ok(Target {
        zone,
        dataset: zk.dataset,
        partition,
    })
}

fn skip(metrics: &mut Metrics, outcome: &mut Outcome, reason: &str, key: Option<&str>) {
    match key {
        Some(k) => tracing::info!(reason, key = %k, "object skipped"),
        None => tracing::info!(reason, "notification skipped"),
    }
    metrics.count(&format!("Skipped_{reason}"), 1);
    *outcome.skipped.entry(reason.to_string()).or_default() += 1;
}

/// Handles one S3 notification.
pub async fn handle(ctx: &Handler<'_>, input: S3Input) -> Result<Outcome, CatalogError> {
    let started = Instant::now();
    let mut metrics = Metrics::new(FUNCTION);
    let mut outcome = Outcome::default();
    let notices = match input.notices() {
        Ok(n) => n,
        Err(reason) => {
            skip(&mut metrics, &mut outcome, reason.as_str(), None);
            metrics.emit();
            return Ok(outcome);
        }
    };
    let registrar = Registrar {
        catalog: ctx.catalog,
        cache: ctx.cache,
        database: &ctx.cfg.catalog.database,
        retry: ctx.retry,
    };
    let prefixes = [ctx.zones.curated.as_str(), ctx.zones.raw.as_str()];
    let mut first_error = None;
    // Table name → (its configured dataset, latest storage, partitions seen in this invocation).
    let mut partitions: BTreeMap<String, (String, StorageSpec, Vec<Partition>)> = BTreeMap::new();
    for n in notices {
        let accepted = match decide(&n, ctx.store.bucket(), &prefixes) {
            Ok(a) => a,
            Err(reason) => {
                skip(
                    &mut metrics,
                    &mut outcome,
                    reason.as_str(),
                    Some(&n.raw_key),
                );
                continue;
            }
        };
        let t = match target(ctx.zones, &accepted) {
            Ok(t) => t,
            Err(reason) => {
                skip(
                    &mut metrics,
                    &mut outcome,
                    reason.as_str(),
                    Some(&accepted.key),
                );
                continue;
            }
        };
        // Per-dataset metrics only for configured datasets: each name is a metric series.
        let configured = ctx.cfg.dataset(&t.dataset).is_some();
        match catalogue_object(ctx, &registrar, &accepted, &t).await {
            Ok((o, storage)) => {
                let set = metrics.dataset(&t.dataset);
                set.count("ObjectsCatalogued", 1);
                set.count("TablesCreated", usize::from(o.table_created));
                if !o.table_created {
                    set.count("ColumnsAdded", o.columns_added.len());
                }
                set.count("ColumnsWidened", o.columns_widened.len());
                let entry = partitions
                    .entry(o.table.clone())
                    .or_insert_with(|| (t.dataset.clone(), storage.clone(), Vec::new()));
                entry.1 = storage;
                entry.2.push(t.partition.clone());
                outcome.objects.push(o);
            }
            Err(CatalogError::Core(sluice_core::Error::NotFound { key, .. })) => {
                // Deleted (or replaced) since the notification: nothing to catalogue.
                tracing::warn!(key = %key, "object no longer exists; skipped");
                skip(&mut metrics, &mut outcome, "not_found", None);
            }
            Err(e) => {
                tracing::error!(key = %accepted.key, error = %e, kind = e.kind(), retryable = e.is_retryable(), "object not catalogued");
                let set = if configured {
                    metrics.dataset(&t.dataset)
                } else {
                    metrics.function()
                };
                set.count("ObjectsFailed", 1);
                set.count(&format!("Failed_{}", e.kind()), 1);
                first_error.get_or_insert(e);
            }
        }
    }

    for (table, (dataset, storage, parts)) in &partitions {
        let set = metrics.dataset(dataset);
        if ctx.cfg.catalog.partition_projection {
            outcome.partitions_projected += parts.len();
            set.count("PartitionsProjected", parts.len());
            continue;
        }
        match registrar.register_partitions(table, storage, parts).await {
            Ok(PartitionCounts {
                created,
                existing,
                cached,
            }) => {
                outcome.partitions_created += created;
                outcome.partitions_existing += existing;
                outcome.partitions_cached += cached;
                set.count("PartitionsRegistered", created);
                set.count("PartitionsExisting", existing);
                set.count("PartitionsCached", cached);
                if created > 0 {
                    tracing::info!(table = %table, created, existing, "partitions registered");
                }
            }
            Err(e) => {
                tracing::error!(table = %table, error = %e, retryable = e.is_retryable(), "partitions not registered");
                set.count("PartitionsFailed", parts.len());
                first_error.get_or_insert(e);
            }
        }
    }
    metrics.add(
        "CatalogMillis",
        started.elapsed().as_secs_f64() * 1000.0,
        Unit::Milliseconds,
    );
    metrics.emit();
    tracing::info!(
        objects = outcome.objects.len(),
        skipped = outcome.skipped.values().sum::<usize>(),
        partitions_created = outcome.partitions_created,
        partitions_existing = outcome.partitions_existing,
        partitions_cached = outcome.partitions_cached,
        failed = first_error.is_some(),
        "notification processed"
    );
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// Ensures the database and the object's table; returns the outcome and the table's storage.
async fn catalogue_object(
    ctx: &Handler<'_>,
    registrar: &Registrar<'_>,
    a: &Accepted,
    t: &Target,
) -> Result<(ObjectOutcome, StorageSpec), CatalogError> {
    let dataset = ctx
        .cfg
        .dataset(&t.dataset)
        .ok_or_else(|| CatalogError::UnknownDataset {
            bucket: a.bucket.clone(),
            key: a.key.clone(),
            dataset: t.dataset.clone(),
        })?;
    let prefix = match t.zone {
        Zone::Curated => &ctx.zones.curated,
        Zone::Raw => &ctx.zones.raw,
    };
    let location = table_location(&a.bucket, prefix, &t.dataset);
    let projection = projection_parameters(
        ctx.cfg.catalog.partition_projection,
        &location,
        ctx.cfg.max_future_skew_secs,
    );
    let desired: TableSpec = match t.zone {
        Zone::Curated => {
            let size_hint = a.size.and_then(|s| u64::try_from(s).ok());
            let schema = read_schema(ctx.store, &a.key, size_hint).await?;
            let columns = columns_of(&schema).map_err(|(column, reason)| {
                CatalogError::UnsupportedColumn {
                    bucket: a.bucket.clone(),
                    key: a.key.clone(),
                    column,
                    reason,
                }
            })?;
            let (columns, dropped) = without_partition_keys(columns);
            if !dropped.is_empty() {
                tracing::warn!(key = %a.key, columns = ?dropped, "data columns named like partition keys are not catalogued");
            }
            curated_table(&t.dataset, &location, columns, projection)
        }
        Zone::Raw => raw_table(dataset, &location, projection),
    };
    registrar.ensure_database().await?;
    let table = registrar
        .ensure_table(
            &desired,
            Source {
                bucket: &a.bucket,
                key: &a.key,
            },
        )
        .await?;
    Ok((
        ObjectOutcome {
            key: a.key.clone(),
            table: table.table.clone(),
            partition: t.partition.path(),
            table_created: table.created,
            columns_added: table.added,
            columns_widened: table.widened,
        },
        table.storage,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::notify::ObjectNotice;

    fn accepted(prefix: &str, key: &str) -> Accepted {
        decide(
            &ObjectNotice {
                event_name: "ObjectCreated:Put".into(),
                bucket: "b".into(),
                raw_key: key.into(),
                size: None,
            },
            "b",
            &[prefix],
        )
        .expect("accepted")
    }

    #[test]
    fn targets_and_layout_skips() {
        let z = Zones::default();
        let t = target(
            &z,
            &accepted("curated/", "curated/orders/dt=2025-11-22/hr=07/a.parquet"),
        )
        .expect("curated");
        assert_eq!(
            (t.zone, t.dataset.as_str(), t.partition.path()),
            (Zone::Curated, "orders", "dt=2025-11-22/hr=07".to_string())
        );
        let r = target(
            &z,
            &accepted("raw/", "raw/orders/dt=2025-11-22/hr=07/s-1-2.json.gz"),
        )
        .expect("raw");
        assert_eq!(r.zone, Zone::Raw);
        let skip = |p: &str, k: &str| target(&z, &accepted(p, k)).err();
        assert_eq!(
            skip("raw/", "raw/orders/import.csv"),
            Some(LayoutSkip::OtherFormat)
        );
        assert_eq!(
            skip("raw/", "raw/orders/import.json.gz"),
            Some(LayoutSkip::NotInLayout)
        );
        assert_eq!(
            skip("curated/", "curated/orders/dt=2025-11-22/hr=07/_SUCCESS"),
            Some(LayoutSkip::OtherFormat)
        );
        assert_eq!(
            skip("curated/", "curated/orders/dt=2025-11-22/hr=99/a.parquet"),
            Some(LayoutSkip::NotInLayout)
        );
        assert_eq!(
            skip("curated/", "curated/a.parquet"),
            Some(LayoutSkip::NotInLayout)
        );
        assert_eq!(
            skip("curated/", "curated/o/dt=2025-11-22/hr=07/.a.parquet"),
            Some(LayoutSkip::OtherFormat)
        );
    }
}
