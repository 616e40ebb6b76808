//! `sluice check`: a pipeline config validated offline (every error names the dataset and
//! field, as at cold start), then, on request, compared with the live tables it would change:
//! the Glue curated tables and the PostgreSQL tables. For each it lists the new columns, the
//! widenings the functions would apply, and the changes they would refuse (a type that does not
//! widen, other partition keys, another record key), so a deploy can be gated on it.
//!
//! The rules are the functions' own: glue-catalog's [`glue_catalog::hive::evolve`] over the
//! columns s3-transform's Parquet schema gives, and s3-transform's
//! [`s3_transform::warehouse::column_change`] over PostgreSQL's `format_type` names.

use std::collections::BTreeMap;

use glue_catalog::catalog::{Catalog, TableSpec};
use glue_catalog::hive::{columns_of, evolve};
use glue_catalog::tables::{partition_keys, without_partition_keys, Zone};
use s3_transform::parquet_out::arrow_schema;
use s3_transform::sql::ident;
use s3_transform::transform::{columns, KEY_COLUMN};
use s3_transform::warehouse::{canonical_type, column_change, ColumnChange};
use serde::Serialize;
use sluice_core::config::{Dataset, FieldType, PipelineConfig};

/// What the config would do to one live table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    /// `glue` or `postgres`.
    pub store: String,
    /// `<database>.<table>` or `<schema>.<table>`.
    pub table: String,
    /// The table does not exist yet: the functions create it.
    pub created: bool,
    /// Columns the functions would add.
    pub added: Vec<String>,
    /// Columns the functions would widen, as `column: old -> new`.
    pub widened: Vec<String>,
    /// Changes the functions would refuse (the load or the catalogue would fail).
    pub refused: Vec<String>,
}

/// The outcome of `sluice check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The config's location.
    pub config: String,
    /// The datasets it declares.
    pub datasets: Vec<String>,
    /// One entry per live table compared.
    pub tables: Vec<TableCheck>,
}

impl CheckReport {
    /// Changes the functions would refuse, across tables.
    pub fn refused(&self) -> usize {
        self.tables.iter().map(|t| t.refused.len()).sum()
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}: valid, {} dataset(s): {}\n",
            self.config,
            self.datasets.len(),
            self.datasets.join(", ")
        );
        for t in &self.tables {
            let mut parts = Vec::new();
            if t.created {
                parts.push("will be created".to_string());
            }
            if !t.added.is_empty() {
                parts.push(format!("new columns: {}", t.added.join(", ")));
            }
            if !t.widened.is_empty() {
                parts.push(format!("widened: {}", t.widened.join(", ")));
            }
            if parts.is_empty() && t.refused.is_empty() {
                parts.push("up to date".into());
            }
            out.push_str(&format!(
                "{:<8} {}: {}\n",
                t.store,
                t.table,
                parts.join("; ")
            ));
            for r in &t.refused {
                out.push_str(&format!("{:<8} {}: REFUSED: {r}\n", t.store, t.table));
            }
        }
        if self.refused() > 0 {
            out.push_str(&format!(
                "{} change(s) would be refused: fix the config or the tables before deploying it\n",
                self.refused()
            ));
        }
        out
    }
}

/// What the curated Glue table of `ds` would become, against the table as it is (`None`: absent).
pub fn glue_check(database: &str, ds: &Dataset, table: Option<&TableSpec>) -> TableCheck {
    let name = Zone::Curated.table_name(&ds.name);
    let mut out = TableCheck {
        store: "glue".into(),
        table: format!("{database}.{name}"),
        ..TableCheck::default()
    };
    let wanted = match columns_of(&arrow_schema(&columns(ds))) {
        Ok(c) => without_partition_keys(c).0,
        Err((column, reason)) => {
            out.refused.push(format!("column {column}: {reason}"));
            return out;
        }
    };
    let Some(table) = table else {
        out.created = true;
        out.added = wanted.iter().map(|c| c.name.clone()).collect();
        return out;
    };
    let keys: Vec<&str> = table
        .partition_keys
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let want_keys = partition_keys();
    let want: Vec<&str> = want_keys.iter().map(|c| c.name.as_str()).collect();
    if keys != want {
        out.refused.push(format!(
            "partition keys are ({}) but sluice writes ({})",
            keys.join(", "),
            want.join(", ")
        ));
    }
    // Column by column, so every conflict is listed, not only the first.
    for c in &wanted {
        match evolve(&table.storage.columns, std::slice::from_ref(c)) {
            Ok(e) => {
                out.added.extend(e.added);
                out.widened.extend(
                    e.widened
                        .into_iter()
                        .map(|(n, old, new)| format!("{n}: {old} -> {new}")),
                );
            }
            Err(conflict) => out.refused.push(format!(
                "column {} is {} in Glue but the config makes it {}",
                conflict.column, conflict.old, conflict.new
            )),
        }
    }
    out
}

