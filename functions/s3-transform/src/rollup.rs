//! Rollups in PostgreSQL: each declared rollup of a dataset (`sluice_core::config::Rollup`) is
//! a table `<schema>.<dataset>_<rollup>` with one row per time bucket and dimension values.
//!
//! A load recomputes exactly the buckets it touched, in its own transaction, from the
//! de-duplicated table: the buckets of the rows it brings and, for keys it replaces, the
//! buckets their stored versions were in (an update can move a record to another hour). The
//! recomputation runs under a per-rollup advisory lock taken after the merge, so of two
//! concurrent loads the later one sees the other's committed rows: the rollup always equals a
//! `GROUP BY` over the table, whatever the order of delivery, retries or replays. A rollup whose
//! declaration changed (its signature is the table's comment) is dropped and rebuilt in full.

use sluice_core::config::{Dataset, Grain, MeasureFn};
use sluice_core::schema::{micros_to_datetime, Typed};
use tokio_postgres::Transaction;

use crate::error::TransformError;
use crate::sql::{ident, pg_type};
use crate::transform::{Column, Row};

/// One rollup resolved to SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupSql {
    /// Unquoted table name, `<dataset>_<rollup>`.
    pub table: String,
    /// Unquoted base table name (the dataset's).
    base_table: String,
    grain: Grain,
    /// Quoted event-time column of the base table.
    time: String,
    /// Position of the event-time column in the load's columns.
    time_pos: usize,
    /// Quoted dimension columns with their SQL types.
    dims: Vec<(String, String)>,
    /// Quoted measure names, their aggregate expressions over the base table, SQL types.
    measures: Vec<(String, String, String)>,
}

