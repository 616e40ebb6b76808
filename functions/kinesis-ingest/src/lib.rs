//! kinesis-ingest: Kinesis records → validated, partitioned gzip NDJSON in the S3 raw zone.
//!
//! [`event`] reads Lambda's Kinesis payload into stream records; [`batch`] is the pure CPU path
//! (decode, validate, route, partition, encode); [`handler`] writes the planned objects through
//! the [`sluice_core::store::ObjectStore`] port and reports the records to deliver again;
//! [`config`] reads the environment once at cold start.

pub mod batch;
pub mod config;
pub mod event;
pub mod handler;

pub use batch::{plan_batch, Plan, PlannedObject, Zone};
pub use config::Config;
pub use event::{BatchOutcome, KinesisBatch};
pub use handler::{handle, Handler};
