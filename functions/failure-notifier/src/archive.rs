//! Building dead-letter archives (pure). The zone's keys and formats are the lake contract's:
//! `sluice_core::lake::dead_letter`, re-exported here.
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
//! Keys and bytes depend only on the failure message (and, for Kinesis, the records read back),
//! never on the wall clock, so a redelivered message rewrites the same key with the same bytes.
//! The `sluice` CLI reads these formats back through [`parse_dead_letter`].

use base64::Engine;
use sha2::{Digest, Sha256};
pub use sluice_core::lake::dead_letter::{
    parse_dead_letter, ArchivedRecord, AsyncArchive, DeadLetter, KinesisHeader, ParseError,
    ASYNC_FAILURE, CONTENT_TYPE_GZ, CONTENT_TYPE_JSON, CONTENT_TYPE_TEXT, KINESIS_HEADER,
    KINESIS_RECORD,
};
use sluice_core::lake::keys::is_safe_component;
use sluice_core::lake::stream::{seq_cmp, StreamRecord};
use sluice_core::ndjson::{gzip, push_json_line};
use sluice_core::schema::format_micros;

use crate::error::{Error, Result};
use crate::failure::{AsyncFailure, KinesisFailure};

/// gzip level of Kinesis archives.
const GZIP_LEVEL: u32 = 6;

/// What reading a range back gave: the records, or why they could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRead {
    Records(Vec<StreamRecord>),
    /// The shard could not be read for a reason a retry will not fix (stream deleted, ...).
    Unreadable(String),
}

/// One object to write to the dead-letter zone, and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Records (Kinesis) or events (async: 1) archived.
    pub records: u64,
    /// Records known to be missing from a Kinesis archive.
    pub missing: Option<u64>,
    pub missing_reason: Option<String>,
}

/// The key of a Kinesis archive.
pub fn kinesis_key(prefix: &str, f: &KinesisFailure) -> String {
    sluice_core::lake::dead_letter::kinesis_key(
        prefix,
        &f.stream,
        &f.shard_id,
        &f.start_sequence_number,
        &f.end_sequence_number,
    )
}

/// Builds the Kinesis archive from the records read back.
pub fn kinesis_archive(prefix: &str, f: &KinesisFailure, read: &RangeRead) -> Result<Archive> {
    let (records, unreadable): (Vec<&StreamRecord>, Option<&str>) = match read {
        RangeRead::Records(r) => (
            r.iter()
                .filter(|r| {
                    seq_cmp(&r.seq, &f.start_sequence_number).is_ge()
                        && seq_cmp(&r.seq, &f.end_sequence_number).is_le()
                })
                .collect(),
            None,
        ),
        RangeRead::Unreadable(why) => (Vec::new(), Some(why.as_str())),
    };
    let found = records.len() as u64;
    let first_is_start = records
        .first()
        .is_some_and(|r| seq_cmp(&r.seq, &f.start_sequence_number).is_eq());
    let (missing, missing_reason) = match (f.batch_size, unreadable) {
        (Some(n), Some(why)) => (Some(n), Some(format!("records unreadable: {why}"))),
        (None, Some(why)) => (None, Some(format!("records unreadable: {why}"))),
        (Some(n), None) if found < n => (
            Some(n - found),
            Some(format!(
                "{} of {n} records are no longer in the stream (trimmed by its retention period, or the stream was re-created)",
                n - found
            )),
        ),
        (None, None) if !first_is_start => (
            None,
            Some("the first record of the range is no longer in the stream (trimmed)".into()),
        ),
        _ => (Some(0), None),
    };
    let header = KinesisHeader {
        kind: KINESIS_HEADER.into(),
        stream_arn: f.stream_arn.clone(),
        stream: f.stream.clone(),
        shard: f.shard_id.clone(),
        start_seq: f.start_sequence_number.clone(),
        end_seq: f.end_sequence_number.clone(),
        condition: f.context.condition.clone(),
        request_id: f.context.request_id.clone(),
        function_arn: f.context.function_arn.clone(),
        approximate_invoke_count: f.context.approximate_invoke_count,
        failed_at: f.timestamp.clone(),
        first_arrival: f.first_arrival.clone(),
        last_arrival: f.last_arrival.clone(),
        batch_size: f.batch_size,
        records_archived: found,
        records_missing: missing,
        missing_reason: missing_reason.clone(),
        response_context: f.response_context.clone(),
    };
    let mut lines = Vec::new();
    push_json_line(&mut lines, &header)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for r in &records {
        push_json_line(
            &mut lines,
            &ArchivedRecord {
                kind: KINESIS_RECORD.into(),
                seq: r.seq.clone(),
                partition_key: r.partition_key.clone(),
                arrival: format_micros(r.arrival_micros),
                data_b64: b64.encode(&r.data),
            },
        )?;
    }
    Ok(Archive {
        key: kinesis_key(prefix, f),
        body: gzip(&lines, GZIP_LEVEL)?,
        content_type: CONTENT_TYPE_GZ,
        records: found,
        missing,
        missing_reason,
    })
}

