//! failure-notifier: on-failure records → archived payloads in the dead-letter zone + SNS alerts.
//!
//! [`failure`] recognises what arrived on the on-failure queue (a discarded Kinesis batch, a
//! failed asynchronous invocation, or anything else); [`archive`] owns the dead-letter layout
//! and formats (read back by the `sluice` CLI); [`alert`] composes the SNS message; [`kinesis`]
//! and [`sns`] are the ports with their AWS adapters; [`handler`] ties them together for one
//! batch of queue messages and reports the ones to redeliver; [`event`] is the Lambda edge and
//! [`config`] reads the environment once at cold start.

pub mod alert;
pub mod archive;
pub mod config;
pub mod error;
pub mod event;
pub mod failure;
pub mod handler;
pub mod kinesis;
pub mod sns;

pub use config::{Config, ALERT_TOPIC_ARN};
pub use error::{Error, Result};
pub use event::{BatchOutcome, QueueBatch};
pub use handler::{handle, Handler};
