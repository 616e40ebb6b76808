//! Keeping tables and partitions registered: create or evolve a table, register partitions in
//! batches, retry what Glue says to retry, and remember (per container) what is known.
//!
//! - A table is created when missing; otherwise its columns are evolved with
//!   [`crate::hive::evolve`] and written with one `UpdateTable` only when something changed.
//!   A conflict fails with [`CatalogError::IncompatibleSchema`] before anything is written.
//! - Partitions go out in `BatchCreatePartition` calls of at most
//!   [`MAX_PARTITIONS_PER_CALL`]; `AlreadyExistsException` counts as success; throttling,
//!   `ConcurrentModificationException` and other transient codes are retried with exponential
//!   backoff and full jitter, for whole calls and for individual partitions.
//! - [`CatalogCache`] lives as long as the Lambda container: a partition registered (or found
//!   existing) is never sent again, and a table whose known columns already cover an object
//!   costs no Glue call at all. Tables only grow, so a cached table is a safe lower bound; a
//!   table dropped by hand is re-created on the next cold start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use sluice_core::lake::keys::Partition;

use crate::catalog::{
    Catalog, PartitionSpec, StorageSpec, TableSpec, TableState, MAX_PARTITIONS_PER_CALL,
};
use crate::error::{is_retryable_glue_code, CatalogError, SchemaConflict};
use crate::hive::evolve;
use crate::tables::{parameters_satisfied, partition_storage, partition_values};

/// Glue's per-partition code for a partition that already exists.
pub const ALREADY_EXISTS: &str = "AlreadyExistsException";

/// Backoff for retryable Glue failures (on top of the SDK's own retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (≥ 1).
    pub max_attempts: u32,
    /// Upper bound of the first delay.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): full jitter over `base * 2^(retry-1)`,
    /// capped at `max_delay`.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let ms = exp.as_millis() as u64;
        Duration::from_millis(if ms == 0 {
            0
        } else {
            fastrand::u64(ms / 2..=ms)
        })
    }

    /// Runs `op` until it succeeds, fails with a non-retryable error, or attempts run out.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, CatalogError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CatalogError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.max_attempts.max(1) => {
                    let delay = self.delay(attempt);
                    tracing::warn!(op = what, attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying glue call");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// What this container already knows about the catalog.
#[derive(Debug, Default)]
pub struct CatalogCache {
    databases: Mutex<HashSet<String>>,
    tables: Mutex<HashMap<(String, String), TableState>>,
    partitions: Mutex<HashSet<(String, String, Vec<String>)>>,
}

impl CatalogCache {
    /// An empty cache (a cold container).
    pub fn new() -> Self {
        Self::default()
    }

    fn has_database(&self, db: &str) -> bool {
        self.databases.lock().is_ok_and(|d| d.contains(db))
    }

    fn put_database(&self, db: &str) {
        if let Ok(mut d) = self.databases.lock() {
            d.insert(db.to_string());
        }
    }

    fn table(&self, db: &str, name: &str) -> Option<TableState> {
        self.tables
            .lock()
            .ok()
            .and_then(|t| t.get(&(db.to_string(), name.to_string())).cloned())
    }

    fn put_table(&self, db: &str, state: TableState) {
        if let Ok(mut t) = self.tables.lock() {
            t.insert((db.to_string(), state.spec.name.clone()), state);
        }
    }

    fn forget_table(&self, db: &str, name: &str) {
        if let Ok(mut t) = self.tables.lock() {
            t.remove(&(db.to_string(), name.to_string()));
        }
    }

    fn has_partition(&self, db: &str, table: &str, values: &[String]) -> bool {
        self.partitions
            .lock()
            .is_ok_and(|p| p.contains(&(db.to_string(), table.to_string(), values.to_vec())))
    }

    fn put_partition(&self, db: &str, table: &str, values: Vec<String>) {
        if let Ok(mut p) = self.partitions.lock() {
            p.insert((db.to_string(), table.to_string(), values));
        }
    }

    /// Number of partitions known.
    pub fn partitions_known(&self) -> usize {
        self.partitions.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// What ensuring one table did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOutcome {
    pub table: String,
    pub created: bool,
    /// Columns appended by this call.
    pub added: Vec<String>,
    /// Columns widened by this call, as `name:old->new`.
    pub widened: Vec<String>,
    /// Whether the cache answered without any Glue call.
    pub cached: bool,
    /// The table's storage after this call (what its partitions inherit).
    pub storage: StorageSpec,
}

/// Partition registration counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub created: usize,
    pub existing: usize,
    pub cached: usize,
}

/// The object whose schema drives a table change (for error messages).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

/// Registers tables and partitions in one database.
pub struct Registrar<'a> {
    pub catalog: &'a dyn Catalog,
    pub cache: &'a CatalogCache,
    pub database: &'a str,
    pub retry: RetryPolicy,
}