/// Builds the archive of a failed asynchronous invocation.
pub fn async_archive(prefix: &str, f: &AsyncFailure) -> Result<Archive> {
    let doc = AsyncArchive {
        kind: ASYNC_FAILURE.into(),
        function: f.function.clone(),
        function_arn: f.context.function_arn.clone(),
        request_id: f.context.request_id.clone(),
        condition: f.context.condition.clone(),
        approximate_invoke_count: f.context.approximate_invoke_count,
        failed_at: f.timestamp.clone(),
        record: f.record.clone(),
    };
    let mut body = serde_json::to_vec(&doc).map_err(|e| Error::Encode(e.to_string()))?;
    body.push(b'\n');
    Ok(Archive {
        key: sluice_core::lake::dead_letter::async_key(
            prefix,
            &f.function,
            &f.date,
            &f.context.request_id,
        ),
        body,
        content_type: CONTENT_TYPE_JSON,
        records: 1,
        missing: None,
        missing_reason: None,
    })
}

/// Archives an unrecognised message verbatim, keyed by its SQS message id (or, if that is
/// absent or unsafe, the SHA-256 of the body).
pub fn unknown_archive(prefix: &str, message_id: Option<&str>, body: &str) -> Archive {
    let id = match message_id {
        Some(id) if is_safe_component(id) => id.to_string(),
        _ => format!("sha256-{:x}", Sha256::digest(body.as_bytes())),
    };
    let is_json = serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok();
    let content_type = if is_json {
        CONTENT_TYPE_JSON
    } else {
        CONTENT_TYPE_TEXT
    };
    Archive {
        key: sluice_core::lake::dead_letter::unknown_key(prefix, &id, is_json),
        body: body.as_bytes().to_vec(),
        content_type,
        records: 1,
        missing: None,
        missing_reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{classify, Failure};
    use serde_json::json;

    fn failure(start: &str, end: &str, batch: u64) -> KinesisFailure {
        let body = json!({
            "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-east-1:1:function:kinesis-ingest", "condition": "RecordAgeExceeded", "approximateInvokeCount": 1},
            "responseContext": {"statusCode": 200},
            "version": "1.0",
            "timestamp": "2025-11-22T10:20:00.000Z",
            "KinesisBatchInfo": {"shardId": "shardId-000000000000", "startSequenceNumber": start, "endSequenceNumber": end, "batchSize": batch, "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events"}
        });
        match classify(&body.to_string()) {
            Failure::Kinesis(k) => k,
            other => panic!("{other:?}"),
        }
    }

    fn rec(seq: &str) -> StreamRecord {
        StreamRecord {
            shard: "shardId-000000000000".into(),
            seq: seq.into(),
            partition_key: format!("pk-{seq}"),
            data: format!("{{\"n\":{seq}}}").into_bytes(),
            arrival_micros: 1_763_806_500_000_000,
        }
    }

    fn parse(a: &Archive) -> (Box<KinesisHeader>, Vec<ArchivedRecord>) {
        match parse_dead_letter("dead-letter/", &a.key, &a.body) {
            Ok(DeadLetter::Kinesis { header, records }) => (header, records),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kinesis_archive_round_trips_and_filters_the_range() {
        let f = failure("3", "5", 3);
        let read = RangeRead::Records(vec![rec("3"), rec("4"), rec("5"), rec("6")]);
        let a = kinesis_archive("dead-letter/", &f, &read).expect("archive");
        assert_eq!(
            a.key,
            "dead-letter/kinesis/events/shardId-000000000000/3-5.json.gz"
        );
        let again = kinesis_archive("dead-letter/", &f, &read).expect("archive");
        assert_eq!(a.body, again.body, "deterministic bytes");
        let (h, r) = parse(&a);
        assert_eq!(h.records_archived, 3);
        assert_eq!(h.records_missing, Some(0));
        assert_eq!(h.missing_reason, None);
        assert_eq!(h.condition, "RecordAgeExceeded");
        assert_eq!(
            r.iter().map(|r| r.seq.as_str()).collect::<Vec<_>>(),
            ["3", "4", "5"]
        );
        assert_eq!(r[0].data().expect("b64"), b"{\"n\":3}");
        assert_eq!(r[0].arrival, "2025-11-22T10:15:00.000Z");
    }

    #[test]
    fn trimmed_and_unreadable_ranges_are_reported() {
        let f = failure("1", "5", 5);
        let a = kinesis_archive(
            "dead-letter/",
            &f,
            &RangeRead::Records(vec![rec("4"), rec("5")]),
        )
        .expect("archive");
        assert_eq!((a.records, a.missing), (2, Some(3)));
        assert!(a.missing_reason.as_deref().unwrap_or("").contains("3 of 5"));
        let a = kinesis_archive(
            "dead-letter/",
            &f,
            &RangeRead::Unreadable("ResourceNotFoundException: gone".into()),
        )
        .expect("archive");
        let (h, r) = parse(&a);
        assert!(r.is_empty());
        assert_eq!(h.records_missing, Some(5));
        assert!(h
            .missing_reason
            .unwrap_or_default()
            .contains("ResourceNotFound"));
    }

    #[test]
    fn unknown_and_async_keys() {
        let u = unknown_archive("dead-letter/", Some("0f3c-1"), "hello");
        assert_eq!(u.key, "dead-letter/unknown/0f3c-1.txt");
        assert_eq!(u.body, b"hello");
        let u = unknown_archive("dead-letter/", Some("../x"), "{}");
        assert!(u.key.starts_with("dead-letter/unknown/sha256-") && u.key.ends_with(".json"));
        assert_eq!(
            parse_dead_letter("dead-letter/", &u.key, &u.body),
            Ok(DeadLetter::Unknown)
        );
        assert!(parse_dead_letter("dead-letter/", "raw/x.json", b"{}").is_err());
    }
}
