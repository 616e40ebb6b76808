//! Recognising what arrived on the on-failure queue, on the crate's own types.
//!
//! Lambda sends two documented shapes to an on-failure destination: the record of a discarded
//! Kinesis batch (`requestContext` + `KinesisBatchInfo`, conditions `RetryAttemptsExhausted` /
//! `RecordAgeExceeded`) and the record of a failed asynchronous invocation (`requestContext`,
//! `requestPayload`, `responseContext`, `responsePayload`, conditions `RetriesExhausted` /
//! `EventAgeExceeded`). [`classify`] turns an SQS message body into a [`Failure`]; a body that
//! is neither (not JSON, another shape, or identifiers that are unsafe in an S3 key) is
//! [`Failure::Unknown`] with the reason, which is archived verbatim and never dropped. A body
//! that is an SNS notification envelope (an SNS topic between Lambda and the queue) is unwrapped
//! first.

use serde_json::Value;
use sluice_core::lake::keys::is_safe_component;
use sluice_core::lake::stream::seq_cmp;

/// A recognised or unrecognised failure message.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A Kinesis batch that the event source mapping discarded.
    Kinesis(KinesisFailure),
    /// An asynchronous invocation that failed all attempts.
    Async(AsyncFailure),
    /// Anything else; `reason` says why it was not recognised (never the payload).
    Unknown { reason: String },
}

impl Failure {
    /// `kinesis`, `async` or `unknown`: the `kind` message attribute of the alert.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Kinesis(_) => "kinesis",
            Failure::Async(_) => "async",
            Failure::Unknown { .. } => "unknown",
        }
    }
}

/// The `requestContext` both documented shapes carry.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContext {
    pub request_id: String,
    pub function_arn: String,
    /// `RetryAttemptsExhausted`, `RecordAgeExceeded`, `RetriesExhausted`, `EventAgeExceeded`...
    pub condition: String,
    pub approximate_invoke_count: Option<u64>,
}

/// A discarded Kinesis batch: which records, of which shard, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisFailure {
    pub context: RequestContext,
    /// The failure record's `timestamp` (RFC 3339), when Lambda gave up.
    pub timestamp: String,
    /// `responseContext`, kept as sent (status code, function error).
    pub response_context: Value,
    pub stream_arn: String,
    /// The stream name (from the ARN), checked safe for a key.
    pub stream: String,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub first_arrival: Option<String>,
    pub last_arrival: Option<String>,
    /// Records in the discarded batch.
    pub batch_size: Option<u64>,
}

/// A failed asynchronous invocation, with the event it was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncFailure {
    pub context: RequestContext,
    /// The function name (from the ARN, without qualifier), checked safe for a key.
    pub function: String,
    /// The failure record's `timestamp` (RFC 3339).
    pub timestamp: String,
    /// `YYYY-MM-DD` of `timestamp` (UTC).
    pub date: String,
    /// The whole failure record, as received.
    pub record: Value,
}

impl AsyncFailure {
    /// The original event (`requestPayload`).
    pub fn request_payload(&self) -> &Value {
        &self.record["requestPayload"]
    }
}

fn unknown(reason: impl Into<String>) -> Failure {
    Failure::Unknown {
        reason: reason.into(),
    }
}

/// Classifies one SQS message body.
pub fn classify(body: &str) -> Failure {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return unknown("the message body is not JSON"),
    };
    let v = unwrap_sns(v);
    let Some(obj) = v.as_object() else {
        return unknown("the message body is not a JSON object");
    };
    let Some(rc) = obj.get("requestContext") else {
        return unknown("no requestContext: not a Lambda on-failure record");
    };
    let context = match request_context(rc) {
        Ok(c) => c,
        Err(e) => return unknown(e),
    };
    let timestamp = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(info) = obj.get("KinesisBatchInfo") {
        return match kinesis(context, timestamp, obj.get("responseContext"), info) {
            Ok(k) => Failure::Kinesis(k),
            Err(e) => unknown(e),
        };
    }
    if obj.contains_key("requestPayload") {
        return match asynchronous(context, timestamp, &v) {
            Ok(a) => Failure::Async(a),
            Err(e) => unknown(e),
        };
    }
    unknown("requestContext without KinesisBatchInfo or requestPayload")
}

/// An SNS notification envelope (`Type: Notification`, `Message` holding JSON) is unwrapped.
fn unwrap_sns(v: Value) -> Value {
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        if let Some(inner) = v
            .get("Message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        {
            return inner;
        }
    }
    v
}

fn str_field(v: &Value, name: &str, within: &str) -> Result<String, String> {
    match v.get(name).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{within}.{name} is missing or not a string")),
    }
}

fn request_context(rc: &Value) -> Result<RequestContext, String> {
    Ok(RequestContext {
        request_id: str_field(rc, "requestId", "requestContext")?,
        function_arn: str_field(rc, "functionArn", "requestContext")?,
        condition: str_field(rc, "condition", "requestContext")?,
        approximate_invoke_count: rc.get("approximateInvokeCount").and_then(Value::as_u64),
    })
}

fn is_sequence_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>` → `<name>`.
pub fn stream_name_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, resource) = rest.split_once(":kinesis:")?;
    let (_, name) = resource.split_once(":stream/")?;
    let name = name.split('/').next()?;
    is_safe_component(name).then_some(name)
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` → `<name>`.
pub fn function_name_of_arn(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":function:")?;
    let name = rest.split(':').next()?;
    is_safe_component(name).then_some(name)
}

