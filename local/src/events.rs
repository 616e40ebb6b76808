//! Builders of Lambda event JSON in AWS's documented shapes, deserialised into the same types
//! the runtime hands the handlers, and loaders for the committed samples in `events/`.

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine;
use serde_json::{json, Value};

use crate::services::workspace_root;

/// One record for [`kinesis_event`].
#[derive(Debug, Clone)]
pub struct KRecord {
    pub seq: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// Approximate arrival, epoch seconds with millisecond fraction.
    pub arrival: f64,
}

impl KRecord {
    /// A record with sequence number `seq`, partition key `pk-<seq>` and the given arrival.
    pub fn new(seq: u64, data: impl Into<Vec<u8>>, arrival: f64) -> KRecord {
        KRecord {
            seq: format!("4959{seq:052}"),
            partition_key: format!("pk-{seq}"),
            data: data.into(),
            arrival,
        }
    }
}

/// The JSON of a Kinesis event for one shard, exactly as Lambda delivers it.
pub fn kinesis_event_json(stream_arn: &str, shard: &str, records: &[KRecord]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let recs: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.seq,
                    "data": b64.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.seq),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/kinesis-ingest",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// A typed Kinesis event for one shard.
pub fn kinesis_event(shard: &str, records: &[KRecord]) -> KinesisEvent {
    let v = kinesis_event_json(
        "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events",
        shard,
        records,
    );
    serde_json::from_value(v).expect("kinesis event shape")
}

/// Reads a committed sample from `events/`.
pub fn sample(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
