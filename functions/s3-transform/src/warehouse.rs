//! The PostgreSQL load: tables created from the dataset schema, additive `ADD COLUMN` for new
//! config fields, and an idempotent merge (binary COPY into a staging table, then
//! `INSERT ... ON CONFLICT (_sluice_key) DO UPDATE ... WHERE` the incoming row wins; a first
//! load with only new keys is one COPY straight into the table under a savepoint).
//!
//! The incoming row replaces the stored one only when it wins by the winner rule
//! ([`crate::transform`]): a greater `(_sluice_version, _sluice_source)`, compared bytewise
//! (`COLLATE "C"`); with both equal (the same record again) only when a value differs, e.g.
//! after a new column was configured. So a repeated S3 event adds and rewrites nothing, and a
//! late redelivery of an older object never brings an old version back.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::pin_mut;
use sluice_core::config::FieldType;
use sluice_core::schema::{micros_to_datetime, Typed};
use tokio::sync::Mutex;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Transaction};

use crate::error::TransformError;
use crate::rollup::RollupSql;
use crate::sql::{ident, pg_type};
use crate::transform::{Column, Row, KEY_COLUMN, SOURCE_COLUMN, VERSION_COLUMN};

/// What one load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub inserted: u64,
    pub updated: u64,
}

/// The relational warehouse port.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// Loads rows of `table` idempotently (merge on `_sluice_key`).
    async fn load(
        &self,
        table: &str,
        cols: &[Column],
        rows: &[&Row],
        source: &str,
        rollups: &[RollupSql],
    ) -> Result<LoadStats, TransformError>;
}

/// The name PostgreSQL's `format_type` gives the column type of a schema type.
pub fn canonical_type(ty: FieldType) -> String {
    match ty {
        FieldType::Timestamp => "timestamp with time zone".into(),
        other => pg_type(other).0,
    }
}

/// What to do with an existing column of type `existing` (as `format_type` spells it) that
/// the config declares as `ty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnChange {
    /// The types agree.
    Keep,
    /// The column is widened to the config's type in place (as Glue widens).
    Widen,
    /// Anything else: loading would put one type into a column of another.
    Conflict,
}

/// The loader's rule for an existing column (also what `sluice check` reports).
pub fn column_change(existing: &str, ty: FieldType) -> ColumnChange {
    let want = canonical_type(ty);
    if existing == want {
        return ColumnChange::Keep;
    }
    let widens = match ty {
        FieldType::Int => matches!(existing, "smallint" | "integer"),
        // numeric(p,s) → numeric(p',s) with p' > p keeps every value.
        FieldType::Decimal { precision, scale } => existing
            .strip_prefix("numeric(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.split_once(','))
            .and_then(|(p, s)| Some((p.trim().parse::<u8>().ok()?, s.trim().parse::<u8>().ok()?)))
            .is_some_and(|(p, s)| s == scale && p < precision),
        FieldType::Float => existing == "real",
        FieldType::String => existing.starts_with("character varying"),
        _ => false,
    };
    if widens {
        ColumnChange::Widen
    } else {
        ColumnChange::Conflict
    }
}

/// Where the database user and password come from when they can change: a secret that is
/// rotated. Read again when PostgreSQL refuses the credentials a connection was opened with.
#[async_trait]
pub trait Credentials: Send + Sync {
    /// The current user name and password.
    async fn current(&self) -> Result<(String, String), TransformError>;
}

/// PostgreSQL over tokio-postgres, with one connection per container (re-opened after errors,
/// with the credentials read again after an authentication failure).
pub struct Postgres {
    config: std::sync::RwLock<tokio_postgres::Config>,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    schema: String,
    client: Mutex<Option<Client>>,
    ensured: Mutex<HashSet<String>>,
    credentials: Option<Box<dyn Credentials>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Whether PostgreSQL refused the user name or password.
fn is_auth_failure(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    })
}

