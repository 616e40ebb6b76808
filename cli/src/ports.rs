//! The ports replay writes through, and their AWS adapters: Kinesis `PutRecords` and Lambda
//! `Invoke` (asynchronous, `InvocationType=Event`).

use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_lambda::types::InvocationType;
use sluice_core::error::classify_sdk_error;

use crate::error::{Error, Result};

/// Upper bound on one Kinesis or Lambda call attempt, so the command never hangs.
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The AWS adapters replay uses, built once from the environment's configuration.
pub async fn aws_ports() -> anyhow::Result<(aws_sdk_s3::Client, KinesisWriter, LambdaInvoker)> {
    let sdk = sluice_core::aws::sdk_config().await;
    let s3 = sluice_core::aws::s3_client(&sdk)?;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    let kinesis = aws_sdk_kinesis::config::Builder::from(&sdk)
        .timeout_config(timeouts.clone())
        .build();
    let lambda = aws_sdk_lambda::config::Builder::from(&sdk)
        .timeout_config(timeouts)
        .build();
    Ok((
        s3,
        KinesisWriter(aws_sdk_kinesis::Client::from_conf(kinesis)),
        LambdaInvoker(aws_sdk_lambda::Client::from_conf(lambda)),
    ))
}

/// One record to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub partition_key: String,
    pub data: Vec<u8>,
    /// The sequence number it had when it was discarded (for messages only).
    pub original_seq: String,
}

/// A stream, by name or ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget(pub String);

impl StreamTarget {
    /// Whether the target is an ARN.
    pub fn is_arn(&self) -> bool {
        self.0.starts_with("arn:")
    }
}

impl std::fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Puts records into a stream.
#[async_trait]
pub trait RecordWriter: Send + Sync {
    /// One `PutRecords` call (≤ 500 entries); per entry `None` if accepted, else the error code.
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[Entry],
    ) -> Result<Vec<Option<String>>>;
}

/// Invokes a function asynchronously.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Queues one asynchronous invocation with `payload` as the event.
    async fn invoke_event(&self, function: &str, payload: &[u8]) -> Result<()>;
}

/// [`RecordWriter`] on aws-sdk-kinesis.
#[derive(Debug, Clone)]
pub struct KinesisWriter(pub aws_sdk_kinesis::Client);

#[async_trait]
impl RecordWriter for KinesisWriter {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[Entry],
    ) -> Result<Vec<Option<String>>> {
        let mut req = self.0.put_records();
        req = if stream.is_arn() {
            req.stream_arn(&stream.0)
        } else {
            req.stream_name(&stream.0)
        };
        for e in entries {
            let entry = PutRecordsRequestEntry::builder()
                .partition_key(&e.partition_key)
                .data(Blob::new(e.data.clone()))
                .build()
                .map_err(|err| Error::Kinesis {
                    stream: stream.0.clone(),
                    code: "BuildError".into(),
                    message: err.to_string(),
                    retryable: false,
                })?;
            req = req.records(entry);
        }
        let out = req.send().await.map_err(|e| {
            let f = classify_sdk_error(&e);
            Error::Kinesis {
                stream: stream.0.clone(),
                code: f.code,
                message: f.message,
                retryable: f.retryable,
            }
        })?;
        let results: Vec<Option<String>> = out
            .records()
            .iter()
            .map(|r| r.error_code().filter(|c| !c.is_empty()).map(str::to_string))
            .collect();
        if results.len() != entries.len() {
            return Err(Error::Kinesis {
                stream: stream.0.clone(),
                code: "ResultCountMismatch".into(),
                message: format!("{} results for {} entries", results.len(), entries.len()),
                retryable: true,
            });
        }
        Ok(results)
    }
}

/// [`Invoker`] on aws-sdk-lambda.
#[derive(Debug, Clone)]
pub struct LambdaInvoker(pub aws_sdk_lambda::Client);

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke_event(&self, function: &str, payload: &[u8]) -> Result<()> {
        let out = self
            .0
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_vec()))
            .send()
            .await
            .map_err(|e| {
                let f = classify_sdk_error(&e);
                Error::Invoke {
                    function: function.to_string(),
                    code: f.code,
                    message: f.message,
                    retryable: f.retryable,
                }
            })?;
        if out.status_code() != 202 {
            return Err(Error::Invoke {
                function: function.to_string(),
                code: format!("Status{}", out.status_code()),
                message: "an asynchronous invocation is answered with 202".into(),
                retryable: false,
            });
        }
        Ok(())
    }
}
