//! Reading a Parquet object's schema from its footer with two ranged GETs, never the whole
//! object: the last 8 bytes (footer length + `PAR1`), then the footer itself.

use arrow_schema::Schema;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use sluice_core::store::ObjectStore;

use crate::error::CatalogError;

/// Bytes at the end of every Parquet file: footer length (u32 LE) and the magic `PAR1`.
pub const FOOTER_TAIL_BYTES: u64 = 8;
/// The leading magic plus the tail: the smallest possible Parquet file has more than this.
const MIN_PARQUET_BYTES: u64 = 4 + FOOTER_TAIL_BYTES;
/// Largest footer read (guards against a corrupt length asking for gigabytes).
pub const MAX_FOOTER_BYTES: u64 = 16 * 1024 * 1024;

/// The Arrow schema of the Parquet object `key`. `size_hint` (from the notification) saves a
/// HEAD; if the object at that size does not end like Parquet, the real size is fetched once.
pub async fn read_schema(
    store: &dyn ObjectStore,
    key: &str,
    size_hint: Option<u64>,
) -> Result<Schema, CatalogError> {
    let hinted = size_hint.filter(|s| *s >= MIN_PARQUET_BYTES);
    let first = match hinted {
        Some(s) => s,
        None => store.size(key).await?,
    };
    match read_at(store, key, first).await {
        // A stale hint reads the wrong bytes (a footer error) or past the end (416).
        Err(e) if hinted.is_some() && !e.is_retryable() => {
            let actual = store.size(key).await?;
            if actual == first {
                Err(e)
            } else {
                read_at(store, key, actual).await
            }
        }
        other => other,
    }
}

async fn read_at(store: &dyn ObjectStore, key: &str, size: u64) -> Result<Schema, CatalogError> {
    let footer_err = |reason: String| CatalogError::Footer {
        bucket: store.bucket().to_string(),
        key: key.to_string(),
        reason,
    };
    if size < MIN_PARQUET_BYTES {
        return Err(footer_err(format!(
            "object is {size} bytes, too small for Parquet"
        )));
    }
    let tail = store.get_range(key, size - FOOTER_TAIL_BYTES, size).await?;
    let tail = FooterTail::try_from(tail.as_slice()).map_err(|e| footer_err(e.to_string()))?;
    if tail.is_encrypted_footer() {
        return Err(footer_err("encrypted footers are not supported".into()));
    }
    let len = tail.metadata_length() as u64;
    if len == 0 || len > MAX_FOOTER_BYTES || len + MIN_PARQUET_BYTES > size {
        return Err(footer_err(format!(
            "footer length {len} does not fit an object of {size} bytes"
        )));
    }
    let end = size - FOOTER_TAIL_BYTES;
    let meta = store.get_range(key, end - len, end).await?;
    if meta.len() as u64 != len {
        return Err(footer_err(format!(
            "read {} footer bytes, expected {len}",
            meta.len()
        )));
    }
    let md =
        ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| footer_err(e.to_string()))?;
    let file = md.file_metadata();
    parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| footer_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field};
    use async_trait::async_trait;
    use parquet::arrow::ArrowWriter;
    use sluice_core::Result;

    use super::*;

    /// One in-memory object that records every range read and refuses whole-object GETs.
    struct OneObject {
        body: Vec<u8>,
        ranges: Mutex<Vec<(u64, u64)>>,
        heads: Mutex<usize>,
    }

    #[async_trait]
    impl ObjectStore for OneObject {
        fn bucket(&self) -> &str {
            "b"
        }
        async fn put(&self, _: &str, _: Vec<u8>, _: &str) -> Result<()> {
            panic!("glue-catalog never writes objects")
        }
        async fn get(&self, _: &str) -> Result<Vec<u8>> {
            panic!("glue-catalog never GETs a whole object")
        }
        async fn get_range(&self, _: &str, start: u64, end: u64) -> Result<Vec<u8>> {
            self.ranges.lock().expect("lock").push((start, end));
            if start >= self.body.len() as u64 {
                return Err(sluice_core::Error::Storage {
                    op: "get",
                    bucket: "b".into(),
                    key: "k".into(),
                    code: "InvalidRange".into(),
                    message: "The requested range is not satisfiable".into(),
                    retryable: false,
                });
            }
            let end = end.min(self.body.len() as u64) as usize;
            Ok(self.body[start as usize..end].to_vec())
        }
        async fn size(&self, _: &str) -> Result<u64> {
            *self.heads.lock().expect("lock") += 1;
            Ok(self.body.len() as u64)
        }
        async fn list(&self, _: &str) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    fn parquet_bytes(rows: usize) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]));
        let ids: Vec<String> = (0..rows).map(|i| format!("id-{i:06}")).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        out
    }

    fn store(body: Vec<u8>) -> OneObject {
        OneObject {
            body,
            ranges: Mutex::new(Vec::new()),
            heads: Mutex::new(0),
        }
    }

    #[tokio::test]
    async fn two_ranged_reads_at_the_end_only() {
        let s = store(parquet_bytes(20_000));
        let size = s.body.len() as u64;
        let schema = read_schema(&s, "k", None).await.expect("schema");
        assert_eq!(schema.field(0).name(), "id");
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
        let ranges = s.ranges.lock().expect("lock").clone();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0], (size - 8, size));
        assert_eq!(ranges[1].1, size - 8);
        let read: u64 = ranges.iter().map(|(a, b)| b - a).sum();
        assert!(read * 10 < size, "read {read} of {size} bytes");
        assert_eq!(*s.heads.lock().expect("lock"), 1);
    }

    #[tokio::test]
    async fn size_hint_saves_the_head_and_a_stale_hint_recovers() {
        let s = store(parquet_bytes(10));
        let size = s.body.len() as u64;
        read_schema(&s, "k", Some(size)).await.expect("schema");
        assert_eq!(*s.heads.lock().expect("lock"), 0);
        read_schema(&s, "k", Some(size + 100))
            .await
            .expect("stale hint recovers");
        assert_eq!(*s.heads.lock().expect("lock"), 1);
    }

    #[tokio::test]
    async fn not_parquet_is_a_footer_error() {
        let s = store(b"{\"not\":\"parquet\"} and some more bytes".to_vec());
        let e = read_schema(&s, "curated/x/y.parquet", None)
            .await
            .expect_err("not parquet");
        assert!(matches!(e, CatalogError::Footer { .. }), "{e}");
        assert!(!e.is_retryable());
        let tiny = store(b"PAR1".to_vec());
        assert!(read_schema(&tiny, "k", None).await.is_err());
        // A length pointing before the start of the object.
        let mut lying = parquet_bytes(3);
        let n = lying.len();
        lying[n - 8..n - 4].copy_from_slice(&(n as u32).to_le_bytes());
        assert!(read_schema(&store(lying), "k", None).await.is_err());
    }
}
