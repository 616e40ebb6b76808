//! The quarantine zone's lines: why a record was set aside, where it came from, and its bytes.
//!
//! Both stages write one [`QuarantineLine`] per rejected record into gzip NDJSON objects:
//! kinesis-ingest under `quarantine/<dataset|_unrouted>/dt=/hr=/` with the record's stream
//! position ([`Origin::Stream`]), s3-transform beside the source's other outputs with the file
//! and line ([`Origin::Object`]). A whole object s3-transform cannot read is copied verbatim with
//! an [`ObjectReason`] beside it. The payload is always kept (base64), so nothing is lost, and
//! reasons never quote payload values. [`RejectKind`] is the one classification of both.
//!
//! `sluice quarantine requeue` puts selected lines back into the stream and records which in a
//! [`RequeueNote`] beside the object ([`requeued_key`]), so a second run never sends them again.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The classified reasons a record (or, in s3-transform, a whole object) is quarantined: one
/// enum for both stages, written to quarantine lines as [`RejectKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// A record that starts with the KPL magic but is not a valid aggregate
    /// ([`crate::kpl::KplError`]).
    CorruptAggregate,
    /// A record (or a CSV cell) that is not valid UTF-8.
    InvalidUtf8,
    /// A record that is empty or not valid JSON (a lone surrogate escape included).
    InvalidJson,
    /// Valid JSON that is not an object (an array, a string, a number...).
    NotAnObject,
    /// A record (or KPL sub-record) larger than the pipeline's `max_record_bytes`.
    Oversized,
    /// The routing field is missing, null or not a string.
    Unrouted,
    /// The routing value matches no dataset; in s3-transform, a raw key that names none.
    UnknownDataset,
    /// A top-level key starts with the reserved [`crate::config::RESERVED_PREFIX`].
    ReservedField,
    /// A required field is missing or null (empty text is null for non-string types).
    MissingField,
    /// A value does not fit its field's declared type: the wrong JSON type, or text that does
    /// not parse as it.
    WrongType,
    /// The event-time field's value does not coerce to a timestamp (wrong type, unparseable or
    /// unstorable).
    BadEventTime,
    /// The event time is before 2000-01-01 or more than `max_future_skew_secs` after the
    /// record's arrival.
    EventTimeOutOfRange,
    /// A declared value no sink can store (NUL in text or JSON, a year outside 0001–9999).
    UnstorableValue,
    /// Nested deeper than [`crate::jsontext::MAX_NESTING`].
    TooDeep,
    /// A line of a file in raw/ longer than s3-transform's line cap.
    LineTooLong,
    /// A CSV row that does not parse or does not match the header.
    InvalidCsv,
    /// A whole object over the decompressed-size cap (a gzip bomb, a huge file).
    TooLarge,
    /// A whole object that cannot be decompressed (truncated gzip, not gzip).
    Corrupt,
    /// A CSV object whose header cannot be read.
    BadHeader,
    /// A whole object of a type s3-transform does not read.
    Unsupported,
}