/// What the PostgreSQL table of `ds` would become: `existing` maps its columns to their
/// `format_type` names (`None`: absent); `keys` are sampled `(_sluice_key, key column as text)`
/// pairs of its rows, if the dataset has a key field that is a column of the table.
pub fn postgres_check(
    schema: &str,
    ds: &Dataset,
    existing: Option<&BTreeMap<String, String>>,
    keys: &[(String, Option<String>)],
) -> TableCheck {
    let mut out = TableCheck {
        store: "postgres".into(),
        table: format!("{schema}.{}", ds.name),
        ..TableCheck::default()
    };
    let cols = columns(ds);
    let Some(existing) = existing else {
        out.created = true;
        out.added = cols.iter().map(|c| c.name.clone()).collect();
        return out;
    };
    for c in &cols {
        match existing.get(&c.name) {
            None => out.added.push(c.name.clone()),
            Some(old) => match column_change(old, c.ty) {
                ColumnChange::Keep => {}
                ColumnChange::Widen => {
                    out.widened
                        .push(format!("{}: {old} -> {}", c.name, canonical_type(c.ty)))
                }
                ColumnChange::Conflict => out.refused.push(format!(
                    "column {} is {old} in PostgreSQL but the config declares {}",
                    c.name,
                    canonical_type(c.ty)
                )),
            },
        }
    }
    if let Some(key) = key_column(ds) {
        let differs = keys
            .iter()
            .filter(|(k, v)| v.as_deref() != Some(k.as_str()))
            .count();
        if differs > 0 {
            out.refused.push(format!(
                "the record key changed: {differs} of {} sampled rows have a {KEY_COLUMN} that is not their {key}; rows would be loaded again under new keys (duplicates)",
                keys.len()
            ));
        }
    }
    out
}

/// The column of the dataset's key field, if it has one whose PostgreSQL text is the key's own
/// text (a string or an integer column; other types print differently in PostgreSQL, so a
/// sampled mismatch would not mean a changed key).
pub fn key_column(ds: &Dataset) -> Option<String> {
    let k = ds.key?;
    columns(ds)
        .into_iter()
        .find(|c| c.field == k && matches!(c.ty, FieldType::String | FieldType::Int))
        .map(|c| c.name)
}

/// Rows sampled for the key check.
pub const KEY_SAMPLE: i64 = 100;

/// Runs the check: `cfg` is already valid (loading it is the offline check); `catalog` and
/// `pg` are the live stores to compare with, when asked for.
pub async fn check(
    location: &str,
    cfg: &PipelineConfig,
    catalog: Option<&dyn Catalog>,
    pg: Option<&tokio_postgres::Client>,
) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport {
        config: location.to_string(),
        datasets: cfg.datasets.iter().map(|d| d.name.clone()).collect(),
        tables: Vec::new(),
    };
    for ds in &cfg.datasets {
        if let Some(catalog) = catalog {
            let db = &cfg.catalog.database;
            let name = Zone::Curated.table_name(&ds.name);
            let table = catalog
                .get_table(db, &name)
                .await
                .map_err(|e| anyhow::anyhow!("glue get_table {db}.{name}: {e}"))?;
            report
                .tables
                .push(glue_check(db, ds, table.as_ref().map(|t| &t.spec)));
        }
        if let Some(pg) = pg {
            let schema = &cfg.warehouse.schema;
            let (existing, keys) = postgres_table(pg, schema, ds).await?;
            report
                .tables
                .push(postgres_check(schema, ds, existing.as_ref(), &keys));
        }
    }
    Ok(report)
}

