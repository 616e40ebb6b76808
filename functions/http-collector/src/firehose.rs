//! Amazon Data Firehose's HTTP endpoint delivery protocol (version 1.0).
//!
//! Firehose POSTs `{"requestId": …, "timestamp": <ms>, "records": [{"data": <base64>}, …]}`
//! (`Content-Type: application/json`, optionally gzip) with the headers
//! `X-Amz-Firehose-Request-Id` and `X-Amz-Firehose-Access-Key`, and expects HTTP 200 with
//! `{"requestId": <the same id>, "timestamp": <ms>}`; any other status, or a body it cannot
//! read, is a failed delivery that it retries with the same request id, and an error answer may
//! carry `"errorMessage"`. The protocol has no per-record answer: the request is written to the
//! stream whole or answered with an error (Firehose then sends all of it again; the records
//! already written are duplicates downstream de-duplication removes by record key).
//!
//! Each record's data is the producer's bytes as Firehose buffered them: one JSON object,
//! perhaps with a trailing newline, or several NDJSON lines. Every record found is forwarded,
//! the ones that are not JSON objects included: Firehose cannot be told that one record is
//! bad, so kinesis-ingest quarantines them with their payload and reason like any producer's.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::body::{record, split, Framing, Item, Limits};

/// The Firehose request envelope.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Firehose's id of the request (the same on every retry).
    #[serde(default)]
    pub request_id: String,
    /// When Firehose made the request, ms since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The records.
    pub records: Vec<DeliveryRecord>,
}

/// One buffered record.
#[derive(Debug, Deserialize)]
pub struct DeliveryRecord {
    /// The producer's bytes, base64.
    pub data: String,
}

/// The answer Firehose expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The request's id.
    pub request_id: String,
    /// When the answer was made, ms since the epoch.
    pub timestamp: i64,
    /// Why the delivery failed (only on errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Parses the envelope and decodes every record's data.
pub fn parse(body: &[u8]) -> Result<(Delivery, Vec<Vec<u8>>), String> {
    let d: Delivery = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a Firehose delivery request: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = Vec::with_capacity(d.records.len());
    for (i, r) in d.records.iter().enumerate() {
        let bytes = b64
            .decode(r.data.as_bytes())
            .map_err(|_| format!("records[{i}].data is not valid base64"))?;
        data.push(bytes);
    }
    Ok((d, data))
}

/// The stream records in the decoded Firehose records, in order.
/// With `key_field`, accepted records carry that field's value ([`Item::key`]).
pub fn items<'a>(data: &'a [Vec<u8>], limits: &Limits, key_field: Option<&str>) -> Vec<Item<'a>> {
    let mut out = Vec::with_capacity(data.len());
    for d in data {
        match split(d, Framing::Json, limits, key_field) {
            Ok(found) => out.extend(found),
            // Empty or blank data: nothing to forward. Other whole-body refusals cannot
            // happen for JSON framing below the limits; forward the bytes as they are.
            Err(crate::body::BodyError::Empty) => {}
            Err(_) => out.push(record(d, limits, key_field)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_records() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({
            "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
            "timestamp": 1578090901599i64,
            "records": [
                {"data": b64.encode("{\"a\":1}\n")},
                {"data": b64.encode("{\"b\":2}\n{\"c\":3}\n")},
                {"data": b64.encode("plain text")},
                {"data": b64.encode("")},
            ]
        });
        let (d, data) = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(d.request_id, "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
        assert_eq!(d.timestamp, 1578090901599);
        let items = items(&data, &Limits::default(), None);
        let texts: Vec<_> = items
            .iter()
            .map(|i| (String::from_utf8_lossy(i.bytes).into_owned(), i.is_ok()))
            .collect();
        assert_eq!(
            texts,
            [
                ("{\"a\":1}".to_string(), true),
                ("{\"b\":2}".to_string(), true),
                ("{\"c\":3}".to_string(), true),
                ("plain text".to_string(), false),
            ]
        );
        assert!(parse(br#"{"records":[{"data":"!!"}]}"#)
            .unwrap_err()
            .contains("records[0]"));
        assert!(parse(b"[]").is_err());
        let a = Answer {
            request_id: "r".into(),
            timestamp: 5,
            error_message: None,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"requestId":"r","timestamp":5}"#
        );
    }
}
