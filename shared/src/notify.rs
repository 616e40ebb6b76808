//! S3 event notifications: what s3-transform and glue-catalog process and what they skip.
//!
//! Keys in notifications are URL-encoded (`+` is a space, `%XX` are UTF-8 bytes) and are
//! decoded here once. A notification is processed only if it is an `ObjectCreated:*` event
//! for the expected bucket under one of the function's accepted prefixes; everything else (the
//! `s3:TestEvent` S3 sends when a notification is configured, deletes, keys outside the prefix,
//! undecodable keys) is skipped with a classified reason, so a function can never trigger
//! itself through its own output.

use std::fmt;

use crate::lake::keys::decode_s3_event_key;

/// One object notification, on sluice's own type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNotice {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub event_name: String,
    pub bucket: String,
    /// The key as it appears in the notification (URL-encoded).
    pub raw_key: String,
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
    pub bucket: String,
    pub key: String,
    pub prefix: String,
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
