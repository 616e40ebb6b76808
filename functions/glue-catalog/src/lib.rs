//! glue-catalog: curated and raw objects → Glue tables with additive schema evolution and
//! Hive partitions, so Athena, Redshift Spectrum and EMR can query the lake.
//!
//! [`handler`] turns an S3 notification into catalogue work; [`footer`] reads a Parquet
//! schema with two ranged GETs; [`hive`] maps Arrow and config types to Glue types and decides
//! what evolution is allowed; [`tables`] describes the tables sluice keeps; [`register`]
//! creates/evolves tables and registers partitions with retries and a per-container cache,
//! over the [`catalog::Catalog`] port that [`glue`] implements with aws-sdk-glue;
//! [`error`] is the crate's error type; [`event`] is the Lambda edge and [`config`] reads the
//! environment once at cold start.

pub mod catalog;
pub mod config;
pub mod error;
pub mod event;
pub mod footer;
pub mod glue;
pub mod handler;
pub mod hive;
pub mod register;
pub mod tables;

pub use catalog::Catalog;
pub use config::Config;
pub use error::{CatalogError, SchemaConflict};
pub use glue::GlueCatalog;
pub use handler::{handle, Handler, ObjectOutcome, Outcome};
pub use register::{CatalogCache, RetryPolicy};
