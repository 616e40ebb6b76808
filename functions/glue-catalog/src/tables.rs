//! The tables sluice keeps in Glue: the curated Parquet table and the raw JSON table of a
//! dataset, their storage descriptors, properties and partition-projection settings.
//!
//! ```text
//! <dataset>      Parquet    s3://<bucket>/<curated>/<dataset>/  columns from the Parquet footer
//! <dataset>_raw  OpenX JSON s3://<bucket>/<raw>/<dataset>/      columns from the config + _sluice
//! ```
//! Both are `EXTERNAL_TABLE`s partitioned by `dt` and `hr` (strings), the Hive partitions of
//! the key layout; a partition's storage is the table's with the partition's location.

use std::collections::BTreeMap;

use sluice_core::config::Dataset;
use sluice_core::lake::keys::Partition;
use sluice_core::lake::line::META_KEY;

use crate::catalog::{StorageSpec, TableSpec};
use crate::hive::{raw_field_type, Column, RAW_META_TYPE};

/// Glue table type of every sluice table.
pub const TABLE_TYPE: &str = "EXTERNAL_TABLE";
/// Suffix of the raw table's name.
pub const RAW_TABLE_SUFFIX: &str = "_raw";
/// Partition key names, in order.
pub const PARTITION_KEYS: [&str; 2] = ["dt", "hr"];

/// Hive's Parquet formats and SerDe (what Athena, Spectrum and EMR expect).
pub const PARQUET_INPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
/// Text formats and the OpenX JSON SerDe for gzip NDJSON.
pub const TEXT_INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
pub const TEXT_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
pub const OPENX_JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";

/// Which zone a table catalogues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Curated,
    Raw,
}

impl Zone {
    /// The table name of a dataset in this zone.
    pub fn table_name(self, dataset: &str) -> String {
        match self {
            Zone::Curated => dataset.to_string(),
            Zone::Raw => format!("{dataset}{RAW_TABLE_SUFFIX}"),
        }
    }

    /// The file extension of this zone's data objects.
    pub fn extension(self) -> &'static str {
        match self {
            Zone::Curated => sluice_core::lake::keys::CURATED_EXTENSION,
            Zone::Raw => sluice_core::lake::keys::RAW_EXTENSION,
        }
    }
}

/// `s3://<bucket>/<prefix><dataset>/`.
pub fn table_location(bucket: &str, prefix: &str, dataset: &str) -> String {
    format!("s3://{bucket}/{prefix}{dataset}/")
}

/// `<table location>dt=../hr=../`.
pub fn partition_location(table_location: &str, p: &Partition) -> String {
    let base = table_location.trim_end_matches('/');
    format!("{base}/{}/", p.path())
}

/// The partition values of `p`, in [`PARTITION_KEYS`] order.
pub fn partition_values(p: &Partition) -> Vec<String> {
    vec![p.dt.clone(), p.hr.clone()]
}

/// The partition columns.
pub fn partition_keys() -> Vec<Column> {
    PARTITION_KEYS
        .iter()
        .map(|k| Column::new(*k, "string"))
        .collect()
}

/// Partition projection: `projection.*` and `storage.location.template`, or just
/// `projection.enabled=false` when it is off (so turning it off takes effect on the table).
///
/// `dt` ranges from 2000-01-01 (older event times are rejected at ingest) to now plus the
/// pipeline's allowed future skew, rounded up to days.
pub fn projection_parameters(
    enabled: bool,
    location: &str,
    max_future_skew_secs: i64,
) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("projection.enabled".to_string(), enabled.to_string());
    if !enabled {
        return p;
    }
    let days = (max_future_skew_secs.max(0) + 86_399) / 86_400;
    let end = if days == 0 {
        "NOW".to_string()
    } else {
        format!("NOW+{days}DAYS")
    };
    let base = location.trim_end_matches('/');
    for (k, v) in [
        ("projection.dt.type", "date".to_string()),
        ("projection.dt.format", "yyyy-MM-dd".to_string()),
        ("projection.dt.range", format!("2000-01-01,{end}")),
        ("projection.dt.interval", "1".to_string()),
        ("projection.dt.interval.unit", "DAYS".to_string()),
        ("projection.hr.type", "integer".to_string()),
        ("projection.hr.range", "0,23".to_string()),
        ("projection.hr.digits", "2".to_string()),
        (
            "storage.location.template",
            sluice_core::lake::keys::projection_template(base),
        ),
    ] {
        p.insert(k.to_string(), v);
    }
    p
}

