//! s3-transform: raw objects → typed, masked, de-duplicated Parquet in the curated zone, and an
//! idempotent load into PostgreSQL.
//!
//! [`input`] reads objects (formats, gzip and line caps), [`transform`] types, masks ([`pii`])
//! and de-duplicates rows, [`parquet_out`] encodes curated files, [`warehouse`] loads
//! PostgreSQL (spelling its SQL with [`sql`], keeping [`rollup`] tables), [`handler`]
//! orchestrates one S3 notification, [`config`] reads the environment once at cold start and
//! resolves the secrets; [`event`] is the Lambda edge.

pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod input;
pub mod parquet_out;
pub mod pii;
pub mod rollup;
pub mod sql;
pub mod transform;
pub mod warehouse;

pub use config::Config;
pub use error::TransformError;
pub use handler::{handle, Handler};
