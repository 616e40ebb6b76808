//! The dead-letter zone's contract: its keys and archive formats, written by failure-notifier
//! and read back by the `sluice` CLI ([`parse_dead_letter`]).
//!
//! Layout under the dead-letter prefix (`SLUICE_DEAD_LETTER_PREFIX`, default `dead-letter/`):
//!
//! - `kinesis/<stream>/<shard>/<start>-<end>.json.gz`: gzip NDJSON. The first line is a
//!   [`KinesisHeader`] (`"type":"kinesis_failure"`: the failure context and how many records
//!   were archived or are missing, and why); every further line is one [`ArchivedRecord`]
//!   (`"type":"record"`: sequence number, partition key, arrival time, data in base64).
//! - `<function>/dt=YYYY-MM-DD/<requestId>.json`: an [`AsyncArchive`], the failure record
//!   as received plus its summary; `dt` is the failure record's own timestamp.
//! - `unknown/<messageId>.json` (or `.txt` when the body is not JSON): the SQS body verbatim.
//!
//! Beside an archive that `sluice replay` has sent, a [`ReplayNote`] (`<archive key>.replayed.json`)
//! records when and where, so `sluice status` counts only dead letters not yet replayed and a
//! second replay asks for `--force`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `type` of the header line of a Kinesis archive.
pub const KINESIS_HEADER: &str = "kinesis_failure";
/// `type` of a record line of a Kinesis archive.
pub const KINESIS_RECORD: &str = "record";
/// `type` of an async-invocation archive.
pub const ASYNC_FAILURE: &str = "async_failure";
/// Content type of Kinesis archives.
pub const CONTENT_TYPE_GZ: &str = "application/x-ndjson+gzip";
/// Content type of JSON archives.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of unknown, non-JSON messages.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// The key of a Kinesis archive: `<prefix>kinesis/<stream>/<shard>/<start>-<end>.json.gz`.
pub fn kinesis_key(prefix: &str, stream: &str, shard: &str, start: &str, end: &str) -> String {
    format!("{prefix}kinesis/{stream}/{shard}/{start}-{end}.json.gz")
}

/// The key of an async-invocation archive: `<prefix><function>/dt=<date>/<requestId>.json`.
pub fn async_key(prefix: &str, function: &str, date: &str, request_id: &str) -> String {
    format!("{prefix}{function}/dt={date}/{request_id}.json")
}

/// The key of an unrecognised message: `<prefix>unknown/<id>.<json|txt>`.
pub fn unknown_key(prefix: &str, id: &str, is_json: bool) -> String {
    let ext = if is_json { "json" } else { "txt" };
    format!("{prefix}unknown/{id}.{ext}")
}

/// Suffix of the [`ReplayNote`] beside an archive.
pub const REPLAYED_SUFFIX: &str = ".replayed.json";

/// The key of the [`ReplayNote`] of the archive `key`.
pub fn replayed_key(key: &str) -> String {
    format!("{key}{REPLAYED_SUFFIX}")
}

/// Whether a key in the dead-letter zone is an archive rather than a [`ReplayNote`].
pub fn is_archive(key: &str) -> bool {
    !key.ends_with(REPLAYED_SUFFIX) && !key.ends_with('/')
}

/// The replays of one archive: written by `sluice replay` after the records were accepted or
/// the invocation queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayNote {
    /// Every replay, oldest first.
    pub runs: Vec<ReplayRun>,
}

/// One replay of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRun {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The stream or function it went to.
    pub target: String,
    /// Records put, or invocations queued.
    pub sent: usize,
}

/// The first line of a Kinesis archive: the failure context and what was archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KinesisHeader {
    /// Written as `type`: always [`KINESIS_HEADER`] (`kinesis_failure`).
    #[serde(rename = "type")]
    pub kind: String,
    /// ARN of the stream the batch was read from (`KinesisBatchInfo.streamArn`); the CLI
    /// replays into it unless told another stream.
    pub stream_arn: String,
    /// The stream's name, taken from `stream_arn`; a component of the archive's key.
    pub stream: String,
    /// The shard id (`KinesisBatchInfo.shardId`).
    pub shard: String,
    /// First sequence number of the discarded batch (`KinesisBatchInfo.startSequenceNumber`),
    /// decimal digits.
    pub start_seq: String,
    /// Last sequence number of the discarded batch (`KinesisBatchInfo.endSequenceNumber`),
    /// decimal digits.
    pub end_seq: String,
    /// Why Lambda discarded the batch (`requestContext.condition`: `RetryAttemptsExhausted`,
    /// `RecordAgeExceeded`, ...).
    pub condition: String,
    /// Request id of the failed invocation (`requestContext.requestId`).
    pub request_id: String,
    /// ARN of the function that failed on the batch (`requestContext.functionArn`).
    pub function_arn: String,
    /// How many times Lambda invoked the function on the batch
    /// (`requestContext.approximateInvokeCount`), when reported.
    pub approximate_invoke_count: Option<u64>,
    /// When Lambda discarded the batch (the failure record's timestamp).
    pub failed_at: String,
    /// Approximate arrival time of the batch's first record
    /// (`KinesisBatchInfo.approximateArrivalOfFirstRecord`), as sent, when present.
    pub first_arrival: Option<String>,
    /// Approximate arrival time of the batch's last record
    /// (`KinesisBatchInfo.approximateArrivalOfLastRecord`), as sent, when present.
    pub last_arrival: Option<String>,
    /// Records in the discarded batch, as Lambda reported it.
    pub batch_size: Option<u64>,
    /// Record lines that follow this header.
    pub records_archived: u64,
    /// Records of the batch that could not be read back (trimmed or unreadable); `None` when
    /// the batch size is unknown and nothing indicates a gap.
    pub records_missing: Option<u64>,
    /// Why records are missing, when they are.
    pub missing_reason: Option<String>,
    /// The failure record's `responseContext` as sent (status code, function error); `null`
    /// when it had none.
    pub response_context: Value,
}

