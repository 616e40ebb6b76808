//! Lambda's Kinesis event source mapping, as the demo and the soak drive it: a shard's records
//! are handed to the function in batches, in order; on batch item failures the shard restarts
//! from the lowest failed sequence number, on a function error from the batch's first record.
//! [`drive_shard`] drives records held in memory, [`drain`] every shard of a (moto) stream;
//! [`read_stream`] reads a stream back whole.

use std::collections::HashSet;
use std::future::Future;

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use kinesis_ingest::{BatchOutcome, KinesisBatch};
use sluice_core::aws::stream_record;
use sluice_core::lake::stream::{seq_cmp, StreamRecord};

use crate::events::kinesis_event_json;

/// What driving a stream (or one shard) did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DriveStats {
    pub shards: usize,
    /// Invocations (batches handed to the function, retries included).
    pub batches: usize,
    pub records: usize,
    /// Batches that reported failures and were retried from the lowest failed record.
    pub retries: usize,
    /// Invocations that failed as a whole (Lambda retries the whole batch).
    pub function_errors: usize,
    /// Sequence numbers handed to the function again after a failure.
    pub redelivered: HashSet<String>,
}

impl DriveStats {
    fn add(&mut self, other: DriveStats) {
        self.shards += other.shards;
        self.batches += other.batches;
        self.records += other.records;
        self.retries += other.retries;
        self.function_errors += other.function_errors;
        self.redelivered.extend(other.redelivered);
    }
}

/// Drives one shard's records like Lambda's event source mapping: batches of at most `batch`
/// records in order; after batch item failures the next batch starts at the lowest failed
/// record, after a function error at the batch's first record. Fails when a batch is retried
/// more than `max_retries` times in a row.
pub async fn drive_shard<F, Fut>(
    stream_arn: &str,
    records: &[StreamRecord],
    batch: usize,
    max_retries: usize,
    mut invoke: F,
) -> Result<DriveStats>
where
    F: FnMut(KinesisBatch) -> Fut,
    Fut: Future<Output = Result<BatchOutcome>>,
{
    let mut stats = DriveStats {
        shards: 1,
        records: records.len(),
        ..DriveStats::default()
    };
    let (mut pos, mut consecutive) = (0, 0);
    while pos < records.len() {
        let end = (pos + batch.max(1)).min(records.len());
        let event: KinesisBatch =
            serde_json::from_value(kinesis_event_json(stream_arn, &records[pos..end]))?;
        stats.batches += 1;
        let failed_from = match invoke(event).await {
            Ok(outcome) => match outcome.failed.iter().min_by(|a, b| seq_cmp(a, b)) {
                None => None,
                Some(seq) => Some(
                    records[pos..end]
                        .iter()
                        .position(|r| r.seq == *seq)
                        .map(|i| pos + i)
                        .context("a reported failure is not a record of the batch")?,
                ),
            },
            Err(_) => {
                stats.function_errors += 1;
                Some(pos)
            }
        };
        match failed_from {
            None => {
                pos = end;
                consecutive = 0;
            }
            Some(from) => {
                stats.retries += 1;
                consecutive += 1;
                if consecutive > max_retries {
                    let shard = records[from].shard.as_str();
                    bail!("shard {shard}: batch at record {from} still failing after {max_retries} retries");
                }
                stats
                    .redelivered
                    .extend(records[from..end].iter().map(|r| r.seq.clone()));
                pos = from;
            }
        }
    }
    Ok(stats)
}

/// Reads every shard of `stream` from its start until caught up and drives each with
/// [`drive_shard`].
pub async fn drain<F, Fut>(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    batch_size: usize,
    max_retries: usize,
    mut invoke: F,
) -> Result<DriveStats>
where
    F: FnMut(KinesisBatch) -> Fut,
    Fut: Future<Output = Result<BatchOutcome>>,
{
    let (arn, shards) = shards(kinesis, stream).await?;
    let mut stats = DriveStats::default();
    for shard in shards {
        let records = read_shard(kinesis, stream, &shard).await?;
        stats.add(drive_shard(&arn, &records, batch_size, max_retries, &mut invoke).await?);
    }
    Ok(stats)
}

/// Every record of every shard of `stream`, from the start until caught up (shard by shard).
pub async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<StreamRecord>> {
    let (_, shards) = shards(kinesis, stream).await?;
    let mut all = Vec::new();
    for shard in shards {
        all.extend(read_shard(kinesis, stream, &shard).await?);
    }
    Ok(all)
}

/// The stream's ARN and shard ids.
async fn shards(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Result<(String, Vec<String>)> {
    let desc = kinesis
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .context("describe stream")?;
    let desc = desc.stream_description().context("stream description")?;
    let ids = desc
        .shards()
        .iter()
        .map(|s| s.shard_id().to_string())
        .collect();
    Ok((desc.stream_arn().to_string(), ids))
}

/// Every record of a shard, from its start until caught up.
async fn read_shard(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    shard_id: &str,
) -> Result<Vec<StreamRecord>> {
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .context("get shard iterator")?
        .shard_iterator
        .context("no shard iterator")?;
    let mut records = Vec::new();
    loop {
        let out = kinesis
            .get_records()
            .shard_iterator(&iterator)
            .limit(10_000)
            .send()
            .await
            .context("get records")?;
        if out.records().is_empty() {
            return Ok(records);
        }
        records.extend(out.records().iter().map(|r| stream_record(shard_id, r)));
        match out.next_shard_iterator() {
            Some(next) => iterator = next.to_string(),
            None => return Ok(records),
        }
    }
}
