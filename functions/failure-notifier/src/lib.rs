//! failure-notifier: on-failure records → archived payloads in the dead-letter zone + SNS alerts.
//!
//! [`failure`] recognises what arrived on the on-failure queue (a discarded Kinesis batch, a
//! failed asynchronous invocation, or anything else); [`archive`] owns the dead-letter layout
//! and formats (read back by the `sluice` CLI); [`alert`] composes the SNS message; [`kinesis`]
//! and [`sns`] are the ports with their AWS adapters; [`handler`] ties them together for one
//! `SqsEvent` and reports batch item failures.

pub mod alert;
pub mod archive;
pub mod error;
pub mod failure;
pub mod handler;
pub mod kinesis;
pub mod sns;

/// The Lambda event types at this function's edge.
pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
pub use error::{Error, Result};
pub use handler::{handle, Notifier, ALERT_TOPIC_ARN};