/// One record line of a Kinesis archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedRecord {
    /// Written as `type`: always [`KINESIS_RECORD`] (`record`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The record's sequence number, within the header's `start_seq..=end_seq`.
    pub seq: String,
    /// The record's partition key, as it was put.
    pub partition_key: String,
    /// Kinesis approximate arrival time, RFC 3339 UTC with milliseconds.
    pub arrival: String,
    /// The record's bytes, base64 (standard alphabet, padded); see [`ArchivedRecord::data`].
    pub data_b64: String,
}

impl ArchivedRecord {
    /// The record's bytes.
    pub fn data(&self) -> std::result::Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.data_b64)
    }
}

/// An async-invocation archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncArchive {
    /// Written as `type`: always [`ASYNC_FAILURE`] (`async_failure`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's name, from `function_arn` without qualifier; a component of the key.
    pub function: String,
    /// ARN of the function that failed (`requestContext.functionArn`); the CLI re-invokes it
    /// unless told another function.
    pub function_arn: String,
    /// Request id of the failed invocation (`requestContext.requestId`); the key's file name.
    pub request_id: String,
    /// Why Lambda gave up (`requestContext.condition`: `RetriesExhausted`, `EventAgeExceeded`,
    /// ...).
    pub condition: String,
    /// How many times Lambda invoked the function (`requestContext.approximateInvokeCount`),
    /// when reported.
    pub approximate_invoke_count: Option<u64>,
    /// When Lambda gave up (the failure record's timestamp, RFC 3339).
    pub failed_at: String,
    /// The failure record exactly as received (`requestPayload` is the original event).
    pub record: Value,
}

/// A dead letter read back from the zone.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetter {
    /// A Kinesis archive (`kinesis/...json.gz`): a discarded batch, replayable into a stream.
    Kinesis {
        /// The archive's first line.
        header: Box<KinesisHeader>,
        /// The record lines that follow it, in archive order.
        records: Vec<ArchivedRecord>,
    },
    /// An async-invocation archive (`<function>/dt=.../<requestId>.json`), replayable by
    /// invoking the function again with its `requestPayload`.
    Async(AsyncArchive),
    /// An unrecognised message: it cannot be replayed automatically.
    Unknown,
}

/// Why a dead letter could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is not a sluice dead letter: {reason}")]
pub struct ParseError {
    /// The full key of the object.
    pub key: String,
    /// What is wrong: outside the prefix, not gzip, a bad line, a wrong `type`, or an
    /// unrecognised key layout.
    pub reason: String,
}

/// Parses a dead-letter object by its key (relative to nothing: the full key) and bytes.
pub fn parse_dead_letter(
    prefix: &str,
    key: &str,
    bytes: &[u8],
) -> std::result::Result<DeadLetter, ParseError> {
    let err = |reason: String| ParseError {
        key: key.to_string(),
        reason,
    };
    let rel = key.strip_prefix(prefix).ok_or_else(|| {
        err(format!(
            "the key is outside the dead-letter prefix {prefix}"
        ))
    })?;
    if !is_archive(key) {
        return Err(err(
            "it is the replay note of an archive, not an archive".into()
        ));
    }
    if rel.starts_with("unknown/") {
        return Ok(DeadLetter::Unknown);
    }
    if rel.starts_with("kinesis/") && key.ends_with(".json.gz") {
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| err(format!("not gzip text: {e}")))?;
        let mut lines = text.lines();
        let header: KinesisHeader = lines
            .next()
            .ok_or_else(|| err("empty archive".into()))
            .and_then(|l| serde_json::from_str(l).map_err(|e| err(format!("header: {e}"))))?;
        if header.kind != KINESIS_HEADER {
            return Err(err(format!("header type is {:?}", header.kind)));
        }
        let records = lines
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<ArchivedRecord>(l)
                    .map_err(|e| err(format!("line {}: {e}", i + 2)))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return Ok(DeadLetter::Kinesis {
            header: Box::new(header),
            records,
        });
    }
    if key.ends_with(".json") {
        let doc: AsyncArchive =
            serde_json::from_slice(bytes).map_err(|e| err(format!("async archive: {e}")))?;
        if doc.kind != ASYNC_FAILURE {
            return Err(err(format!("type is {:?}", doc.kind)));
        }
        return Ok(DeadLetter::Async(doc));
    }
    Err(err("unrecognised key layout".into()))
}