impl Postgres {
    /// A loader for `schema`; `tls` is the rustls connector used when the config's SSL mode
    /// is not `disable`.
    pub fn new(
        config: tokio_postgres::Config,
        tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
        schema: &str,
    ) -> Self {
        Postgres {
            config: std::sync::RwLock::new(config),
            tls,
            schema: schema.to_string(),
            client: Mutex::new(None),
            ensured: Mutex::new(HashSet::new()),
            credentials: None,
        }
    }

    /// Reads the credentials again from `source` when PostgreSQL refuses them.
    pub fn with_credentials(mut self, source: Option<Box<dyn Credentials>>) -> Self {
        self.credentials = source;
        self
    }

    fn config(&self) -> tokio_postgres::Config {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn connect(&self) -> Result<Client, TransformError> {
        let err = |e: tokio_postgres::Error| TransformError::postgres("connect", &self.schema, &e);
        match (self.open(self.config()).await, &self.credentials) {
            (Err(e), Some(source)) if is_auth_failure(&e) => {
                tracing::warn!(
                    schema = %self.schema,
                    "the database refused the credentials; reading them again"
                );
                let (user, password) = source.current().await?;
                let fresh = {
                    let mut c = match self.config.write() {
                        Ok(c) => c,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    c.user(&user).password(password);
                    c.clone()
                };
                self.open(fresh).await.map_err(err)
            }
            (r, _) => r.map_err(err),
        }
    }

    async fn open(&self, config: tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
        let client = match (&self.tls, config.get_ssl_mode()) {
            (Some(tls), mode) if mode != SslMode::Disable => {
                let (client, conn) = config.connect(tls.clone()).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "postgres connection closed");
                    }
                });
                client
            }
            _ => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "postgres connection closed");
                    }
                });
                client
            }
        };
        Ok(client)
    }

    async fn ensure_table(
        &self,
        client: &mut Client,
        table: &str,
        cols: &[Column],
        rollups: &[RollupSql],
    ) -> Result<(), TransformError> {
        let sig = format!(
            "{table}:{};{}",
            cols.iter()
                .map(|c| format!("{}={}", c.name, pg_type(c.ty).0))
                .collect::<Vec<_>>()
                .join(","),
            rollups
                .iter()
                .map(RollupSql::signature)
                .collect::<Vec<_>>()
                .join(";")
        );
        if self.ensured.lock().await.contains(&sig) {
            return Ok(());
        }
        let pe = |op, e: tokio_postgres::Error| TransformError::postgres(op, table, &e);
        let qualified = format!("{}.{}", ident(&self.schema), ident(table));
        let tx = client.transaction().await.map_err(|e| pe("begin", e))?;
        // Serialise DDL for this table across concurrent invocations.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&qualified])
            .await
            .map_err(|e| pe("lock", e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            ident(&self.schema)
        ))
        .await
        .map_err(|e| pe("create schema", e))?;
        let mut defs = vec![format!("{} text PRIMARY KEY", ident(KEY_COLUMN))];
        defs.extend(
            cols.iter()
                .map(|c| format!("{} {}", ident(&c.name), pg_type(c.ty).0)),
        );
        defs.push(format!("{} text NOT NULL", ident(SOURCE_COLUMN)));
        defs.push(format!("{} text", ident(VERSION_COLUMN)));
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {qualified} ({})",
            defs.join(", ")
        ))
        .await
        .map_err(|e| pe("create table", e))?;
        // Tables created before the winner rule: their rows rank lowest until rewritten.
        tx.batch_execute(&format!(
            "ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} text",
            ident(VERSION_COLUMN)
        ))
        .await
        .map_err(|e| pe("add column", e))?;
        let existing: HashMap<String, String> = tx
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&qualified],
            )
            .await
            .map_err(|e| pe("inspect columns", e))?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        // Existing columns first: a conflict fails before anything is changed.
        let mut widen = Vec::new();
        for c in cols {
            let Some(old) = existing.get(&c.name) else {
                continue;
            };
            match column_change(old, c.ty) {
                ColumnChange::Keep => {}
                ColumnChange::Widen => widen.push((c, old.clone())),
                ColumnChange::Conflict => {
                    return Err(TransformError::SchemaConflict {
                        table: format!("{}.{table}", self.schema),
                        column: c.name.clone(),
                        old: old.clone(),
                        new: canonical_type(c.ty).to_string(),
                    })
                }
            }
        }
        for (c, old) in widen {
            let new = pg_type(c.ty).0;
            tx.batch_execute(&format!(
                "ALTER TABLE {qualified} ALTER COLUMN {} TYPE {new}",
                ident(&c.name)
            ))
            .await
            .map_err(|e| pe("widen column", e))?;
            tracing::info!(table, column = %c.name, old = %old, new, "widened column");
        }
        for c in cols.iter().filter(|c| !existing.contains_key(&c.name)) {
            tx.batch_execute(&format!(
                "ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} {}",
                ident(&c.name),
                pg_type(c.ty).0
            ))
            .await
            .map_err(|e| pe("add column", e))?;
            tracing::info!(table, column = %c.name, "added column");
        }
        for r in rollups {
            r.ensure(&tx, &self.schema, &qualified).await?;
        }
        tx.commit().await.map_err(|e| pe("commit ddl", e))?;
        self.ensured.lock().await.insert(sig);
        Ok(())
    }

    async fn merge(
        &self,
        client: &mut Client,
        table: &str,
        cols: &[Column],
        rows: &[&Row],
        source: &str,
        rollups: &[RollupSql],
    ) -> Result<LoadStats, TransformError> {
        let pe = |op, e: tokio_postgres::Error| TransformError::postgres(op, table, &e);
        let qualified = format!("{}.{}", ident(&self.schema), ident(table));
        let columns = copy_columns(cols);
        let names: Vec<String> = columns.iter().map(|(n, _, _)| n.clone()).collect();
        let types: Vec<Type> = columns.iter().map(|(_, _, t)| t.clone()).collect();
        let list = names.join(", ");
        let defs: Vec<String> = columns
            .iter()
            .map(|(n, sql, _)| format!("{n} {sql}"))
            .collect();

        let mut tx = client.transaction().await.map_err(|e| pe("begin", e))?;
        // Fast path: a first load (the common case) is all new keys, so COPY straight into the
        // table under a savepoint; if any key already exists the COPY fails as a whole with a
        // unique violation, the savepoint is rolled back and the staged merge below runs.
        let direct = format!("COPY {qualified} ({list}) FROM STDIN (FORMAT binary)");
        let sp = tx
            .savepoint("sluice_direct")
            .await
            .map_err(|e| pe("savepoint", e))?;
        match copy_rows(&sp, &direct, &types, cols, rows, source).await {
            Ok(()) => {
                sp.commit().await.map_err(|e| pe("release savepoint", e))?;
                for r in rollups {
                    r.refresh(&tx, &self.schema, &qualified, r.row_buckets(rows))
                        .await?;
                }
                tx.commit().await.map_err(|e| pe("commit", e))?;
                return Ok(LoadStats {
                    inserted: rows.len() as u64,
                    updated: 0,
                });
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                sp.rollback()
                    .await
                    .map_err(|e| pe("rollback to savepoint", e))?;
            }
            Err(e) => return Err(pe("copy", e)),
        }
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE sluice_stage ({}) ON COMMIT DROP",
            defs.join(", ")
        ))
        .await
        .map_err(|e| pe("create staging table", e))?;
        let stage = format!("COPY sluice_stage ({list}) FROM STDIN (FORMAT binary)");
        copy_rows(&tx, &stage, &types, cols, rows, source)
            .await
            .map_err(|e| pe("copy", e))?;
        let updates: Vec<String> = names[1..]
            .iter()
            .map(|n| format!("{n} = EXCLUDED.{n}"))
            .collect();
        let target_cols: Vec<String> = names[1..].iter().map(|n| format!("t.{n}")).collect();
        let excluded_cols: Vec<String> =
            names[1..].iter().map(|n| format!("EXCLUDED.{n}")).collect();
        let rank = |t: &str| {
            format!(
                "(COALESCE({t}.{v}, '') COLLATE \"C\", {t}.{s} COLLATE \"C\")",
                v = ident(VERSION_COLUMN),
                s = ident(SOURCE_COLUMN)
            )
        };
        let sql = format!(
            "INSERT INTO {qualified} AS t ({list}) SELECT {list} FROM sluice_stage \
             ON CONFLICT ({key}) DO UPDATE SET {updates} \
             WHERE {new} > {old} OR ({new} = {old} AND ({tcols}) IS DISTINCT FROM ({ecols})) \
             RETURNING (xmax = 0) AS inserted",
            key = ident(KEY_COLUMN),
            updates = updates.join(", "),
            new = rank("EXCLUDED"),
            old = rank("t"),
            tcols = target_cols.join(", "),
            ecols = excluded_cols.join(", "),
        );
        // The buckets the stored versions are in, before the merge may move them.
        let mut touched = Vec::with_capacity(rollups.len());
        for r in rollups {
            let mut b = r.stored_buckets(&tx, &qualified, "sluice_stage").await?;
            b.extend(r.row_buckets(rows));
            touched.push(b);
        }
        let returned = tx.query(&sql, &[]).await.map_err(|e| pe("merge", e))?;
        for (r, buckets) in rollups.iter().zip(touched) {
            r.refresh(&tx, &self.schema, &qualified, buckets).await?;
        }
        tx.commit().await.map_err(|e| pe("commit", e))?;
        let inserted = returned.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
        Ok(LoadStats {
            inserted,
            updated: returned.len() as u64 - inserted,
        })
    }
}

