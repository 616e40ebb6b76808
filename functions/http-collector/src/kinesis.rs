//! The [`Stream`] port on aws-sdk-kinesis (PutRecords).

use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use sluice_core::error::classify_sdk_error;

use crate::error::Error;
use crate::put::{Entry, Stream};

/// PutRecords into one stream.
#[derive(Debug, Clone)]
pub struct KinesisStream {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisStream {
    /// Writes to the stream named `stream`.
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        KinesisStream {
            client,
            stream: stream.into(),
        }
    }
}

/// The SDK's PutRecords entries of one call.
pub fn request_entries(entries: &[Entry<'_>]) -> Result<Vec<PutRecordsRequestEntry>, Error> {
    entries
        .iter()
        .map(|e| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(e.data))
                .partition_key(&e.partition_key)
                .build()
                .map_err(|err| Error::Stream {
                    code: "Build".into(),
                    message: err.to_string(),
                    retryable: false,
                })
        })
        .collect()
}

#[async_trait]
impl Stream for KinesisStream {
    async fn put_records(&self, entries: &[Entry<'_>]) -> Result<Vec<Option<String>>, Error> {
        let records = request_entries(entries)?;
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| {
                let f = classify_sdk_error(&e);
                Error::Stream {
                    code: f.code,
                    message: f.message,
                    retryable: f.retryable,
                }
            })?;
        Ok(out
            .records()
            .iter()
            .map(|r| r.error_code().map(str::to_string))
            .collect())
    }
}