fn kinesis(
    context: RequestContext,
    timestamp: Option<String>,
    response_context: Option<&Value>,
    info: &Value,
) -> Result<KinesisFailure, String> {
    const W: &str = "KinesisBatchInfo";
    let stream_arn = str_field(info, "streamArn", W)?;
    let stream = stream_name_of_arn(&stream_arn)
        .ok_or("KinesisBatchInfo.streamArn is not a Kinesis stream ARN with a safe name")?
        .to_string();
    let shard_id = str_field(info, "shardId", W)?;
    if !is_safe_component(&shard_id) {
        return Err("KinesisBatchInfo.shardId is not safe in a key".into());
    }
    let start = str_field(info, "startSequenceNumber", W)?;
    let end = str_field(info, "endSequenceNumber", W)?;
    if !is_sequence_number(&start) || !is_sequence_number(&end) {
        return Err("KinesisBatchInfo sequence numbers are not decimal digits".into());
    }
    if seq_cmp(&start, &end) == std::cmp::Ordering::Greater {
        return Err("KinesisBatchInfo.startSequenceNumber is after endSequenceNumber".into());
    }
    Ok(KinesisFailure {
        context,
        timestamp: timestamp.ok_or("timestamp is missing")?,
        response_context: response_context.cloned().unwrap_or(Value::Null),
        stream_arn,
        stream,
        shard_id,
        start_sequence_number: start,
        end_sequence_number: end,
        first_arrival: info
            .get("approximateArrivalOfFirstRecord")
            .and_then(Value::as_str)
            .map(str::to_string),
        last_arrival: info
            .get("approximateArrivalOfLastRecord")
            .and_then(Value::as_str)
            .map(str::to_string),
        batch_size: info.get("batchSize").and_then(Value::as_u64),
    })
}

fn asynchronous(
    context: RequestContext,
    timestamp: Option<String>,
    record: &Value,
) -> Result<AsyncFailure, String> {
    let function = function_name_of_arn(&context.function_arn)
        .ok_or("requestContext.functionArn is not a Lambda function ARN with a safe name")?
        .to_string();
    if !is_safe_component(&context.request_id) {
        return Err("requestContext.requestId is not safe in a key".into());
    }
    let timestamp = timestamp.ok_or("timestamp is missing")?;
    let date = chrono::DateTime::parse_from_rfc3339(&timestamp)
        .map_err(|_| "timestamp is not RFC 3339")?
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%d")
        .to_string();
    Ok(AsyncFailure {
        context,
        function,
        timestamp,
        date,
        record: record.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinesis_record() -> Value {
        json!({
            "requestContext": {
                "requestId": "c9b8fa9f-5a7f-4d2b-af9c-0c604cde93a5",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:kinesis-ingest",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 3
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2025-11-22T10:20:06.021Z",
            "KinesisBatchInfo": {
                "shardId": "shardId-000000000001",
                "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
                "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
                "approximateArrivalOfFirstRecord": "2025-11-22T10:15:04.835Z",
                "approximateArrivalOfLastRecord": "2025-11-22T10:15:05.580Z",
                "batchSize": 500,
                "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events"
            }
        })
    }

    #[test]
    fn kinesis_shape() {
        let Failure::Kinesis(k) = classify(&kinesis_record().to_string()) else {
            panic!("not recognised")
        };
        assert_eq!(k.stream, "sluice-events");
        assert_eq!(k.shard_id, "shardId-000000000001");
        assert_eq!(k.batch_size, Some(500));
        assert_eq!(k.context.condition, "RetryAttemptsExhausted");
        assert_eq!(k.context.approximate_invoke_count, Some(3));
        assert_eq!(k.response_context["functionError"], "Unhandled");
    }

    #[test]
    fn sns_envelope_is_unwrapped() {
        let env = json!({"Type": "Notification", "MessageId": "m", "Message": kinesis_record().to_string()});
        assert_eq!(classify(&env.to_string()).kind(), "kinesis");
    }

    #[test]
    fn async_shape() {
        let r = json!({
            "version": "1.0",
            "timestamp": "2025-11-22T10:16:05.568Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-4a8e-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:s3-transform:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"Records": []},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "boom"}
        });
        let Failure::Async(a) = classify(&r.to_string()) else {
            panic!("not recognised")
        };
        assert_eq!(a.function, "s3-transform");
        assert_eq!(a.date, "2025-11-22");
        assert_eq!(a.request_payload(), &json!({"Records": []}));
    }

    #[test]
    fn unknowns_say_why() {
        for (body, why) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"hello":1}"#, "no requestContext"),
        ] {
            match classify(body) {
                Failure::Unknown { reason } => assert!(reason.contains(why), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
        let mut bad = kinesis_record();
        bad["KinesisBatchInfo"]["shardId"] = json!("../../etc");
        assert_eq!(classify(&bad.to_string()).kind(), "unknown");
        let mut bad = kinesis_record();
        bad["KinesisBatchInfo"]["startSequenceNumber"] = json!("9");
        bad["KinesisBatchInfo"]["endSequenceNumber"] = json!("10");
        assert_eq!(classify(&bad.to_string()).kind(), "kinesis");
        bad["KinesisBatchInfo"]["startSequenceNumber"] = json!("11");
        assert_eq!(classify(&bad.to_string()).kind(), "unknown");
    }

    #[test]
    fn arns_and_sequence_order() {
        assert_eq!(
            stream_name_of_arn("arn:aws:kinesis:eu-west-1:1:stream/a-b_c.d"),
            Some("a-b_c.d")
        );
        assert_eq!(stream_name_of_arn("arn:aws:sqs:eu-west-1:1:q"), None);
        assert_eq!(
            function_name_of_arn("arn:aws:lambda:us-east-1:1:function:f:prod"),
            Some("f")
        );
    }
}
