//! The pipeline configuration: datasets, their schemas, routing, keys and PII rules.
//!
//! A pipeline is a TOML document (see `pipeline.toml` at the repository root). It is parsed
//! once at cold start into [`PipelineConfig`], and [`PipelineConfig::from_toml`] rejects every
//! inconsistency with a message that names the dataset and the field, so a bad deployment fails
//! before it touches data. The serde shapes users write are in `config/raw.rs`, documented
//! field by field; the validation is in `config/validate.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

mod filter;
mod raw;
mod rollup;
mod validate;

pub use filter::{Filter, FilterError};
pub use rollup::{Grain, Measure, MeasureFn, Rollup};
pub use validate::{is_glue_name, is_identifier};

/// Default cap on one decoded record (Kinesis allows 1 MiB per record).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Default tolerance for event times ahead of the record's arrival time.
pub const DEFAULT_MAX_FUTURE_SKEW_SECS: i64 = 24 * 3600;
/// Default gzip level for raw objects.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Longest identifier PostgreSQL accepts without truncation.
const MAX_IDENTIFIER: usize = 63;
/// Prefix reserved for columns and metadata that sluice adds itself.
pub const RESERVED_PREFIX: &str = "_sluice";

/// A validated pipeline configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The record field whose value selects the dataset.
    pub routing_field: String,
    /// Records larger than this (bytes, after de-aggregation) are quarantined.
    pub max_record_bytes: usize,
    /// Event times later than arrival + this many seconds are rejected.
    pub max_future_skew_secs: i64,
    /// gzip level (0-9) for NDJSON objects.
    pub gzip_level: u32,
    /// Glue catalog settings.
    pub catalog: CatalogConfig,
    /// PostgreSQL settings.
    pub warehouse: WarehouseConfig,
    /// The datasets, in declaration order.
    pub datasets: Vec<Dataset>,
}

/// Glue Data Catalog settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Glue database name (created if missing).
    #[serde(default = "default_database")]
    pub database: String,
    /// Write partition-projection table properties instead of registering partitions.
    #[serde(default)]
    pub partition_projection: bool,
}

/// PostgreSQL warehouse settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// Schema the dataset tables live in (created if missing).
    #[serde(default = "default_pg_schema")]
    pub schema: String,
}

fn default_database() -> String {
    "sluice".into()
}
fn default_pg_schema() -> String {
    "sluice".into()
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            database: default_database(),
            partition_projection: false,
        }
    }
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        WarehouseConfig {
            schema: default_pg_schema(),
        }
    }
}

/// One dataset: a kind of business record with its own schema, table and prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Name used in prefixes, table names and metrics (`[a-z][a-z0-9_]*`).
    pub name: String,
    /// Value of the routing field that selects this dataset.
    pub route: String,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// Index into `fields` of the key field; `None` falls back to shard + sequence number.
    pub key: Option<usize>,
    /// Index into `fields` of the event-time field; `None` partitions by arrival time.
    pub event_time: Option<usize>,
    /// PII rule per field index.
    pub pii: BTreeMap<usize, PiiRule>,
    /// PII rules inside `json` fields: `(field index, path below it, rule)`, e.g. the rule
    /// `payment.card.number` on the json field `payment` is `(i, ["card", "number"], rule)`.
    pub json_pii: Vec<(usize, Vec<String>, PiiRule)>,
    /// Filters in declaration order: a record is kept in curated and PostgreSQL only if every
    /// filter keeps it; it is counted under the first filter that does not.
    pub filters: Vec<Filter>,
    /// Rollups materialised in PostgreSQL (`<dataset>_<rollup>` tables).
    pub rollups: Vec<Rollup>,
}

impl Dataset {
    /// The key field, if one is configured.
    pub fn key_field(&self) -> Option<&Field> {
        self.key.map(|i| &self.fields[i])
    }

    /// The event-time field, if one is configured.
    pub fn event_time_field(&self) -> Option<&Field> {
        self.event_time.map(|i| &self.fields[i])
    }

    /// The PII rule of a field index, if any.
    pub fn pii_rule(&self, field: usize) -> Option<PiiRule> {
        self.pii.get(&field).copied()
    }
}

/// One schema field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Key of the field in the JSON record (or CSV header).
    pub name: String,
    /// Column name in Parquet, PostgreSQL and Glue.
    pub column: String,
    /// Declared type.
    pub ty: FieldType,
    /// Whether a record without it (or with null) is rejected.
    pub required: bool,
}

/// The types a schema field can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `string`: text, from a JSON string.
    String,
    /// `int`: a 64-bit signed integer (a JSON integer, an exact float, or a string of one).
    Int,
    /// `float`: a finite 64-bit float (a JSON number, or a string of one).
    Float,
    /// `bool`: `true` or `false` (a JSON boolean, or a string of one).
    Bool,
    /// `timestamp`: an instant, coerced to UTC microseconds since the epoch.
    Timestamp,
    /// `date`: a `YYYY-MM-DD` calendar date, coerced to days since the epoch.
    Date,
    /// `json`: any JSON value, kept as its compact JSON text.
    Json,
    /// `decimal(p,s)`: an exact decimal of `precision` digits, `scale` after the point (a JSON
    /// number's own text or a numeric string, never through a float); `p` 1-38, `s` 0-p.
    Decimal {
        /// Digits in all (1-38).
        precision: u8,
        /// Digits after the point (0-precision).
        scale: u8,
    },
}

impl std::str::FromStr for FieldType {
    type Err = String;

    /// `string`, `int`, `float`, `bool`, `timestamp`, `date`, `json` or `decimal(p,s)`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "string" => FieldType::String,
            "int" => FieldType::Int,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "timestamp" => FieldType::Timestamp,
            "date" => FieldType::Date,
            "json" => FieldType::Json,
            other => {
                let bad = || {
                    format!(
                        "unknown type {other:?}: expected string, int, float, bool, timestamp, date, json or decimal(p,s) with p 1-{} and s 0-p",
                        crate::decimal::MAX_PRECISION
                    )
                };
                let args = other
                    .strip_prefix("decimal(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let (p, s) = args.split_once(',').unwrap_or((args, "0"));
                let precision: u8 = p.trim().parse().map_err(|_| bad())?;
                let scale: u8 = s.trim().parse().map_err(|_| bad())?;
                if precision == 0 || precision > crate::decimal::MAX_PRECISION || scale > precision
                {
                    return Err(bad());
                }
                FieldType::Decimal { precision, scale }
            }
        })
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FieldType {
    /// The name used in config files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Timestamp => "timestamp",
            FieldType::Date => "date",
            FieldType::Json => "json",
            FieldType::Decimal { .. } => "decimal",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FieldType::Decimal { precision, scale } = self {
            return write!(f, "decimal({precision},{scale})");
        }
        f.write_str(self.as_str())
    }
}

/// How s3-transform treats a PII field before it reaches curated objects or PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiRule {
    /// HMAC-SHA256 of the value, hex; deterministic, joinable, not reversible without the key.
    Hash,
    /// Replaced by a fixed marker.
    Redact,
    /// Local part hidden, domain kept: `***@example.com`.
    MaskEmail,
    /// IPv4 keeps /24, IPv6 keeps /48.
    TruncateIp,
    /// The column is not written at all.
    Drop,
}

impl PiiRule {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiRule::Hash => "hash",
            PiiRule::Redact => "redact",
            PiiRule::MaskEmail => "mask_email",
            PiiRule::TruncateIp => "truncate_ip",
            PiiRule::Drop => "drop",
        }
    }
}
