//! One Kinesis record, as every part of sluice holds it: decoded from a Lambda event by
//! kinesis-ingest, read back from a shard by failure-notifier, archived in the dead-letter zone
//! and built by the local drivers. Its identity is its shard and sequence number.

use std::cmp::Ordering;

/// One Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The shard id (`shardId-000000000000`).
    pub shard: String,
    /// The sequence number: a decimal string, ordered by [`seq_cmp`].
    pub seq: String,
    /// The partition key the record was put with (an aggregate's own, not its sub-records').
    pub partition_key: String,
    /// Approximate arrival time, epoch microseconds (millisecond precision).
    pub arrival_micros: i64,
    /// The record's bytes: a KPL aggregate or JSON text.
    pub data: Vec<u8>,
}

/// Orders Kinesis sequence numbers (decimal strings of any length) numerically.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_numerically() {
        assert_eq!(seq_cmp("10", "9"), Ordering::Greater);
        assert_eq!(seq_cmp("009", "9"), Ordering::Equal);
        assert_eq!(
            seq_cmp(
                "49590000000000000000000000000000000000000000000000000002",
                "49590000000000000000000000000000000000000000000000000010"
            ),
            Ordering::Less
        );
    }
}