impl RejectKind {
    /// Stable snake_case name, written to quarantine lines and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::CorruptAggregate => "corrupt_aggregate",
            RejectKind::InvalidUtf8 => "invalid_utf8",
            RejectKind::InvalidJson => "invalid_json",
            RejectKind::NotAnObject => "not_an_object",
            RejectKind::Oversized => "oversized",
            RejectKind::Unrouted => "unrouted",
            RejectKind::UnknownDataset => "unknown_dataset",
            RejectKind::ReservedField => "reserved_field",
            RejectKind::MissingField => "missing_field",
            RejectKind::WrongType => "wrong_type",
            RejectKind::BadEventTime => "bad_event_time",
            RejectKind::EventTimeOutOfRange => "event_time_out_of_range",
            RejectKind::UnstorableValue => "unstorable_value",
            RejectKind::TooDeep => "too_deep",
            RejectKind::LineTooLong => "line_too_long",
            RejectKind::InvalidCsv => "invalid_csv",
            RejectKind::TooLarge => "too_large",
            RejectKind::Corrupt => "corrupt",
            RejectKind::BadHeader => "bad_header",
            RejectKind::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RejectKind {
    /// Every kind, in declaration order.
    pub const ALL: [RejectKind; 20] = [
        RejectKind::CorruptAggregate,
        RejectKind::InvalidUtf8,
        RejectKind::InvalidJson,
        RejectKind::NotAnObject,
        RejectKind::Oversized,
        RejectKind::Unrouted,
        RejectKind::UnknownDataset,
        RejectKind::ReservedField,
        RejectKind::MissingField,
        RejectKind::WrongType,
        RejectKind::BadEventTime,
        RejectKind::EventTimeOutOfRange,
        RejectKind::UnstorableValue,
        RejectKind::TooDeep,
        RejectKind::LineTooLong,
        RejectKind::InvalidCsv,
        RejectKind::TooLarge,
        RejectKind::Corrupt,
        RejectKind::BadHeader,
        RejectKind::Unsupported,
    ];
}

/// One line of a quarantine object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineLine<'a> {
    /// The classification, written as its snake_case name ([`RejectKind::as_str`]).
    pub error_kind: RejectKind,
    /// Why, in words; never quotes payload values.
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
    /// Where the record came from.
    #[serde(flatten, borrow)]
    pub origin: Origin<'a>,
    /// The record's bytes exactly as received, base64 (standard alphabet, padded).
    pub payload_b64: String,
}

/// Where a quarantined record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Origin<'a> {
    /// A user record of a Kinesis record, rejected by kinesis-ingest.
    Stream {
        /// The dataset it was routed to, when routing succeeded.
        #[serde(borrow)]
        dataset: Option<Cow<'a, str>>,
        /// The Kinesis shard id.
        #[serde(borrow)]
        shard: Cow<'a, str>,
        /// The Kinesis record's sequence number.
        #[serde(borrow)]
        seq: Cow<'a, str>,
        /// Index of the user record in a KPL aggregate or NDJSON record (0 otherwise).
        sub: u32,
        /// The user record's partition key (a KPL sub-record's own, else the Kinesis record's).
        #[serde(borrow)]
        partition_key: Cow<'a, str>,
        /// Kinesis approximate arrival time, RFC 3339 UTC with milliseconds.
        #[serde(borrow)]
        arrival: Cow<'a, str>,
    },
    /// A record of a file in the raw zone, rejected by s3-transform.
    Object {
        /// The source object's key.
        #[serde(borrow)]
        source: Cow<'a, str>,
        /// 1-based line, JSON array element or CSV record number.
        line: usize,
    },
}

impl<'a> QuarantineLine<'a> {
    /// A line for `payload`, base64-encoding it.
    pub fn new(kind: RejectKind, reason: &'a str, origin: Origin<'a>, payload: &[u8]) -> Self {
        QuarantineLine {
            error_kind: kind,
            reason: Cow::Borrowed(reason),
            origin,
            payload_b64: base64::engine::general_purpose::STANDARD.encode(payload),
        }
    }

    /// Reads one line back.
    pub fn parse(text: &'a str) -> Result<QuarantineLine<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The record's bytes.
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.payload_b64)
    }
}

/// The `.reason.json` beside a whole object copied into the quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectReason<'a> {
    /// Why the whole object was set aside (`too_large`, `corrupt`, `bad_header`,
    /// `unsupported`, `unknown_dataset`), written as [`RejectKind::as_str`].
    pub error_kind: RejectKind,
    /// Why, in words.
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
    /// The source object's key.
    #[serde(borrow)]
    pub source: Cow<'a, str>,
}

/// Suffix of the [`RequeueNote`] beside a quarantine object.
pub const REQUEUED_SUFFIX: &str = ".requeued.json";

/// The key of the [`RequeueNote`] of the quarantine object `key`.
pub fn requeued_key(key: &str) -> String {
    format!("{key}{REQUEUED_SUFFIX}")
}

