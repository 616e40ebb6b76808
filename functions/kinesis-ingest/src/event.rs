//! The Kinesis event at the edge: Lambda's JSON payload → [`StreamRecord`]s, and the handler's
//! [`BatchOutcome`] → Lambda's `KinesisEventResponse`.
//!
//! Read with sluice's own types, which keep only what the pipeline uses (shard from `eventID`,
//! sequence number, partition key, data, arrival time) and decode `data` straight from the
//! payload text. `approximateArrivalTimestamp` is epoch seconds with a fraction that AWS
//! prints with as few digits as needed (`1763806650.98` is .980 s): it is read as a number and
//! rounded to the millisecond, so every spelling of the same instant gives the same arrival.

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use sluice_core::lake::stream::StreamRecord;

/// Shard name used when `eventID` carries none.
pub const UNKNOWN_SHARD: &str = "unknown-shard";

/// One Lambda invocation's Kinesis batch, in delivery order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "WireEvent")]
pub struct KinesisBatch {
    pub records: Vec<StreamRecord>,
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "Records", default)]
    records: Vec<WireRecord>,
}

#[derive(Deserialize)]
struct WireRecord {
    #[serde(rename = "eventID", default)]
    event_id: Option<String>,
    kinesis: WireKinesis,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireKinesis {
    partition_key: String,
    sequence_number: String,
    #[serde(deserialize_with = "base64_data")]
    data: Vec<u8>,
    approximate_arrival_timestamp: f64,
}

impl From<WireEvent> for KinesisBatch {
    fn from(w: WireEvent) -> Self {
        let records = w
            .records
            .into_iter()
            .map(|r| StreamRecord {
                shard: shard_of(r.event_id.as_deref()),
                seq: r.kinesis.sequence_number,
                partition_key: r.kinesis.partition_key,
                arrival_micros: arrival_micros(r.kinesis.approximate_arrival_timestamp),
                data: r.kinesis.data,
            })
            .collect();
        KinesisBatch { records }
    }
}

/// What one batch did: the stream records Lambda must deliver again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Sequence numbers of the stream records with a line in an object that could not be
    /// written, in batch order: reported to Lambda as batch item failures.
    pub failed: Vec<String>,
}

/// The handler's outcome as Lambda's response: one batch item failure per record to deliver
/// again (Lambda retries from the lowest).
impl From<BatchOutcome> for KinesisEventResponse {
    fn from(outcome: BatchOutcome) -> Self {
        let mut response = KinesisEventResponse::default();
        response.batch_item_failures = outcome
            .failed
            .into_iter()
            .map(|seq| {
                let mut f = KinesisBatchItemFailure::default();
                f.item_identifier = Some(seq);
                f
            })
            .collect();
        response
    }
}

/// The shard id is the part of `eventID` (`shardId-000000000000:4959...`) before `:`.
fn shard_of(event_id: Option<&str>) -> String {
    event_id
        .and_then(|id| id.split_once(':').map(|(s, _)| s))
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN_SHARD)
        .to_string()
}

/// Epoch seconds (any number of fraction digits) → epoch microseconds at millisecond precision.
/// Out-of-range values saturate; they can only move a record's arrival, never fail the batch.
pub fn arrival_micros(secs: f64) -> i64 {
    let millis = (secs * 1000.0).round();
    if millis.is_nan() {
        return 0;
    }
    (millis as i64).saturating_mul(1000)
}

fn base64_data<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct B64;
    impl Visitor<'_> for B64 {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("base64 text")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| E::custom(format_args!("kinesis.data is not valid base64: {e}")))
        }
    }
    d.deserialize_str(B64)
}

impl From<KinesisEvent> for KinesisBatch {
    /// For callers that already hold `aws_lambda_events` types. Their arrival time is only as
    /// good as that crate's reading of the fraction; the Lambda entry point reads the JSON itself.
    fn from(e: KinesisEvent) -> Self {
        let records = e.records.into_iter().map(from_typed).collect();
        KinesisBatch { records }
    }
}