/// The rollups of `ds`, resolved against the load's columns `cols` (dropped fields are not
/// columns; validation keeps rollups off them).
pub fn rollups_of(ds: &Dataset, cols: &[Column]) -> Vec<RollupSql> {
    let col_of = |field: usize| cols.iter().position(|c| c.field == field);
    let Some(time_field) = ds.event_time else {
        return Vec::new();
    };
    let Some(time_pos) = col_of(time_field) else {
        return Vec::new();
    };
    ds.rollups
        .iter()
        .filter_map(|r| {
            let dims = r
                .dimensions
                .iter()
                .map(|&f| {
                    let c = &cols[col_of(f)?];
                    Some((ident(&c.name), pg_type(c.ty).0))
                })
                .collect::<Option<Vec<_>>>()?;
            let measures = r
                .measures
                .iter()
                .map(|m| {
                    let col = match m.field {
                        Some(f) => Some(&cols[col_of(f)?]),
                        None => None,
                    };
                    let (expr, ty) = match (m.func, col) {
                        (MeasureFn::Count, None) => ("count(*)".to_string(), "bigint".to_string()),
                        (MeasureFn::Count, Some(c)) => {
                            (format!("count(t.{})", ident(&c.name)), "bigint".to_string())
                        }
                        (MeasureFn::CountDistinct, Some(c)) => (
                            format!("count(DISTINCT t.{})", ident(&c.name)),
                            "bigint".to_string(),
                        ),
                        (MeasureFn::Sum, Some(c)) => {
                            let ty = match c.ty {
                                sluice_core::config::FieldType::Float => "double precision",
                                // Sums of int and decimal are exact: numeric.
                                _ => "numeric",
                            };
                            (format!("sum(t.{})", ident(&c.name)), ty.to_string())
                        }
                        (MeasureFn::Min, Some(c)) => {
                            (format!("min(t.{})", ident(&c.name)), pg_type(c.ty).0)
                        }
                        (MeasureFn::Max, Some(c)) => {
                            (format!("max(t.{})", ident(&c.name)), pg_type(c.ty).0)
                        }
                        (_, None) => return None,
                    };
                    Some((ident(&m.name), expr, ty))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(RollupSql {
                table: format!("{}_{}", ds.name, r.name),
                base_table: ds.name.clone(),
                grain: r.grain,
                time: ident(&cols[time_pos].name),
                time_pos,
                dims,
                measures,
            })
        })
        .collect()
}

impl RollupSql {
    /// What the table's comment records: a changed declaration rebuilds the table.
    pub fn signature(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|(n, t)| format!("{n} {t}")).collect();
        let measures: Vec<String> = self
            .measures
            .iter()
            .map(|(n, e, t)| format!("{n}={e}:{t}"))
            .collect();
        format!(
            "sluice rollup v1; grain {}; time {}; dims [{}]; measures [{}]",
            self.grain.as_str(),
            self.time,
            dims.join(", "),
            measures.join(", ")
        )
    }

    fn qualified(&self, schema: &str) -> String {
        format!("{}.{}", ident(schema), ident(&self.table))
    }

    /// `SELECT bucket, dims, measures` over `base`, restricted by `filter` (SQL after WHERE).
    fn select(&self, base: &str, bucket: &str, join: &str) -> String {
        let dims: Vec<String> = self.dims.iter().map(|(n, _)| format!("t.{n}")).collect();
        let mut out: Vec<String> = vec![bucket.to_string()];
        out.extend(dims.iter().cloned());
        out.extend(self.measures.iter().map(|(_, e, _)| e.clone()));
        let mut group = vec!["1".to_string()];
        group.extend(dims);
        format!(
            "SELECT {} FROM {base} t {join} GROUP BY {}",
            out.join(", "),
            group.join(", ")
        )
    }

    fn columns(&self) -> String {
        let mut c = vec!["bucket".to_string()];
        c.extend(self.dims.iter().map(|(n, _)| n.clone()));
        c.extend(self.measures.iter().map(|(n, _, _)| n.clone()));
        c.join(", ")
    }

    /// Creates the table if missing, or rebuilds it when its declaration changed; either way
    /// filled from the whole base table. Runs inside the base table's DDL transaction.
    pub async fn ensure(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        base: &str,
    ) -> Result<(), TransformError> {
        let pe = |op, e: tokio_postgres::Error| TransformError::postgres(op, &self.table, &e);
        let qualified = self.qualified(schema);
        let sig = self.signature();
        let current: Option<Option<String>> = tx
            .query_opt(
                "SELECT obj_description(to_regclass($1), 'pg_class') WHERE to_regclass($1) IS NOT NULL",
                &[&qualified],
            )
            .await
            .map_err(|e| pe("inspect rollup", e))?
            .map(|r| r.get(0));
        if current.as_ref().and_then(|c| c.as_deref()) == Some(sig.as_str()) {
            return Ok(());
        }
        let mut defs = vec!["bucket timestamptz NOT NULL".to_string()];
        defs.extend(self.dims.iter().map(|(n, t)| format!("{n} {t}")));
        defs.extend(self.measures.iter().map(|(n, _, t)| format!("{n} {t}")));
        let bucket = format!(
            "date_trunc('{}', t.{}, 'UTC')",
            self.grain.as_str(),
            self.time
        );
        let index = ident(&format!("{}_bucket", self.table));
        let base_index = ident(&format!("{}_sluice_time", self.base_table));
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {qualified}; \
             CREATE TABLE {qualified} ({defs}); \
             CREATE INDEX {index} ON {qualified} (bucket); \
             CREATE INDEX IF NOT EXISTS {base_index} ON {base} ({time}); \
             COMMENT ON TABLE {qualified} IS {sig}; \
             INSERT INTO {qualified} ({cols}) {select}",
            defs = defs.join(", "),
            time = self.time,
            sig = quote_literal(&sig),
            cols = self.columns(),
            select = self.select(base, &bucket, &format!("WHERE t.{} IS NOT NULL", self.time)),
        ))
        .await
        .map_err(|e| pe("build rollup", e))?;
        tracing::info!(rollup = %self.table, rebuilt = current.is_some(), "rollup built");
        Ok(())
    }

    /// The buckets of stored rows whose keys are in the staging table `stage` (the versions a
    /// merge may replace).
    pub async fn stored_buckets(
        &self,
        tx: &Transaction<'_>,
        base: &str,
        stage: &str,
    ) -> Result<Vec<chrono::DateTime<chrono::Utc>>, TransformError> {
        let sql = format!(
            "SELECT DISTINCT date_trunc('{g}', t.{time}, 'UTC') FROM {base} t \
             JOIN {stage} s USING (_sluice_key) WHERE t.{time} IS NOT NULL",
            g = self.grain.as_str(),
            time = self.time
        );
        Ok(tx
            .query(&sql, &[])
            .await
            .map_err(|e| TransformError::postgres("rollup buckets", &self.table, &e))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// The buckets of the rows a load brings.
    pub fn row_buckets(&self, rows: &[&Row]) -> Vec<chrono::DateTime<chrono::Utc>> {
        let mut b: Vec<i64> = rows
            .iter()
            .filter_map(|r| match r.values.get(self.time_pos) {
                Some(Typed::Timestamp(t)) => Some(self.grain.bucket_of(*t)),
                _ => None,
            })
            .collect();
        b.sort_unstable();
        b.dedup();
        b.into_iter().filter_map(micros_to_datetime).collect()
    }

    /// Recomputes `buckets` from the base table, serialised with other loads of this rollup.
    pub async fn refresh(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        base: &str,
        mut buckets: Vec<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), TransformError> {
        buckets.sort_unstable();
        buckets.dedup();
        if buckets.is_empty() {
            return Ok(());
        }
        let pe = |op, e: tokio_postgres::Error| TransformError::postgres(op, &self.table, &e);
        let qualified = self.qualified(schema);
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&qualified])
            .await
            .map_err(|e| pe("lock rollup", e))?;
        tx.execute(
            &format!("DELETE FROM {qualified} WHERE bucket = ANY($1)"),
            &[&buckets],
        )
        .await
        .map_err(|e| pe("refresh rollup", e))?;
        let join = format!(
            "JOIN unnest($1::timestamptz[]) AS u(b) ON t.{time} >= u.b AND t.{time} < u.b + interval '1 {g}'",
            time = self.time,
            g = self.grain.as_str()
        );
        let sql = format!(
            "INSERT INTO {qualified} ({}) {}",
            self.columns(),
            self.select(base, "u.b", &join)
        );
        tx.execute(&sql, &[&buckets])
            .await
            .map_err(|e| pe("refresh rollup", e))?;
        Ok(())
    }
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
