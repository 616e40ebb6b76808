//! Kinesis PutRecords with failed entries, as Kinesis answers under load: the call succeeds,
//! some entries carry an `ErrorCode` and were not written.
//!
//! [`without_failing`] takes the failing entries out of the request before it is forwarded;
//! [`with_failures`] puts them back into moto's answer at their positions, with the error and a
//! `FailedRecordCount` that counts them.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The entries of a PutRecords request body.
pub fn entry_count(body: &[u8]) -> Result<usize> {
    let v: Value = serde_json::from_slice(body).context("PutRecords body")?;
    Ok(v["Records"].as_array().map_or(0, Vec::len))
}

/// The request body with the entries marked in `failing` removed.
pub fn without_failing(body: &[u8], failing: &[bool]) -> Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).context("PutRecords body")?;
    let Some(records) = v["Records"].as_array_mut() else {
        bail!("PutRecords body without Records");
    };
    if records.len() != failing.len() {
        bail!(
            "{} failure marks for {} entries",
            failing.len(),
            records.len()
        );
    }
    let mut i = 0;
    records.retain(|_| {
        let keep = !failing[i];
        i += 1;
        keep
    });
    Ok(serde_json::to_vec(&v)?)
}

/// The answer for the whole request: upstream's entries (for the entries that were forwarded,
/// in order; `None` when nothing was) with the failing ones put back.
pub fn with_failures(upstream: Option<&[u8]>, failing: &[bool]) -> Result<Vec<u8>> {
    let (mut answer, forwarded): (Value, Vec<Value>) = match upstream {
        Some(b) => {
            let mut v: Value = serde_json::from_slice(b).context("PutRecords answer")?;
            let recs = v["Records"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            (v, recs)
        }
        None => (json!({ "FailedRecordCount": 0 }), Vec::new()),
    };
    let mut forwarded = forwarded.into_iter();
    let mut failed = answer["FailedRecordCount"].as_u64().unwrap_or(0);
    let mut out = Vec::with_capacity(failing.len());
    for (n, fail) in failing.iter().enumerate() {
        if *fail {
            failed += 1;
            let (code, message) = if n % 2 == 0 {
                (
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard shardId-000000000000 (injected by the sluice fault proxy)",
                )
            } else {
                (
                    "InternalFailure",
                    "Internal service failure (injected by the sluice fault proxy)",
                )
            };
            out.push(json!({ "ErrorCode": code, "ErrorMessage": message }));
        } else {
            out.push(
                forwarded
                    .next()
                    .context("upstream answered fewer entries")?,
            );
        }
    }
    answer["Records"] = Value::Array(out);
    answer["FailedRecordCount"] = json!(failed);
    Ok(serde_json::to_vec(&answer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_entries_come_out_and_go_back() {
        let req = br#"{"StreamName":"s","Records":[{"Data":"YQ==","PartitionKey":"a"},{"Data":"Yg==","PartitionKey":"b"},{"Data":"Yw==","PartitionKey":"c"}]}"#;
        assert_eq!(entry_count(req).unwrap(), 3);
        let failing = [false, true, false];
        let fwd: Value = serde_json::from_slice(&without_failing(req, &failing).unwrap()).unwrap();
        let keys: Vec<_> = fwd["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["PartitionKey"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["a", "c"]);
        let up = br#"{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"x"},{"SequenceNumber":"2","ShardId":"x"}]}"#;
        let ans: Value =
            serde_json::from_slice(&with_failures(Some(up), &failing).unwrap()).unwrap();
        assert_eq!(ans["FailedRecordCount"], 1);
        assert_eq!(ans["Records"][0]["SequenceNumber"], "1");
        assert_eq!(ans["Records"][1]["ErrorCode"], "InternalFailure");
        assert_eq!(ans["Records"][2]["SequenceNumber"], "2");
        let all: Value =
            serde_json::from_slice(&with_failures(None, &[true, true]).unwrap()).unwrap();
        assert_eq!(all["FailedRecordCount"], 2);
        assert_eq!(
            all["Records"][0]["ErrorCode"],
            "ProvisionedThroughputExceededException"
        );
    }
}