fn from_typed(r: KinesisEventRecord) -> StreamRecord {
    StreamRecord {
        shard: shard_of(r.event_id.as_deref()),
        seq: r.kinesis.sequence_number,
        partition_key: r.kinesis.partition_key,
        arrival_micros: r.kinesis.approximate_arrival_timestamp.0.timestamp_millis() * 1000,
        data: r.kinesis.data.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: &str, data: &str, event_id: &str) -> String {
        format!(
            r#"{{"Records":[{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"pk-1",
            "sequenceNumber":"49590338271490256608559692538361571095921575989136588898",
            "data":"{data}","approximateArrivalTimestamp":{ts}}},
            "eventSource":"aws:kinesis","eventVersion":"1.0",{event_id}
            "eventName":"aws:kinesis:record","awsRegion":"us-east-1",
            "eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s"}}]}}"#
        )
    }

    fn parse(ts: &str) -> StreamRecord {
        let text = event(
            ts,
            "eyJhIjoxfQ==",
            r#""eventID":"shardId-000000000007:4959","#,
        );
        let mut b: KinesisBatch = serde_json::from_str(&text).expect("event");
        b.records.remove(0)
    }

    #[test]
    fn reads_the_fields_the_pipeline_uses() {
        let r = parse("1763806650.98");
        assert_eq!(r.shard, "shardId-000000000007");
        assert_eq!(r.partition_key, "pk-1");
        assert_eq!(r.data, br#"{"a":1}"#);
        assert!(r.seq.starts_with("4959033827"));
    }

    #[test]
    fn arrival_fraction_is_seconds_whatever_its_digits() {
        let base = 1_763_806_650_000_000i64;
        assert_eq!(parse("1763806650.98").arrival_micros, base + 980_000);
        assert_eq!(parse("1763806650.980").arrival_micros, base + 980_000);
        assert_eq!(parse("1763806650.9").arrival_micros, base + 900_000);
        assert_eq!(parse("1763806650.098").arrival_micros, base + 98_000);
        assert_eq!(parse("1763806650.0981").arrival_micros, base + 98_000);
        assert_eq!(parse("1763806650.1236").arrival_micros, base + 124_000);
        assert_eq!(parse("1763806650").arrival_micros, base);
        assert_eq!(parse("1.76380665098e9").arrival_micros, base + 980_000);
        assert_eq!(arrival_micros(1e300), i64::MAX);
        assert_eq!(arrival_micros(-1e300), i64::MIN);
    }

    #[test]
    fn shard_falls_back_without_event_id() {
        let text = event("1763806650.5", "eyJhIjoxfQ==", "");
        let b: KinesisBatch = serde_json::from_str(&text).expect("event");
        assert_eq!(b.records[0].shard, UNKNOWN_SHARD);
        let text = event("1763806650.5", "eyJhIjoxfQ==", r#""eventID":"no-colon","#);
        let b: KinesisBatch = serde_json::from_str(&text).expect("event");
        assert_eq!(b.records[0].shard, UNKNOWN_SHARD);
    }

    #[test]
    fn bad_data_is_a_clear_error() {
        let text = event("1763806650.5", "not base64!", r#""eventID":"s:1","#);
        let err = serde_json::from_str::<KinesisBatch>(&text).expect_err("bad base64");
        assert!(err.to_string().contains("not valid base64"), "{err}");
        let err = serde_json::from_str::<KinesisBatch>(r#"{"Records":[{"kinesis":{}}]}"#)
            .expect_err("missing fields");
        assert!(err.to_string().contains("missing field"), "{err}");
        let empty: KinesisBatch = serde_json::from_str("{}").expect("no records");
        assert!(empty.records.is_empty());
    }

    #[test]
    fn typed_events_convert_the_same_way() {
        // A fraction with three significant digits: the one spelling aws_lambda_events reads
        // correctly (it takes the printed fraction digits as milliseconds: .5 and .500 → 5 ms).
        let text = event(
            "1763806650.123",
            "eyJhIjoxfQ==",
            r#""eventID":"shardId-1:9","#,
        );
        let ours: KinesisBatch = serde_json::from_str(&text).expect("event");
        let typed: KinesisEvent = serde_json::from_str(&text).expect("typed");
        assert_eq!(KinesisBatch::from(typed), ours);
    }
}
