//! The shard-reading port and its aws-sdk-kinesis adapter.
//!
//! [`ShardReader::read_range`] reads one shard from a start sequence number (inclusive,
//! `GetShardIterator AT_SEQUENCE_NUMBER`) with `GetRecords` until it passes the end sequence
//! number, catches up with the shard, or reaches [`MAX_RANGE_RECORDS`]. Records the stream no
//! longer holds are simply not returned; the archive counts them as missing.

use async_trait::async_trait;
use aws_sdk_kinesis::types::ShardIteratorType;
use sluice_core::aws::stream_record;
use sluice_core::error::classify_sdk_error;
use sluice_core::lake::stream::{seq_cmp, StreamRecord};

use crate::error::{Error, Result};

/// Most records read back for one failure (Lambda's largest Kinesis batch is 10 000).
pub const MAX_RANGE_RECORDS: usize = 10_000;
/// Most `GetRecords` calls for one range (empty pages while behind the tip count too).
pub const MAX_GET_RECORDS_CALLS: usize = 100;
/// `GetRecords` page size (the API's maximum).
const GET_RECORDS_LIMIT: i32 = 10_000;

/// Reads a sequence-number range of one shard.
#[async_trait]
pub trait ShardReader: Send + Sync {
    /// The records of `shard` with `start <= seq <= end`, in order.
    async fn read_range(
        &self,
        stream_arn: &str,
        shard: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<StreamRecord>>;
}

/// [`ShardReader`] on aws-sdk-kinesis.
#[derive(Debug, Clone)]
pub struct KinesisReader {
    client: aws_sdk_kinesis::Client,
}

impl KinesisReader {
    /// A reader over a client.
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        KinesisReader { client }
    }
}

fn kinesis_error<E>(
    op: &'static str,
    stream: &str,
    shard: &str,
    e: &aws_sdk_kinesis::error::SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
) -> Error
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let f = classify_sdk_error(e);
    // An expired iterator only means this attempt was slow: a redelivery starts over.
    let retryable = f.retryable || f.code == "ExpiredIteratorException";
    Error::Kinesis {
        op,
        stream: stream.to_string(),
        shard: shard.to_string(),
        code: f.code,
        message: f.message,
        retryable,
    }
}

#[async_trait]
impl ShardReader for KinesisReader {
    async fn read_range(
        &self,
        stream_arn: &str,
        shard: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<StreamRecord>> {
        let mut iterator = self
            .client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(start)
            .send()
            .await
            .map_err(|e| kinesis_error("get_shard_iterator", stream_arn, shard, &e))?
            .shard_iterator
            .map(|s| s.to_string());
        let mut out = Vec::new();
        let mut calls = 0;
        while let Some(it) = iterator.take() {
            calls += 1;
            if calls > MAX_GET_RECORDS_CALLS {
                tracing::warn!(
                    stream_arn,
                    shard,
                    calls,
                    "stopped reading the range: call limit"
                );
                break;
            }
            let page = self
                .client
                .get_records()
                .stream_arn(stream_arn)
                .shard_iterator(&it)
                .limit(GET_RECORDS_LIMIT)
                .send()
                .await
                .map_err(|e| kinesis_error("get_records", stream_arn, shard, &e))?;
            let mut past_end = false;
            for r in page.records() {
                let seq = r.sequence_number();
                if seq_cmp(seq, end).is_gt() {
                    past_end = true;
                    break;
                }
                if seq_cmp(seq, start).is_lt() {
                    continue;
                }
                out.push(stream_record(shard, r));
            }
            if past_end || out.len() >= MAX_RANGE_RECORDS {
                break;
            }
            if page.records().is_empty() && page.millis_behind_latest().unwrap_or(0) == 0 {
                break;
            }
            iterator = page.next_shard_iterator().map(str::to_string);
        }
        out.truncate(MAX_RANGE_RECORDS);
        Ok(out)
    }
}
