//! sluice-core: the shared core of the sluice pipeline.
//!
//! Everything the Lambda functions have in common lives here, on the crate's own types (Lambda
//! event JSON stays in the function crates): dataset configuration and schema ([`config`]),
//! value coercion and time parsing ([`schema`]), record decoding including KPL de-aggregation
//! ([`record`], [`kpl`]), the lake contract — keys, line formats, quarantine and dead-letter
//! formats, the stream-record type ([`lake`]) —, the NDJSON + gzip codec ([`ndjson`]), error
//! classification ([`error`]), telemetry ([`telemetry`]) and the storage port with its S3
//! adapter ([`store`]).

#![warn(missing_docs)]

pub mod config;
pub mod decimal;
pub mod env;
pub mod error;
pub mod jsontext;
pub mod kpl;
pub mod lake;
pub mod ndjson;
pub mod notify;
pub mod object;
pub mod record;
pub mod schema;
pub mod store;
pub mod telemetry;

#[cfg(feature = "s3")]
pub mod aws;

pub use error::{Error, Result};
