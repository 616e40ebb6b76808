//! Test worlds shared by several integration tests: an in-memory [`ObjectStore`] for tests whose
//! claim is about bytes and keys rather than about S3 (every adapter keeps its own test against
//! moto), and a [`Warehouse`] that records what it was asked to load.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use s3_transform::rollup::RollupSql;
use s3_transform::transform::{Column, Row};
use s3_transform::warehouse::{LoadStats, Warehouse};
use s3_transform::TransformError;
use sluice_core::store::ObjectStore;

/// A bucket held in memory, in key order.
#[derive(Debug, Default)]
pub struct MemStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemStore {
    /// Every object, in key order.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn missing(&self, key: &str) -> sluice_core::Error {
        sluice_core::Error::NotFound {
            bucket: "mem".into(),
            key: key.into(),
        }
    }
}

#[async_trait]
impl ObjectStore for MemStore {
    fn bucket(&self) -> &str {
        "mem"
    }

    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> sluice_core::Result<()> {
        if let Ok(mut m) = self.objects.lock() {
            m.insert(key.to_string(), body);
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> sluice_core::Result<Vec<u8>> {
        let found = self.objects.lock().ok().and_then(|m| m.get(key).cloned());
        found.ok_or_else(|| self.missing(key))
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> sluice_core::Result<Vec<u8>> {
        let body = self.get(key).await?;
        let end = (end as usize).min(body.len());
        let start = (start as usize).min(end);
        Ok(body[start..end].to_vec())
    }

    async fn size(&self, key: &str) -> sluice_core::Result<u64> {
        Ok(self.get(key).await?.len() as u64)
    }

    async fn list(&self, prefix: &str) -> sluice_core::Result<Vec<String>> {
        let m = self.objects.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(m.into_keys().filter(|k| k.starts_with(prefix)).collect())
    }
}

/// A warehouse that loads nothing and counts the rows it was given, per table.
#[derive(Debug, Default)]
pub struct CountingWarehouse {
    rows: Mutex<BTreeMap<String, u64>>,
}

impl CountingWarehouse {
    /// Rows offered per table.
    pub fn rows(&self) -> BTreeMap<String, u64> {
        self.rows.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Warehouse for CountingWarehouse {
    async fn load(
        &self,
        table: &str,
        _cols: &[Column],
        rows: &[&Row],
        _source: &str,
        _rollups: &[RollupSql],
    ) -> Result<LoadStats, TransformError> {
        if let Ok(mut m) = self.rows.lock() {
            *m.entry(table.to_string()).or_default() += rows.len() as u64;
        }
        Ok(LoadStats {
            inserted: rows.len() as u64,
            updated: 0,
        })
    }
}
