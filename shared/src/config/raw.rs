//! The serde shapes of a pipeline config: what users write, table by table, documented
//! field by field. README.md's "Pipeline config" reference is checked against them
//! (`tests/tidy.rs`). `CatalogConfig` and `WarehouseConfig` (in the parent module) are written
//! as they are.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CatalogConfig, FieldType, Grain, MeasureFn, PiiRule, WarehouseConfig};

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[pipeline]`: routing and limits (required).
    pub(super) pipeline: RawPipeline,
    /// `[catalog]`: the Glue Data Catalog (optional).
    #[serde(default)]
    pub(super) catalog: CatalogConfig,
    /// `[warehouse]`: PostgreSQL (optional).
    #[serde(default)]
    pub(super) warehouse: WarehouseConfig,
    /// `[[dataset]]`, one table per business system; at least one.
    #[serde(default, rename = "dataset")]
    pub(super) datasets: Vec<RawDataset>,
}

/// `[pipeline]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    /// The record field whose value selects the dataset (`"type"`).
    pub(super) routing_field: String,
    /// Records larger than this many bytes (after KPL de-aggregation) are quarantined
    /// (`oversized`); default 1 MiB, Kinesis' own limit.
    pub(super) max_record_bytes: Option<usize>,
    /// Event times more than this many seconds after the record's arrival are rejected;
    /// default one day.
    pub(super) max_future_skew_secs: Option<i64>,
    /// gzip level 0-9 of raw and quarantine objects; default 6.
    pub(super) gzip_level: Option<u32>,
}

/// `[[dataset]]`: one kind of business record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataset {
    /// `[a-z][a-z0-9_]*`, at most 63 characters: used in prefixes, table names and metrics.
    pub(super) name: String,
    /// The routing-field value that selects this dataset; default: the name.
    pub(super) route: Option<String>,
    /// A required `string` or `int` field that identifies a record (the upsert key); default:
    /// the record's shard id, sequence number and sub-record index.
    pub(super) key: Option<String>,
    /// A required `timestamp` field that partitions the data (`dt=`/`hr=`) and ranks versions;
    /// default: the arrival time.
    pub(super) event_time: Option<String>,
    /// The schema, in column order: see [`RawField`].
    #[serde(default)]
    pub(super) fields: Vec<RawField>,
    /// PII rule per field name: `hash`, `redact`, `mask_email`, `truncate_ip` or `drop`.
    #[serde(default)]
    pub(super) pii: BTreeMap<String, PiiRule>,
    /// `[[dataset.filter]]`: records a filter does not keep are left out of curated and
    /// PostgreSQL (raw keeps them) and counted under its name; see [`RawFilter`].
    #[serde(default, rename = "filter")]
    pub(super) filters: Vec<RawFilter>,
    /// `[[dataset.rollup]]`: aggregations materialised in PostgreSQL; see [`RawRollup`].
    #[serde(default, rename = "rollup")]
    pub(super) rollups: Vec<RawRollup>,
}

/// One `[[dataset.rollup]]`: a table `<dataset>_<name>` with one row per time bucket and
/// dimension values, always equal to a `GROUP BY` over the dataset's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollup {
    /// Names the rollup (`[a-z][a-z0-9_]*`); its table is `<dataset>_<name>`.
    pub(super) name: String,
    /// `hour` or `day`: the bucket of the dataset's event time (UTC), column `bucket`.
    pub(super) grain: Grain,
    /// Fields to group by besides the bucket (not `json`); default none.
    #[serde(default)]
    pub(super) dimensions: Vec<String>,
    /// The aggregates, at least one: see [`RawMeasure`].
    pub(super) measures: Vec<RawMeasure>,
}

/// One entry of `measures = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeasure {
    /// The measure's column name (`[a-z][a-z0-9_]*`).
    pub(super) name: String,
    /// `count`, `sum` (int/float), `min`/`max` (int, float, timestamp, date, string) or
    /// `count_distinct`.
    #[serde(rename = "fn")]
    pub(super) func: MeasureFn,
    /// The field aggregated; `count` without a field counts records.
    pub(super) field: Option<String>,
}

/// One `[[dataset.filter]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    /// Names the filter in metrics (`Filtered_<name>`) and summaries: `[a-z][a-z0-9_]*`.
    pub(super) name: String,
    /// The expression a record must satisfy to be kept, over the dataset's field names:
    /// comparisons (`== != < <= > >=`), `in [..]`, `is null`, `is not null`, `starts_with`,
    /// `matches` (a regular expression, regex-lite syntax), `and`, `or`, `not` and parentheses, e.g.
    /// `not (user_id starts_with 'bot-') and duration_ms >= 0`.
    pub(super) keep: String,
}

/// One entry of `fields = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    /// The key in the JSON record (or the CSV header).
    pub(super) name: String,
    /// The column name in Parquet, PostgreSQL and Glue; default: the name.
    pub(super) column: Option<String>,
    /// `string`, `int`, `float`, `bool`, `timestamp`, `date` or `json`.
    #[serde(rename = "type")]
    pub(super) ty: FieldType,
    /// Whether a record without the field (or with null or empty text) is rejected.
    #[serde(default)]
    pub(super) required: bool,
}