/// The table's columns (`None` if it does not exist) and a sample of its keys.
async fn postgres_table(
    pg: &tokio_postgres::Client,
    schema: &str,
    ds: &Dataset,
) -> anyhow::Result<(
    Option<BTreeMap<String, String>>,
    Vec<(String, Option<String>)>,
)> {
    let qualified = format!("{}.{}", ident(schema), ident(&ds.name));
    let rows = pg
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&qualified],
        )
        .await?;
    if rows.is_empty() {
        return Ok((None, Vec::new()));
    }
    let existing: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    let keys = match key_column(ds).filter(|k| existing.contains_key(k)) {
        Some(k) => pg
            .query(
                &format!(
                    "SELECT {}, {}::text FROM {qualified} LIMIT {KEY_SAMPLE}",
                    ident(KEY_COLUMN),
                    ident(&k)
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
            .collect(),
        None => Vec::new(),
    };
    Ok((Some(existing), keys))
}

/// Loads `location` (the offline check: an invalid config is the error), connects to what is
/// asked for and runs [`check`].
pub async fn run_check(
    location: &str,
    glue: bool,
    postgres: Option<&str>,
) -> anyhow::Result<CheckReport> {
    let needs_aws = glue || location.starts_with("s3://");
    let sdk = if needs_aws {
        Some(sluice_core::aws::sdk_config().await)
    } else {
        None
    };
    let cfg = match &sdk {
        Some(sdk) => {
            let s3 = sluice_core::aws::s3_client(sdk)?;
            sluice_core::aws::load_pipeline_config(location, &s3).await?
        }
        None => PipelineConfig::from_path(location)?,
    };
    let catalog = match (&sdk, glue) {
        (Some(sdk), true) => Some(glue_catalog::GlueCatalog::new(aws_sdk_glue::Client::new(
            sdk,
        ))),
        _ => None,
    };
    let pg = match postgres {
        Some(url) => Some(connect(url).await?),
        None => None,
    };
    check(
        location,
        &cfg,
        catalog.as_ref().map(|c| c as &dyn Catalog),
        pg.as_ref(),
    )
    .await
}

/// A PostgreSQL connection: TLS verified against the system roots unless `sslmode=disable`.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow::anyhow!("--postgres: not a connection string: {e}"))?;
    let client = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
    } else {
        let tls = s3_transform::config::tls_connector(None, true)?;
        let (client, conn) = config.connect(tls).await?;
        tokio::spawn(conn);
        client
    };
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glue_catalog::hive::Column;

    const CFG: &str = r#"
        [pipeline]
        routing_field = "type"
        [[dataset]]
        name = "orders"
        route = "order"
        key = "order_id"
        fields = [
          { name = "order_id", type = "string", required = true },
          { name = "qty", type = "int" },
          { name = "note", type = "string" },
        ]
    "#;

    fn ds() -> Dataset {
        PipelineConfig::from_toml(CFG).expect("config").datasets[0].clone()
    }

    #[test]
    fn glue_lists_new_widened_and_refused_columns() {
        let d = ds();
        let created = glue_check("lake", &d, None);
        assert!(created.created && created.refused.is_empty());
        let mut table = TableSpec {
            partition_keys: partition_keys(),
            ..TableSpec::default()
        };
        table.storage.columns = vec![
            Column::new("order_id", "string"),
            Column::new("qty", "int"),
            Column::new("note", "bigint"),
        ];
        let c = glue_check("lake", &d, Some(&table));
        assert_eq!(c.widened, ["qty: int -> bigint"]);
        assert_eq!(c.refused.len(), 1, "{c:?}");
        assert!(c.refused[0].contains("note is bigint"), "{c:?}");
        assert!(c.added.iter().any(|a| a == KEY_COLUMN), "{c:?}");
        table.partition_keys.pop();
        assert_eq!(glue_check("lake", &d, Some(&table)).refused.len(), 2);
    }

    #[test]
    fn postgres_lists_new_widened_refused_columns_and_a_changed_key() {
        let d = ds();
        let existing: BTreeMap<String, String> =
            [("order_id", "text"), ("qty", "integer"), ("note", "bigint")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        let same = [("o-1".to_string(), Some("o-1".to_string()))];
        let c = postgres_check("s", &d, Some(&existing), &same);
        assert_eq!(c.widened, ["qty: integer -> bigint"]);
        assert_eq!(c.refused.len(), 1);
        assert!(c.added.is_empty(), "{c:?}");
        let rekeyed = [("shard#1".to_string(), Some("o-1".to_string()))];
        let c = postgres_check("s", &d, Some(&existing), &rekeyed);
        assert!(
            c.refused.iter().any(|r| r.contains("record key changed")),
            "{c:?}"
        );
        let report = CheckReport {
            config: "p.toml".into(),
            datasets: vec!["orders".into()],
            tables: vec![c],
        };
        assert_eq!(report.refused(), 2);
        assert!(report.text().contains("REFUSED"), "{}", report.text());
    }
}
