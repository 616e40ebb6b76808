//! Independent readers of the lake: DuckDB (and through it, Parquet and gzip NDJSON) from the
//! project venv, so tests and the demo check sluice's outputs with code nobody here wrote.
//!
//! [`Files`] writes objects to a private temporary directory; [`duckdb`] runs one query in a
//! fresh DuckDB process and returns its rows as JSON objects (values DuckDB cannot express in
//! JSON, such as timestamps and decimals, as their text).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::services::{python, unique};

/// The script DuckDB runs: the query is argv[1]; rows go to stdout as one JSON array.
const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys
rel = duckdb.sql(sys.argv[1])
cols = rel.columns
rows = [dict(zip(cols, r)) for r in rel.fetchall()]
json.dump(rows, sys.stdout, default=str)
"#;

/// Runs `sql` in DuckDB and returns its rows.
pub fn duckdb(sql: &str) -> Result<Vec<Value>> {
    let out = Command::new(python())
        .args(["-c", DUCKDB_SCRIPT, sql])
        .output()
        .context("running DuckDB from the project venv")?;
    if !out.status.success() {
        bail!(
            "DuckDB failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows: Value = serde_json::from_slice(&out.stdout).context("DuckDB output")?;
    match rows {
        Value::Array(rows) => Ok(rows),
        other => bail!("DuckDB returned {other}"),
    }
}

/// Objects copied to a temporary directory for a reader; removed on drop.
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// A new, empty directory.
    pub fn new() -> Result<Files> {
        let dir = std::env::temp_dir().join(unique("sluice-read"));
        std::fs::create_dir_all(&dir)?;
        Ok(Files { dir })
    }

    /// Writes `bytes` under `name` (its `/` become directories) and returns the path.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// The directory, for globs such as `{dir}/**/*.parquet`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