impl Registrar<'_> {
    /// Creates the database if missing (once per container).
    pub async fn ensure_database(&self) -> Result<(), CatalogError> {
        if self.cache.has_database(self.database) {
            return Ok(());
        }
        let created = self
            .retry
            .run("ensure_database", || {
                self.catalog.ensure_database(self.database)
            })
            .await?;
        if created {
            tracing::info!(database = self.database, "glue database created");
        }
        self.cache.put_database(self.database);
        Ok(())
    }

    /// Creates `desired` if missing, else evolves the existing table to cover its columns and
    /// properties. Never drops, reorders or narrows columns.
    pub async fn ensure_table(
        &self,
        desired: &TableSpec,
        source: Source<'_>,
    ) -> Result<TableOutcome, CatalogError> {
        if let Some(known) = self.cache.table(self.database, &desired.name) {
            let covered = evolve(&known.spec.storage.columns, &desired.storage.columns)
                .is_ok_and(|e| !e.changed());
            if covered && parameters_satisfied(&known.spec.parameters, &desired.parameters) {
                return Ok(TableOutcome {
                    table: desired.name.clone(),
                    created: false,
                    added: Vec::new(),
                    widened: Vec::new(),
                    cached: true,
                    storage: known.spec.storage,
                });
            }
        }
        let result = self
            .retry
            .run("ensure_table", || self.ensure_table_once(desired, source))
            .await;
        if result.is_err() {
            self.cache.forget_table(self.database, &desired.name);
        }
        result
    }

    async fn ensure_table_once(
        &self,
        desired: &TableSpec,
        source: Source<'_>,
    ) -> Result<TableOutcome, CatalogError> {
        let db = self.database;
        let state = match self.catalog.get_table(db, &desired.name).await? {
            Some(s) => s,
            None => {
                if self.catalog.create_table(db, desired).await? {
                    tracing::info!(database = db, table = %desired.name, columns = desired.storage.columns.len(), "glue table created");
                    self.cache.put_table(
                        db,
                        TableState {
                            spec: desired.clone(),
                            version_id: None,
                        },
                    );
                    return Ok(TableOutcome {
                        table: desired.name.clone(),
                        created: true,
                        added: desired
                            .storage
                            .columns
                            .iter()
                            .map(|c| c.name.clone())
                            .collect(),
                        widened: Vec::new(),
                        cached: false,
                        storage: desired.storage.clone(),
                    });
                }
                // Created concurrently by another invocation: evolve that one.
                self.catalog
                    .get_table(db, &desired.name)
                    .await?
                    .ok_or_else(|| CatalogError::Glue {
                        op: "get_table",
                        database: db.to_string(),
                        table: desired.name.clone(),
                        code: "EntityNotFoundException".into(),
                        message: "table reported as existing but not found".into(),
                        retryable: true,
                    })?
            }
        };
        let evolution =
            evolve(&state.spec.storage.columns, &desired.storage.columns).map_err(|c| {
                CatalogError::IncompatibleSchema(Box::new(SchemaConflict {
                    database: db.to_string(),
                    table: desired.name.clone(),
                    column: c.column,
                    old: c.old,
                    new: c.new,
                    bucket: source.bucket.to_string(),
                    key: source.key.to_string(),
                }))
            })?;
        let params_ok = parameters_satisfied(&state.spec.parameters, &desired.parameters);
        let mut next = state.clone();
        if evolution.changed() || !params_ok {
            self.catalog
                .update_table(db, &state, &evolution.columns, &desired.parameters)
                .await?;
            tracing::info!(database = db, table = %desired.name, added = ?evolution.added, widened = evolution.widened.len(), properties_updated = !params_ok, "glue table updated");
            next.spec.storage.columns = evolution.columns.clone();
            next.spec.parameters.extend(
                desired
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            next.version_id = None;
        }
        let storage = next.spec.storage.clone();
        self.cache.put_table(db, next);
        Ok(TableOutcome {
            table: desired.name.clone(),
            created: false,
            added: evolution.added,
            widened: evolution
                .widened
                .into_iter()
                .map(|(n, o, w)| format!("{n}:{o}->{w}"))
                .collect(),
            cached: false,
            storage,
        })
    }

    /// Registers the partitions of `table` (storage inherited from `storage`) not yet known.
    pub async fn register_partitions(
        &self,
        table: &str,
        storage: &StorageSpec,
        partitions: &[Partition],
    ) -> Result<PartitionCounts, CatalogError> {
        let db = self.database;
        let mut counts = PartitionCounts::default();
        let mut todo: BTreeMap<Vec<String>, PartitionSpec> = BTreeMap::new();
        for p in partitions {
            let values = partition_values(p);
            if self.cache.has_partition(db, table, &values) {
                counts.cached += 1;
                continue;
            }
            todo.entry(values.clone()).or_insert_with(|| PartitionSpec {
                values,
                storage: partition_storage(storage, p),
            });
        }
        let todo: Vec<PartitionSpec> = todo.into_values().collect();
        for chunk in todo.chunks(MAX_PARTITIONS_PER_CALL) {
            let mut pending = chunk.to_vec();
            let mut attempt = 1;
            loop {
                let failures = self
                    .retry
                    .run("batch_create_partition", || {
                        self.catalog.create_partitions(db, table, &pending)
                    })
                    .await?;
                let mut retry = Vec::new();
                let mut failed: HashSet<Vec<String>> = HashSet::new();
                for f in failures {
                    failed.insert(f.values.clone());
                    if f.code == ALREADY_EXISTS {
                        counts.existing += 1;
                        self.cache.put_partition(db, table, f.values);
                    } else if is_retryable_glue_code(&f.code) {
                        retry.push(f);
                    } else {
                        return Err(CatalogError::Glue {
                            op: "batch_create_partition",
                            database: db.to_string(),
                            table: table.to_string(),
                            code: f.code,
                            message: format!("partition {}: {}", f.values.join("/"), f.message),
                            retryable: false,
                        });
                    }
                }
                for p in &pending {
                    if !failed.contains(&p.values) {
                        counts.created += 1;
                        self.cache.put_partition(db, table, p.values.clone());
                    }
                }
                if retry.is_empty() {
                    break;
                }
                if attempt >= self.retry.max_attempts.max(1) {
                    let f = &retry[0];
                    return Err(CatalogError::Glue {
                        op: "batch_create_partition",
                        database: db.to_string(),
                        table: table.to_string(),
                        code: f.code.clone(),
                        message: format!(
                            "{} partition(s) still failing after {attempt} attempts, e.g. {}: {}",
                            retry.len(),
                            f.values.join("/"),
                            f.message
                        ),
                        retryable: true,
                    });
                }
                let delay = self.retry.delay(attempt);
                tracing::warn!(table, partitions = retry.len(), code = %retry[0].code, delay_ms = delay.as_millis() as u64, "retrying partitions");
                tokio::time::sleep(delay).await;
                attempt += 1;
                let again: HashSet<Vec<String>> = retry.into_iter().map(|f| f.values).collect();
                pending.retain(|p| again.contains(&p.values));
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::catalog::PartitionFailure;
    use crate::hive::Column;
    use crate::tables::{curated_table, projection_parameters};

    /// An in-memory catalog that can throttle and report per-partition errors.
    #[derive(Default)]
    struct Fake {
        tables: Mutex<HashMap<String, TableState>>,
        partitions: Mutex<HashSet<Vec<String>>>,
        calls: Mutex<Vec<String>>,
        batch_sizes: Mutex<Vec<usize>>,
        /// Whole-call throttles left for `get_table`.
        throttle_get: Mutex<u32>,
        /// Per-partition ConcurrentModification failures left.
        concurrent: Mutex<u32>,
    }

    impl Fake {
        fn call(&self, c: &str) {
            self.calls.lock().expect("lock").push(c.to_string());
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("lock").clone()
        }
    }

    #[async_trait]
    impl Catalog for Fake {
        async fn ensure_database(&self, _: &str) -> Result<bool, CatalogError> {
            self.call("ensure_database");
            Ok(true)
        }
        async fn get_table(
            &self,
            db: &str,
            name: &str,
        ) -> Result<Option<TableState>, CatalogError> {
            self.call("get_table");
            let mut t = self.throttle_get.lock().expect("lock");
            if *t > 0 {
                *t -= 1;
                return Err(CatalogError::Glue {
                    op: "get_table",
                    database: db.into(),
                    table: name.into(),
                    code: "ThrottlingException".into(),
                    message: "Rate exceeded".into(),
                    retryable: true,
                });
            }
            Ok(self.tables.lock().expect("lock").get(name).cloned())
        }
        async fn create_table(&self, _: &str, spec: &TableSpec) -> Result<bool, CatalogError> {
            self.call("create_table");
            let mut t = self.tables.lock().expect("lock");
            if t.contains_key(&spec.name) {
                return Ok(false);
            }
            t.insert(
                spec.name.clone(),
                TableState {
                    spec: spec.clone(),
                    version_id: Some("1".into()),
                },
            );
            Ok(true)
        }
        async fn update_table(
            &self,
            _: &str,
            current: &TableState,
            columns: &[Column],
            parameters: &BTreeMap<String, String>,
        ) -> Result<(), CatalogError> {
            self.call("update_table");
            let mut t = self.tables.lock().expect("lock");
            let entry = t.get_mut(&current.spec.name).expect("exists");
            entry.spec.storage.columns = columns.to_vec();
            entry.spec.parameters.extend(parameters.clone());
            Ok(())
        }
        async fn create_partitions(
            &self,
            _: &str,
            _: &str,
            partitions: &[PartitionSpec],
        ) -> Result<Vec<PartitionFailure>, CatalogError> {
            self.call("create_partitions");
            self.batch_sizes
                .lock()
                .expect("lock")
                .push(partitions.len());
            let mut out = Vec::new();
            let mut known = self.partitions.lock().expect("lock");
            let mut concurrent = self.concurrent.lock().expect("lock");
            for p in partitions {
                if *concurrent > 0 {
                    *concurrent -= 1;
                    out.push(PartitionFailure {
                        values: p.values.clone(),
                        code: "ConcurrentModificationException".into(),
                        message: "try again".into(),
                    });
                } else if !known.insert(p.values.clone()) {
                    out.push(PartitionFailure {
                        values: p.values.clone(),
                        code: ALREADY_EXISTS.into(),
                        message: "exists".into(),
                    });
                }
            }
            Ok(out)
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn spec(cols: &[(&str, &str)]) -> TableSpec {
        let loc = "s3://b/curated/orders/";
        curated_table(
            "orders",
            loc,
            cols.iter().map(|(n, t)| Column::new(*n, *t)).collect(),
            projection_parameters(false, loc, 0),
        )
    }

    const SRC: Source<'static> = Source {
        bucket: "b",
        key: "curated/orders/dt=2025-11-22/hr=07/x.parquet",
    };

    fn hours(n: usize) -> Vec<Partition> {
        (0..n)
            .map(|i| {
                let day = 1 + i / 24;
                Partition::parse(&format!("2025-01-{day:02}"), &format!("{:02}", i % 24))
                    .expect("p")
            })
            .collect()
    }

    #[tokio::test]
    async fn create_then_cache_then_evolve() {
        let fake = Fake::default();
        let cache = CatalogCache::new();
        let r = Registrar {
            catalog: &fake,
            cache: &cache,
            database: "db",
            retry: fast(),
        };
        r.ensure_database().await.expect("db");
        r.ensure_database().await.expect("db again");
        let first = r
            .ensure_table(&spec(&[("id", "string"), ("n", "int")]), SRC)
            .await
            .expect("create");
        assert!(first.created);
        let again = r
            .ensure_table(&spec(&[("n", "int")]), SRC)
            .await
            .expect("cached");
        assert!(again.cached);
        assert_eq!(
            fake.calls(),
            vec!["ensure_database", "get_table", "create_table"]
        );

        let evolved = r
            .ensure_table(
                &spec(&[("id", "string"), ("n", "bigint"), ("extra", "date")]),
                SRC,
            )
            .await
            .expect("evolve");
        assert_eq!(evolved.added, vec!["extra"]);
        assert_eq!(evolved.widened, vec!["n:int->bigint"]);
        let stored = fake.tables.lock().expect("lock")["orders"].clone();
        assert_eq!(
            stored.spec.storage.columns,
            vec![
                Column::new("id", "string"),
                Column::new("n", "bigint"),
                Column::new("extra", "date")
            ]
        );
    }

    #[tokio::test]
    async fn conflict_leaves_the_table_alone_and_throttling_is_retried() {
        let fake = Fake::default();
        let cache = CatalogCache::new();
        let r = Registrar {
            catalog: &fake,
            cache: &cache,
            database: "db",
            retry: fast(),
        };
        r.ensure_table(&spec(&[("id", "string"), ("n", "bigint")]), SRC)
            .await
            .expect("create");
        let before = fake.tables.lock().expect("lock")["orders"].clone();
        *fake.throttle_get.lock().expect("lock") = 2;
        let e = r
            .ensure_table(
                &spec(&[("id", "string"), ("n", "string"), ("new", "int")]),
                SRC,
            )
            .await
            .expect_err("conflict");
        assert!(
            matches!(&e, CatalogError::IncompatibleSchema(c) if c.column == "n" && c.old == "bigint" && c.new == "string"),
            "{e}"
        );
        assert_eq!(fake.tables.lock().expect("lock")["orders"], before);
        assert!(!fake.calls().contains(&"update_table".to_string()));
        // Two throttled reads, then the real one.
        assert_eq!(fake.calls().iter().filter(|c| *c == "get_table").count(), 4);
    }

    #[tokio::test]
    async fn throttling_beyond_the_budget_fails_retryably() {
        let fake = Fake::default();
        *fake.throttle_get.lock().expect("lock") = 10;
        let cache = CatalogCache::new();
        let r = Registrar {
            catalog: &fake,
            cache: &cache,
            database: "db",
            retry: fast(),
        };
        let e = r
            .ensure_table(&spec(&[("id", "string")]), SRC)
            .await
            .expect_err("throttled");
        assert!(e.is_retryable());
        assert_eq!(e.glue_code(), Some("ThrottlingException"));
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test]
    async fn partitions_batch_by_100_retry_and_cache() {
        let fake = Fake::default();
        *fake.concurrent.lock().expect("lock") = 3;
        let cache = CatalogCache::new();
        let r = Registrar {
            catalog: &fake,
            cache: &cache,
            database: "db",
            retry: fast(),
        };
        let storage = spec(&[("id", "string")]).storage;
        // One partition exists already (registered by another container).
        fake.partitions
            .lock()
            .expect("lock")
            .insert(vec!["2025-01-01".into(), "05".into()]);
        let mut parts = hours(250);
        parts.push(parts[0].clone());
        let c = r
            .register_partitions("orders", &storage, &parts)
            .await
            .expect("register");
        assert_eq!(
            c,
            PartitionCounts {
                created: 249,
                existing: 1,
                cached: 0
            }
        );
        assert_eq!(
            *fake.batch_sizes.lock().expect("lock"),
            vec![100, 3, 100, 50]
        );
        assert_eq!(cache.partitions_known(), 250);
        let again = r
            .register_partitions("orders", &storage, &parts[..10])
            .await
            .expect("cached");
        assert_eq!(
            again,
            PartitionCounts {
                created: 0,
                existing: 0,
                cached: 10
            }
        );
        assert_eq!(fake.batch_sizes.lock().expect("lock").len(), 4);
    }

    #[tokio::test]
    async fn persistent_partition_failures_fail_retryably() {
        let fake = Fake::default();
        *fake.concurrent.lock().expect("lock") = 100;
        let cache = CatalogCache::new();
        let r = Registrar {
            catalog: &fake,
            cache: &cache,
            database: "db",
            retry: fast(),
        };
        let storage = spec(&[("id", "string")]).storage;
        let e = r
            .register_partitions("orders", &storage, &hours(1))
            .await
            .expect_err("keeps failing");
        assert!(e.is_retryable());
        assert_eq!(e.glue_code(), Some("ConcurrentModificationException"));
        assert_eq!(fake.batch_sizes.lock().expect("lock").len(), 4);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        for retry in 1..40 {
            assert!(p.delay(retry) <= p.max_delay);
        }
        assert!(p.delay(1) <= p.base_delay);
    }
}
