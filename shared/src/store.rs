//! The object-storage port the handlers write and read through.
//!
//! Handlers see only [`ObjectStore`]; [`crate::aws::S3Store`] implements it on aws-sdk-s3, and
//! unit tests may implement it in memory. Errors are [`crate::Error`] values classified as
//! retryable or not.

use async_trait::async_trait;

use crate::error::Result;

/// Content type of gzip NDJSON objects.
pub const CONTENT_TYPE_NDJSON_GZ: &str = "application/x-ndjson+gzip";
/// Content type of Parquet objects.
pub const CONTENT_TYPE_PARQUET: &str = "application/vnd.apache.parquet";

/// A bucket of objects.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The bucket name, for messages and URIs.
    fn bucket(&self) -> &str;

    /// Writes (or overwrites) one object.
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;

    /// Reads one whole object.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;

    /// Reads the bytes `[start, end)` of an object.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Vec<u8>>;

    /// The object's size in bytes.
    async fn size(&self, key: &str) -> Result<u64>;

    /// Keys under a prefix, in lexicographic order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
}