/// Whether every desired property already has the desired value.
pub fn parameters_satisfied(
    existing: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> bool {
    desired.iter().all(|(k, v)| existing.get(k) == Some(v))
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Drops data columns named like a partition key (Glue rejects a table with both).
pub fn without_partition_keys(columns: Vec<Column>) -> (Vec<Column>, Vec<String>) {
    let (dropped, kept): (Vec<Column>, Vec<Column>) = columns.into_iter().partition(|c| {
        PARTITION_KEYS
            .iter()
            .any(|k| c.name.eq_ignore_ascii_case(k))
    });
    (kept, dropped.into_iter().map(|c| c.name).collect())
}

/// The curated Parquet table of a dataset with the columns of one object's footer.
pub fn curated_table(
    dataset: &str,
    location: &str,
    columns: Vec<Column>,
    projection: BTreeMap<String, String>,
) -> TableSpec {
    let mut parameters = params(&[
        ("classification", "parquet"),
        ("typeOfData", "file"),
        ("EXTERNAL", "TRUE"),
        ("sluice.zone", "curated"),
    ]);
    parameters.extend(projection);
    TableSpec {
        name: Zone::Curated.table_name(dataset),
        storage: StorageSpec {
            location: location.to_string(),
            input_format: PARQUET_INPUT_FORMAT.into(),
            output_format: PARQUET_OUTPUT_FORMAT.into(),
            serde_library: PARQUET_SERDE.into(),
            serde_parameters: params(&[("serialization.format", "1")]),
            columns,
            compressed: false,
        },
        partition_keys: partition_keys(),
        parameters,
    }
}

/// The raw JSON table of a dataset: `_sluice` metadata, then the configured fields (renamed
/// columns are mapped back to their JSON keys; keys are matched case-sensitively).
pub fn raw_table(
    dataset: &Dataset,
    location: &str,
    projection: BTreeMap<String, String>,
) -> TableSpec {
    let mut columns = vec![Column::new(META_KEY, RAW_META_TYPE)];
    let mut serde_parameters = params(&[
        ("case.insensitive", "FALSE"),
        ("ignore.malformed.json", "FALSE"),
    ]);
    // Nested fields (`payment.method`) have no column here: the JSON SerDe maps top-level keys
    // only. They are columns of the curated table.
    for f in dataset.fields.iter().filter(|f| !f.name.contains('.')) {
        columns.push(Column::new(f.column.clone(), raw_field_type(f.ty)));
        if f.column != f.name {
            serde_parameters.insert(format!("mapping.{}", f.column), f.name.clone());
        }
    }
    let mut parameters = params(&[
        ("classification", "json"),
        ("compressionType", "gzip"),
        ("typeOfData", "file"),
        ("EXTERNAL", "TRUE"),
        ("sluice.zone", "raw"),
    ]);
    parameters.extend(projection);
    TableSpec {
        name: Zone::Raw.table_name(&dataset.name),
        storage: StorageSpec {
            location: location.to_string(),
            input_format: TEXT_INPUT_FORMAT.into(),
            output_format: TEXT_OUTPUT_FORMAT.into(),
            serde_library: OPENX_JSON_SERDE.into(),
            serde_parameters,
            columns,
            compressed: true,
        },
        partition_keys: partition_keys(),
        parameters,
    }
}

/// A partition's storage: the table's, at the partition's location.
pub fn partition_storage(table: &StorageSpec, p: &Partition) -> StorageSpec {
    StorageSpec {
        location: partition_location(&table.location, p),
        ..table.clone()
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::config::PipelineConfig;

    use super::*;

    fn cfg() -> PipelineConfig {
        PipelineConfig::from_toml(
            r#"
            [pipeline]
            routing_field = "type"
            [[dataset]]
            name = "signups"
            fields = [
              { name = "event_id", type = "string", required = true },
              { name = "ts", type = "timestamp", required = true },
              { name = "userId", column = "user_id", type = "string" },
              { name = "n", type = "int" },
            ]
            "#,
        )
        .expect("config")
    }

    #[test]
    fn raw_table_from_config() {
        let cfg = cfg();
        let ds = cfg.dataset("signups").expect("dataset");
        let loc = table_location("b", "raw/", "signups");
        assert_eq!(loc, "s3://b/raw/signups/");
        let t = raw_table(ds, &loc, projection_parameters(false, &loc, 0));
        assert_eq!(t.name, "signups_raw");
        assert_eq!(t.storage.serde_library, OPENX_JSON_SERDE);
        let cols: Vec<(&str, &str)> = t
            .storage
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty.as_str()))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("_sluice", RAW_META_TYPE),
                ("event_id", "string"),
                ("ts", "string"),
                ("user_id", "string"),
                ("n", "bigint"),
            ]
        );
        assert_eq!(
            t.storage
                .serde_parameters
                .get("mapping.user_id")
                .map(String::as_str),
            Some("userId")
        );
        assert_eq!(t.parameters["compressionType"], "gzip");
        assert_eq!(t.parameters["projection.enabled"], "false");
        assert_eq!(
            t.partition_keys,
            vec![Column::new("dt", "string"), Column::new("hr", "string")]
        );
    }

    #[test]
    fn curated_table_and_partitions() {
        let loc = table_location("b", "curated/", "orders");
        let (cols, dropped) = without_partition_keys(vec![
            Column::new("id", "string"),
            Column::new("DT", "string"),
        ]);
        assert_eq!(dropped, vec!["DT"]);
        let t = curated_table("orders", &loc, cols, projection_parameters(false, &loc, 0));
        assert_eq!(t.name, "orders");
        assert_eq!(t.storage.serde_library, PARQUET_SERDE);
        assert_eq!(t.storage.columns, vec![Column::new("id", "string")]);
        assert_eq!(t.parameters["classification"], "parquet");
        let p = Partition::parse("2025-11-22", "07").expect("partition");
        let ps = partition_storage(&t.storage, &p);
        assert_eq!(ps.location, "s3://b/curated/orders/dt=2025-11-22/hr=07/");
        assert_eq!(ps.serde_library, t.storage.serde_library);
        assert_eq!(
            partition_location("s3://b/x", &p),
            "s3://b/x/dt=2025-11-22/hr=07/"
        );
        assert_eq!(partition_values(&p), vec!["2025-11-22", "07"]);
    }

    #[test]
    fn projection_properties() {
        let p = projection_parameters(true, "s3://b/curated/orders/", 86_400);
        assert_eq!(p["projection.enabled"], "true");
        assert_eq!(p["projection.dt.range"], "2000-01-01,NOW+1DAYS");
        assert_eq!(p["projection.hr.digits"], "2");
        assert_eq!(
            p["storage.location.template"],
            "s3://b/curated/orders/dt=${dt}/hr=${hr}/"
        );
        assert_eq!(
            projection_parameters(true, "s3://b/x/", 0)["projection.dt.range"],
            "2000-01-01,NOW"
        );
        let off = projection_parameters(false, "s3://b/x/", 0);
        assert_eq!(off.len(), 1);
        let mut existing = p.clone();
        existing.insert("other".into(), "x".into());
        assert!(parameters_satisfied(&existing, &p));
        assert!(!parameters_satisfied(&existing, &off));
    }
}
