//! http-collector: the pipeline's HTTP front door.
//!
//! Apps, web sites and partners POST events (one JSON object, a JSON array or NDJSON,
//! optionally gzip) to an API Gateway HTTP API; an existing Firehose stream can deliver into it
//! unchanged through its HTTP endpoint protocol. Every accepted record is written to the
//! Kinesis stream with PutRecords, only failed entries retried, and the answer says exactly
//! which records are not in the stream ([`handler`]). Requests are authenticated with API keys
//! held in Secrets Manager ([`auth`]) before anything is written.

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod event;
pub mod firehose;
pub mod handler;
pub mod kinesis;
pub mod put;

pub use config::Config;
pub use error::{Error, Result};
pub use handler::{Handler, Request, Response};
