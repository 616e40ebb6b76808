//! The `Catalog` port: the few Glue Data Catalog operations glue-catalog needs, on sluice's own
//! types. [`crate::glue::GlueCatalog`] implements it with aws-sdk-glue; unit tests use fakes.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::CatalogError;
use crate::hive::Column;

/// Glue's limit on partitions per `BatchCreatePartition` call.
pub const MAX_PARTITIONS_PER_CALL: usize = 100;

/// Where and how a table's (or partition's) files are stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageSpec {
    /// `s3://bucket/prefix/dataset/` (tables) or `.../dt=../hr=../` (partitions).
    pub location: String,
    pub input_format: String,
    pub output_format: String,
    pub serde_library: String,
    pub serde_parameters: BTreeMap<String, String>,
    pub columns: Vec<Column>,
    pub compressed: bool,
}

/// A table as sluice wants it (or as the catalog has it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSpec {
    pub name: String,
    pub storage: StorageSpec,
    pub partition_keys: Vec<Column>,
    /// Table properties (`classification`, `projection.*`, ...).
    pub parameters: BTreeMap<String, String>,
}

/// A table read from the catalog, with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableState {
    pub spec: TableSpec,
    pub version_id: Option<String>,
}

/// One partition to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Values in partition-key order (`[dt, hr]`).
    pub values: Vec<String>,
    /// The table's storage with the partition's location.
    pub storage: StorageSpec,
}

/// A per-partition failure reported by a batch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFailure {
    pub values: Vec<String>,
    /// Glue's error code (`AlreadyExistsException`, `ThrottlingException`, ...).
    pub code: String,
    pub message: String,
}

/// The Glue Data Catalog operations glue-catalog uses.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates the database if it does not exist; `true` if it was created.
    async fn ensure_database(&self, database: &str) -> Result<bool, CatalogError>;

    /// The table, or `None` if it does not exist.
    async fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Option<TableState>, CatalogError>;

    /// Creates a table; `false` if it already exists (nothing is changed then).
    async fn create_table(&self, database: &str, spec: &TableSpec) -> Result<bool, CatalogError>;

    /// Replaces the columns of `current` and merges `parameters` into its properties, keeping
    /// everything else about the table. Fails with a retryable
    /// `ConcurrentModificationException` if the table changed since `current` was read.
    async fn update_table(
        &self,
        database: &str,
        current: &TableState,
        columns: &[Column],
        parameters: &BTreeMap<String, String>,
    ) -> Result<(), CatalogError>;

    /// Registers up to [`MAX_PARTITIONS_PER_CALL`] partitions in one call; returns the
    /// partitions that failed (including those that already exist).
    async fn create_partitions(
        &self,
        database: &str,
        table: &str,
        partitions: &[PartitionSpec],
    ) -> Result<Vec<PartitionFailure>, CatalogError>;
}
