//! S3 event notifications: what s3-transform and glue-catalog process and what they skip.
//!
//! Keys in notifications are URL-encoded (`+` is a space, `%XX` are UTF-8 bytes) and are
//! decoded here once. A notification is processed only if it is an `ObjectCreated:*` event
//! for the expected bucket under one of the function's accepted prefixes; everything else (the
//! `s3:TestEvent` S3 sends when a notification is configured, deletes, keys outside the prefix,
//! undecodable keys) is skipped with a classified reason, so a function can never trigger
//! itself through its own output.

use std::fmt;

use crate::lake::keys::{decode_s3_event_key, encode_s3_event_key};

/// The JSON of an S3 `ObjectCreated:Put` notification for one object, in AWS's shape: what
/// S3 sends the functions, and what `sluice backfill` invokes s3-transform with.
pub fn object_created_json(
    bucket: &str,
    key: &str,
    size: u64,
    event_time: &str,
    configuration_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": event_time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE:kinesis-ingest"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration_id,
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encode_s3_event_key(key), "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
            }
        }]
    })
}

/// One object notification, on sluice's own type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNotice {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub event_name: String,
    /// The bucket the notification names.
    pub bucket: String,
    /// The key as it appears in the notification (URL-encoded).
    pub raw_key: String,
    /// The object's size in bytes, when the notification carries it.
    pub size: Option<i64>,
}

/// Why a notification is not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The `s3:TestEvent` S3 sends when a notification configuration is saved.
    TestEvent,
    /// Not an `ObjectCreated:*` event.
    NotACreate,
    /// The key is outside every accepted prefix (e.g. the function's own output).
    OutsidePrefix,
    /// The key does not decode to UTF-8.
    UndecodableKey,
    /// The notification names another bucket than the configured one.
    OtherBucket,
    /// The payload is not an S3 notification at all.
    NotS3,
}

impl SkipReason {
    /// Stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TestEvent => "test_event",
            SkipReason::NotACreate => "not_a_create",
            SkipReason::OutsidePrefix => "outside_prefix",
            SkipReason::UndecodableKey => "undecodable_key",
            SkipReason::OtherBucket => "other_bucket",
            SkipReason::NotS3 => "not_s3",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification to process: decoded key and the accepted prefix it is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The bucket: always the configured one (notices for others are skipped).
    pub bucket: String,
    /// The object key, URL-decoded.
    pub key: String,
    /// The first of the accepted prefixes that `key` starts with.
    pub prefix: String,
    /// The object's size in bytes, when the notification carries it.
    pub size: Option<i64>,
}

/// Decides whether to process a notice. `prefixes` are the zone prefixes the function reads.
pub fn decide(
    notice: &ObjectNotice,
    bucket: &str,
    prefixes: &[&str],
) -> Result<Accepted, SkipReason> {
    if !notice.event_name.starts_with("ObjectCreated:") {
        return Err(SkipReason::NotACreate);
    }
    if notice.bucket != bucket {
        return Err(SkipReason::OtherBucket);
    }
    let key = decode_s3_event_key(&notice.raw_key).map_err(|_| SkipReason::UndecodableKey)?;
    let prefix = prefixes
        .iter()
        .find(|p| key.starts_with(**p))
        .ok_or(SkipReason::OutsidePrefix)?;
    Ok(Accepted {
        bucket: notice.bucket.clone(),
        key,
        prefix: prefix.to_string(),
        size: notice.size,
    })
}

pub use edge::S3Input;

/// The S3 event notification message (what S3 sends to Lambda, SQS or SNS), read once here
/// for both S3-triggered functions; each re-exports it from its `event.rs`.
mod edge {
    use serde::Deserialize;

    use super::{ObjectNotice, SkipReason};

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
        /// A notification with `Records`.
        Event(Notification),
        /// Any other JSON (the `s3:TestEvent`, or not an S3 notification at all).
        Other(serde_json::Value),
    }

    /// An S3 event notification (the `Records` shape).
    #[derive(Debug, Clone, Deserialize)]
    pub struct Notification {
        /// `Records`: one entry per object event.
        #[serde(rename = "Records")]
        pub records: Vec<NotificationRecord>,
    }

    /// One record of a notification.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct NotificationRecord {
        /// `eventName`: `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
        pub event_name: Option<String>,
        /// `s3`: the bucket and object the event is about.
        pub s3: NotificationEntity,
    }

    /// The `s3` part of a record.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(default)]
    pub struct NotificationEntity {
        /// `bucket`: the bucket the object is in.
        pub bucket: NamedBucket,
        /// `object`: the object the event is about.
        pub object: NotifiedObject,
    }

    /// The bucket of a record.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(default)]
    pub struct NamedBucket {
        /// `name`: the bucket's name.
        pub name: Option<String>,
    }

    /// The object of a record.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(default)]
    pub struct NotifiedObject {
        /// `key`: the object key, URL-encoded as S3 sends it.
        pub key: Option<String>,
        /// `size`: the object's size in bytes, when sent.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event: &str, bucket: &str, key: &str) -> ObjectNotice {
        ObjectNotice {
            event_name: event.into(),
            bucket: bucket.into(),
            raw_key: key.into(),
            size: Some(1),
        }
    }

    #[test]
    fn decisions() {
        let p = ["raw/"];
        let ok = decide(
            &notice("ObjectCreated:Put", "b", "raw/x/caf%C3%A9+1.json"),
            "b",
            &p,
        )
        .expect("accepted");
        assert_eq!(ok.key, "raw/x/café 1.json");
        assert_eq!(ok.prefix, "raw/");
        assert_eq!(
            decide(&notice("ObjectRemoved:Delete", "b", "raw/x"), "b", &p),
            Err(SkipReason::NotACreate)
        );
        assert_eq!(
            decide(&notice("ObjectCreated:Put", "b", "curated/x"), "b", &p),
            Err(SkipReason::OutsidePrefix)
        );
        assert_eq!(
            decide(&notice("ObjectCreated:Put", "c", "raw/x"), "b", &p),
            Err(SkipReason::OtherBucket)
        );
        assert_eq!(
            decide(&notice("ObjectCreated:Put", "b", "raw/%FF"), "b", &p),
            Err(SkipReason::UndecodableKey)
        );
        // An encoded prefix is still recognised after decoding.
        assert!(decide(&notice("ObjectCreated:Copy", "b", "raw%2Fx.json"), "b", &p).is_ok());
    }
}
