//! The S3 notification at the edge: Lambda's JSON payload → sluice's
//! [`ObjectNotice`]s (raw objects created), or the reason it is skipped.

use serde::Deserialize;

use sluice_core::notify::{ObjectNotice, SkipReason};

/// What an S3-triggered function receives: a notification with `Records`, or anything
/// else (the `s3:TestEvent` has no `Records`), which is skipped instead of failing the
/// invocation on deserialisation.
///
/// Only the fields sluice uses are read, each optional: `aws_lambda_events`' `S3Event`
/// requires fields (`userIdentity`, `requestParameters`, ...) that S3-compatible senders
/// omit, and a notification must never be dropped for a field nobody reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum S3Input {
    Event(Notification),
    Other(serde_json::Value),
}

/// An S3 event notification (the `Records` shape).
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    #[serde(rename = "Records")]
    pub records: Vec<NotificationRecord>,
}

/// One record of a notification.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NotificationRecord {
    pub event_name: Option<String>,
    pub s3: NotificationEntity,
}

/// The `s3` part of a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NotificationEntity {
    pub bucket: NamedBucket,
    pub object: NotifiedObject,
}

/// The bucket of a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NamedBucket {
    pub name: Option<String>,
}

/// The object of a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NotifiedObject {
    pub key: Option<String>,
    pub size: Option<i64>,
}

impl S3Input {
    /// The object notices, or why there are none.
    pub fn notices(&self) -> Result<Vec<ObjectNotice>, SkipReason> {
        match self {
            S3Input::Event(e) => Ok(e
                .records
                .iter()
                .map(|r| ObjectNotice {
                    event_name: r.event_name.clone().unwrap_or_default(),
                    bucket: r.s3.bucket.name.clone().unwrap_or_default(),
                    raw_key: r.s3.object.key.clone().unwrap_or_default(),
                    size: r.s3.object.size,
                })
                .collect()),
            S3Input::Other(v)
                if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") =>
            {
                Err(SkipReason::TestEvent)
            }
            S3Input::Other(_) => Err(SkipReason::NotS3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_event_and_records() {
        let t: S3Input = serde_json::from_str(
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-11-22T10:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}"#,
        )
        .expect("input");
        assert_eq!(t.notices(), Err(SkipReason::TestEvent));
        let e: S3Input = serde_json::from_str(
            r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2025-11-22T10:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"b","arn":"arn:aws:s3:::b"},"object":{"key":"raw/a+b.json","size":3,"sequencer":"0A"}}}]}"#,
        )
        .expect("input");
        let n = e.notices().expect("notices");
        assert_eq!(n[0].raw_key, "raw/a+b.json");
        assert_eq!(n[0].event_name, "ObjectCreated:Put");
        let other: S3Input = serde_json::from_str(r#"{"hello":1}"#).expect("input");
        assert_eq!(other.notices(), Err(SkipReason::NotS3));
    }

    #[test]
    fn sparse_records_are_still_read() {
        // The shape some S3-compatible senders use: no userIdentity, requestParameters...
        let e: S3Input = serde_json::from_str(
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"raw%2Fx.json"}}}]}"#,
        )
        .expect("input");
        let n = e.notices().expect("notices");
        assert_eq!(
            (n[0].bucket.as_str(), n[0].raw_key.as_str()),
            ("b", "raw%2Fx.json")
        );
    }
}