/// Whether a quarantine key holds [`QuarantineLine`]s (gzip NDJSON written by either stage),
/// rather than an object copy, its [`ObjectReason`] or a [`RequeueNote`].
pub fn holds_lines(key: &str) -> bool {
    key.ends_with(super::keys::RAW_EXTENSION) && !key.contains("/objects/")
}

/// Which lines of one quarantine object have been put back into the stream: written by
/// `sluice quarantine requeue` after the stream accepted them, read before every requeue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueNote {
    /// 1-based line numbers of the object, ascending, each once.
    pub lines: Vec<usize>,
    /// Every requeue that sent lines of the object, oldest first.
    pub runs: Vec<RequeueRun>,
}

/// One requeue of lines of a quarantine object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueRun {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The stream the lines were put into (name or ARN).
    pub stream: String,
    /// How many lines this run sent.
    pub sent: usize,
}

impl RequeueNote {
    /// Whether line `n` has been requeued.
    pub fn has(&self, n: usize) -> bool {
        self.lines.binary_search(&n).is_ok()
    }

    /// Records that `lines` were put into `stream` at `at`.
    pub fn record(&mut self, lines: &[usize], stream: &str, at: String) {
        self.lines.extend_from_slice(lines);
        self.lines.sort_unstable();
        self.lines.dedup();
        self.runs.push(RequeueRun {
            at,
            stream: stream.to_string(),
            sent: lines.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serde_names() {
        for k in RejectKind::ALL {
            let json = serde_json::to_string(&k).expect("json");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            let back: RejectKind = serde_json::from_str(&json).expect("back");
            assert_eq!(back, k);
        }
    }

    #[test]
    fn both_origins_write_their_fields_in_order_and_read_back() {
        let stream = QuarantineLine::new(
            RejectKind::InvalidJson,
            "not JSON",
            Origin::Stream {
                dataset: None,
                shard: "shardId-000000000000".into(),
                seq: "49".into(),
                sub: 2,
                partition_key: "pk".into(),
                arrival: "2025-11-22T10:00:00.000Z".into(),
            },
            b"nope",
        );
        let text = serde_json::to_string(&stream).expect("json");
        assert_eq!(
            text,
            r#"{"error_kind":"invalid_json","reason":"not JSON","dataset":null,"shard":"shardId-000000000000","seq":"49","sub":2,"partition_key":"pk","arrival":"2025-11-22T10:00:00.000Z","payload_b64":"bm9wZQ=="}"#
        );
        assert_eq!(QuarantineLine::parse(&text).expect("parse"), stream);
        assert_eq!(stream.payload().expect("b64"), b"nope");

        let object = QuarantineLine::new(
            RejectKind::WrongType,
            "field amount: expected double",
            Origin::Object {
                source: "raw/purchases/a.csv".into(),
                line: 3,
            },
            b"a,b",
        );
        let text = serde_json::to_string(&object).expect("json");
        assert_eq!(
            text,
            r#"{"error_kind":"wrong_type","reason":"field amount: expected double","source":"raw/purchases/a.csv","line":3,"payload_b64":"YSxi"}"#
        );
        assert_eq!(QuarantineLine::parse(&text).expect("parse"), object);
    }

    #[test]
    fn a_requeue_note_keeps_lines_sorted_once_and_every_run() {
        let mut note = RequeueNote::default();
        note.record(&[5, 2], "s", "t1".into());
        note.record(&[2, 9], "s", "t2".into());
        assert_eq!(note.lines, vec![2, 5, 9]);
        assert!(note.has(5) && !note.has(3));
        assert_eq!(note.runs.len(), 2);
        assert_eq!(note.runs[1].sent, 2);
        let key = "quarantine/purchases/dt=2026-01-01/hr=00/a-1-2.json.gz";
        assert!(holds_lines(key));
        assert!(!holds_lines(&requeued_key(key)));
        assert!(!holds_lines("quarantine/purchases/objects/x.json.gz"));
    }
}
