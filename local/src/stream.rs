//! Drives a handler from a Kinesis stream the way Lambda's event source mapping does: poll
//! every shard, hand batches to the function as `KinesisEvent`s, and on batch item failures
//! restart the shard from the lowest failed sequence number.

use std::future::Future;

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use kinesis_ingest::{BatchOutcome, KinesisBatch};
use sluice_core::lake::stream::{seq_cmp, StreamRecord};

use crate::events::kinesis_event_json;

/// What one drain of a stream did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DriveStats {
    pub shards: usize,
    pub batches: usize,
    pub records: usize,
    /// Batches that reported failures and were retried from the lowest failed record.
    pub retries: usize,
}

/// Reads every shard of `stream` from its start until caught up, invoking `invoke` with
/// batches of at most `batch_size` records. A batch with failures is retried (at most
/// `max_retries` times in a row) from its lowest failed sequence number.
pub async fn drain<F, Fut>(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    batch_size: i32,
    max_retries: usize,
    mut invoke: F,
) -> Result<DriveStats>
where
    F: FnMut(KinesisBatch) -> Fut,
    Fut: Future<Output = Result<BatchOutcome>>,
{
    let desc = kinesis
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .context("describe stream")?;
    let desc = desc.stream_description().context("stream description")?;
    let arn = desc.stream_arn().to_string();
    let mut stats = DriveStats::default();
    for shard in desc.shards() {
        stats.shards += 1;
        let shard_id = shard.shard_id().to_string();
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .context("get shard iterator")?
            .shard_iterator
            .context("no shard iterator")?;
        let mut consecutive_retries = 0;
        loop {
            let out = kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(batch_size)
                .send()
                .await
                .context("get records")?;
            if out.records().is_empty() {
                break;
            }
            let records: Vec<StreamRecord> = out
                .records()
                .iter()
                .map(|r| StreamRecord {
                    shard: shard_id.clone(),
                    seq: r.sequence_number().to_string(),
                    partition_key: r.partition_key().unwrap_or_default().to_string(),
                    data: r.data().as_ref().to_vec(),
                    arrival_micros: r
                        .approximate_arrival_timestamp()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or_default()
                        * 1000,
                })
                .collect();
            let event: KinesisBatch = serde_json::from_value(kinesis_event_json(&arn, &records))?;
            stats.batches += 1;
            let resp = invoke(event).await?;
            let lowest = resp.failed.iter().min_by(|a, b| seq_cmp(a, b)).cloned();
            match lowest {
                None => {
                    stats.records += records.len();
                    consecutive_retries = 0;
                    match out.next_shard_iterator() {
                        Some(next) => iterator = next.to_string(),
                        None => break,
                    }
                }
                Some(seq) => {
                    consecutive_retries += 1;
                    stats.retries += 1;
                    if consecutive_retries > max_retries {
                        bail!("shard {shard_id}: batch still failing after {max_retries} retries (from {seq})");
                    }
                    stats.records += records.iter().take_while(|r| r.seq != seq).count();
                    iterator = kinesis
                        .get_shard_iterator()
                        .stream_name(stream)
                        .shard_id(&shard_id)
                        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                        .starting_sequence_number(&seq)
                        .send()
                        .await
                        .context("get shard iterator at failed record")?
                        .shard_iterator
                        .context("no shard iterator")?;
                }
            }
        }
    }
    Ok(stats)
}