/// One column of a load: quoted name, SQL type, binary COPY type.
pub type CopyColumn = (String, String, Type);

/// The columns of a load in COPY order: key, the dataset's columns, source, version.
pub fn copy_columns(cols: &[Column]) -> Vec<CopyColumn> {
    let mut out = vec![(ident(KEY_COLUMN), "text".to_string(), Type::TEXT)];
    out.extend(cols.iter().map(|c| {
        let (sql, ty) = pg_type(c.ty);
        (ident(&c.name), sql, ty)
    }));
    out.push((ident(SOURCE_COLUMN), "text".to_string(), Type::TEXT));
    out.push((ident(VERSION_COLUMN), "text".to_string(), Type::TEXT));
    out
}

/// Binary COPY of `rows` in [`copy_columns`] order with `sql` (a `COPY ... FROM STDIN`).
pub async fn copy_rows(
    tx: &Transaction<'_>,
    sql: &str,
    types: &[Type],
    cols: &[Column],
    rows: &[&Row],
    source: &str,
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in(sql).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for row in rows {
        let mut cells: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(types.len());
        cells.push(Box::new(row.key.clone()));
        for (c, v) in cols.iter().zip(&row.values) {
            cells.push(to_sql(c.ty, v));
        }
        cells.push(Box::new(source.to_string()));
        cells.push(Box::new(row.version.clone()));
        let refs: Vec<&(dyn ToSql + Sync)> = cells
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await?;
    Ok(())
}

fn to_sql(ty: FieldType, v: &Typed<'static>) -> Box<dyn ToSql + Sync + Send> {
    match (ty, v) {
        (FieldType::String, Typed::Str(s)) => Box::new(Some(s.to_string())),
        (FieldType::String, other) => Box::new(other.to_text()),
        (FieldType::Int, Typed::Int(i)) => Box::new(Some(*i)),
        (FieldType::Float, Typed::Float(f)) => Box::new(Some(*f)),
        (FieldType::Float, Typed::Int(i)) => Box::new(Some(*i as f64)),
        (FieldType::Bool, Typed::Bool(b)) => Box::new(Some(*b)),
        (FieldType::Timestamp, Typed::Timestamp(t)) => Box::new(micros_to_datetime(*t)),
        (FieldType::Date, Typed::Date(d)) => {
            Box::new(NaiveDate::from_num_days_from_ce_opt(d + 719_163))
        }
        (FieldType::Json, Typed::Json(s)) => Box::new(Some(JsonbText(s.to_string()))),
        (FieldType::Decimal { .. }, Typed::Decimal { unscaled, scale }) => Box::new(Some(Numeric(
            sluice_core::decimal::pg_numeric(*unscaled, *scale),
        ))),
        (FieldType::Decimal { .. }, _) => Box::new(None::<Numeric>),
        (FieldType::Int, _) => Box::new(None::<i64>),
        (FieldType::Float, _) => Box::new(None::<f64>),
        (FieldType::Bool, _) => Box::new(None::<bool>),
        (FieldType::Timestamp, _) => Box::new(None::<DateTime<Utc>>),
        (FieldType::Date, _) => Box::new(None::<NaiveDate>),
        (FieldType::Json, _) => Box::new(None::<JsonbText>),
    }
}

/// JSON text sent to a `jsonb` column as text (binary format version 1), so PostgreSQL parses
/// the producer's numbers itself (exactly, as `numeric`) instead of receiving f64 values.
#[derive(Debug)]
struct JsonbText(String);

impl ToSql for JsonbText {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[1]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
}

/// A `decimal(p,s)` value in PostgreSQL's binary `numeric` format (exact; no float on the way).
#[derive(Debug)]
struct Numeric(Vec<u8>);

impl ToSql for Numeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

#[async_trait]
impl Warehouse for Postgres {
    async fn load(
        &self,
        table: &str,
        cols: &[Column],
        rows: &[&Row],
        source: &str,
        rollups: &[RollupSql],
    ) -> Result<LoadStats, TransformError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(TransformError::Settings("no postgres client".into()));
        };
        let res = async {
            self.ensure_table(client, table, cols, rollups).await?;
            self.merge(client, table, cols, rows, source, rollups).await
        }
        .await;
        if let Err(e) = &res {
            if e.is_retryable() {
                // Drop a possibly broken connection; the next invocation reconnects.
                *guard = None;
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_widening_changes_an_existing_column() {
        use ColumnChange::*;
        for (existing, ty, want) in [
            ("bigint", FieldType::Int, Keep),
            ("integer", FieldType::Int, Widen),
            ("smallint", FieldType::Int, Widen),
            ("real", FieldType::Float, Widen),
            ("double precision", FieldType::Float, Keep),
            ("character varying(20)", FieldType::String, Widen),
            ("timestamp with time zone", FieldType::Timestamp, Keep),
            (
                "timestamp without time zone",
                FieldType::Timestamp,
                Conflict,
            ),
            ("text", FieldType::Float, Conflict),
            ("double precision", FieldType::Int, Conflict),
            ("bigint", FieldType::Float, Conflict),
            ("bigint", FieldType::String, Conflict),
            ("jsonb", FieldType::Json, Keep),
            ("json", FieldType::Json, Conflict),
            ("date", FieldType::Timestamp, Conflict),
            ("boolean", FieldType::Bool, Keep),
            (
                "numeric(12,2)",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Keep,
            ),
            (
                "numeric(10,2)",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Widen,
            ),
            (
                "numeric(14,2)",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Conflict,
            ),
            (
                "numeric(12,3)",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Conflict,
            ),
            (
                "double precision",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Conflict,
            ),
            (
                "numeric",
                FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Conflict,
            ),
        ] {
            assert_eq!(column_change(existing, ty), want, "{existing} -> {ty}");
        }
    }
}
