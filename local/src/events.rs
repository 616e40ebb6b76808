//! Builders of Lambda event JSON (Kinesis batches, S3 notifications) in AWS's documented shapes, deserialised into the same types
//! the runtime hands the handlers, and loaders for the committed samples in `events/`.

use base64::Engine;
use kinesis_ingest::event::arrival_micros;
use kinesis_ingest::KinesisBatch;
use serde_json::{json, Value};
use sluice_core::lake::stream::StreamRecord;

use crate::services::workspace_root;

/// The shard of [`record`]'s records.
pub const SHARD: &str = "shardId-000000000000";

/// A record on [`SHARD`] with sequence number `4959<seq, 52 digits>`, partition key `pk-<seq>`,
/// arriving at `arrival` (epoch seconds, millisecond fraction).
pub fn record(seq: u64, data: impl Into<Vec<u8>>, arrival: f64) -> StreamRecord {
    StreamRecord {
        shard: SHARD.into(),
        seq: format!("4959{seq:052}"),
        partition_key: format!("pk-{seq}"),
        arrival_micros: arrival_micros(arrival),
        data: data.into(),
    }
}

/// The JSON of a Kinesis event, exactly as Lambda delivers it (one shard per event in AWS;
/// each record's `eventID` names its own shard).
pub fn kinesis_event_json(stream_arn: &str, records: &[StreamRecord]) -> Value {
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
                    "approximateArrivalTimestamp": r.arrival_micros as f64 / 1e6,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard, r.seq),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/kinesis-ingest",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// A Kinesis event, read from its JSON the way the Lambda entry point reads it.
pub fn kinesis_event(records: &[StreamRecord]) -> KinesisBatch {
    let v = kinesis_event_json(
        "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events",
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

/// Encodes a key the way S3 event notifications do (the lake contract's encoder).
pub fn s3_event_key(key: &str) -> String {
    sluice_core::lake::keys::encode_s3_event_key(key)
}

/// The JSON of an S3 ObjectCreated:Put notification for one object, in AWS's shape.
pub fn s3_event_json(bucket: &str, key: &str, size: usize) -> Value {
    sluice_core::notify::object_created_json(
        bucket,
        key,
        size as u64,
        "2025-11-22T10:00:01.000Z",
        "raw-to-transform",
    )
}

/// One SQS message for [`sqs_event_json`].
#[derive(Debug, Clone)]
pub struct SqsMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

/// The JSON of an SQS event as Lambda's SQS event source delivers it.
pub fn sqs_event_json(queue_arn: &str, messages: &[SqsMessage]) -> Value {
    let recs: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1763805600000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1763805600001"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// The record Lambda sends to an on-failure destination after an asynchronous invocation
/// exhausted its retries (AWS's documented shape).
pub fn async_failure_json(
    function: &str,
    request_id: &str,
    timestamp: &str,
    request_payload: &Value,
    error_type: &str,
    error_message: &str,
) -> Value {
    json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": request_payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "responsePayload": {
            "errorType": error_type,
            "errorMessage": error_message
        }
    })
}
