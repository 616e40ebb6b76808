//! KPL (Kinesis Producer Library) aggregation format: detection, de-aggregation and encoding.
//!
//! An aggregated Kinesis record is `MAGIC ++ protobuf(AggregatedRecord) ++ md5(protobuf)`.
//! [`deaggregate`] returns the user records it carries, or a [`KplError`] when the magic is
//! present but the rest is not a valid aggregate (the whole record is then quarantined).
//! [`aggregate`] builds one, for tests, the demo and producers written in Rust.

use md5::{Digest, Md5};
use prost::Message;

/// The four bytes every KPL aggregate starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<AggRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AggRecord {
    #[prost(uint64, optional, tag = "1")]
    partition_key_index: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "3")]
    data: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tag {
    #[prost(string, optional, tag = "1")]
    key: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// One user record from an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The sub-record's partition key, resolved from the aggregate's partition-key table.
    pub partition_key: String,
    /// The sub-record's bytes.
    pub data: Vec<u8>,
}

/// Why a record that starts with the KPL magic is not a valid aggregate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    /// Shorter than the magic plus the 16-byte MD5 digest; holds the record's length in bytes.
    #[error("KPL aggregate too short ({0} bytes)")]
    TooShort(usize),
    /// The trailing MD5 digest is not that of the protobuf body.
    #[error("KPL aggregate MD5 digest does not match its content")]
    DigestMismatch,
    /// The body is not an `AggregatedRecord` protobuf; holds the decoder's message.
    #[error("KPL aggregate protobuf does not decode: {0}")]
    Protobuf(String),
    /// A sub-record lacks its partition key index or data, or the index is out of range.
    #[error("KPL aggregate record {index} is malformed: {reason}")]
    BadRecord {
        /// 0-based position of the sub-record in the aggregate.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Whether `data` starts with the KPL magic.
pub fn is_aggregate(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// De-aggregates a KPL record. Call only when [`is_aggregate`] is true.
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    if data.len() < MAGIC.len() + DIGEST_LEN {
        return Err(KplError::TooShort(data.len()));
    }
    let (body, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_LEN);
    if Md5::digest(body).as_slice() != digest {
        return Err(KplError::DigestMismatch);
    }
    let agg = AggregatedRecord::decode(body).map_err(|e| KplError::Protobuf(e.to_string()))?;
    agg.records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let pk_index = r.partition_key_index.ok_or(KplError::BadRecord {
                index,
                reason: "missing partition key index",
            })?;
            let partition_key = usize::try_from(pk_index)
                .ok()
                .and_then(|i| agg.partition_key_table.get(i))
                .ok_or(KplError::BadRecord {
                    index,
                    reason: "partition key index out of range",
                })?
                .clone();
            let data = r.data.ok_or(KplError::BadRecord {
                index,
                reason: "missing data",
            })?;
            Ok(UserRecord {
                partition_key,
                data,
            })
        })
        .collect()
}

/// Builds a KPL aggregate from user records (partition keys are de-duplicated into the table).
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut agg = AggregatedRecord::default();
    for r in records {
        let idx = match agg
            .partition_key_table
            .iter()
            .position(|k| *k == r.partition_key)
        {
            Some(i) => i,
            None => {
                agg.partition_key_table.push(r.partition_key.clone());
                agg.partition_key_table.len() - 1
            }
        };
        agg.records.push(AggRecord {
            partition_key_index: Some(idx as u64),
            explicit_hash_key_index: None,
            data: Some(r.data.clone()),
            tags: Vec::new(),
        });
    }
    let body = agg.encode_to_vec();
    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(Md5::digest(&body).as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs() -> Vec<UserRecord> {
        vec![
            UserRecord {
                partition_key: "a".into(),
                data: br#"{"x":1}"#.to_vec(),
            },
            UserRecord {
                partition_key: "b".into(),
                data: br#"{"x":2}"#.to_vec(),
            },
            UserRecord {
                partition_key: "a".into(),
                data: br#"{"x":3}"#.to_vec(),
            },
        ]
    }

    #[test]
    fn round_trip() {
        let agg = aggregate(&recs());
        assert!(is_aggregate(&agg));
        assert_eq!(deaggregate(&agg), Ok(recs()));
    }

    #[test]
    fn corrupt_aggregates_are_errors() {
        let mut agg = aggregate(&recs());
        let n = agg.len();
        agg[n - 20] ^= 0xFF;
        assert_eq!(deaggregate(&agg), Err(KplError::DigestMismatch));
        assert!(matches!(deaggregate(&MAGIC), Err(KplError::TooShort(4))));
        // Valid digest over garbage protobuf.
        let garbage = [0xFFu8, 0xFF, 0xFF];
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&garbage);
        bad.extend_from_slice(Md5::digest(garbage).as_slice());
        assert!(matches!(deaggregate(&bad), Err(KplError::Protobuf(_))));
        // Partition key index out of range.
        let body = AggregatedRecord {
            partition_key_table: vec![],
            explicit_hash_key_table: vec![],
            records: vec![AggRecord {
                partition_key_index: Some(3),
                explicit_hash_key_index: None,
                data: Some(b"{}".to_vec()),
                tags: vec![],
            }],
        }
        .encode_to_vec();
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&body);
        bad.extend_from_slice(Md5::digest(&body).as_slice());
        assert!(matches!(
            deaggregate(&bad),
            Err(KplError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn plain_json_is_not_an_aggregate() {
        assert!(!is_aggregate(br#"{"a":1}"#));
    }
}
