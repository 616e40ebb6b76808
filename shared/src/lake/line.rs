//! One raw line: the record's own JSON text with sluice's metadata spliced in as its first key.
//!
//! Lines are written by splicing the [`LineMeta`] object into the record's text, so the
//! original bytes (number precision, key order, escapes) are kept; only raw CR/LF, which valid
//! JSON allows solely as whitespace between tokens, become spaces so each record is one line.
//! kinesis-ingest writes them ([`push_line_with_meta`]); s3-transform and glue-catalog read the
//! metadata back ([`LineMeta::parse`], [`META_KEY`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The key under which each raw line carries sluice's metadata (the one reserved field; see
/// [`crate::config::RESERVED_PREFIX`]).
pub const META_KEY: &str = crate::config::RESERVED_PREFIX;

/// Deterministic metadata of one raw line: where the record came from, never when it was seen.
/// Written by kinesis-ingest, read back by s3-transform ([`LineMeta::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineMeta<'a> {
    /// The Kinesis shard id the record was read from.
    #[serde(borrow)]
    pub shard: Cow<'a, str>,
    /// The Kinesis record's sequence number.
    #[serde(borrow)]
    pub seq: Cow<'a, str>,
    /// Index of the user record in a KPL aggregate or NDJSON record (0 otherwise).
    pub sub: u32,
    /// The user record's partition key (a KPL sub-record's own, else the Kinesis record's);
    /// empty when a line has none.
    #[serde(borrow, default)]
    pub pk: Cow<'a, str>,
    /// Kinesis approximate arrival time, RFC 3339 UTC with milliseconds.
    #[serde(borrow, default)]
    pub arrival: Cow<'a, str>,
}

impl<'a> LineMeta<'a> {
    /// The metadata object's JSON text (the raw value of [`META_KEY`]), if well formed.
    pub fn parse(text: &'a str) -> Option<LineMeta<'a>> {
        serde_json::from_str(text).ok()
    }

    /// The record key of a record whose dataset declares no key field: its stream position,
    /// `<shard>-<seq>-<sub>`, the same for every delivery of the record.
    pub fn record_key(&self) -> String {
        format!("{}-{}-{}", self.shard, self.seq, self.sub)
    }

    /// The arrival time in epoch microseconds, if it parses.
    pub fn arrival_micros(&self) -> Option<i64> {
        crate::schema::parse_timestamp(&self.arrival).ok()
    }
}

/// Splits a raw line into its metadata and the record's own JSON text (the metadata taken out
/// again): the inverse of [`push_line_with_meta`] but for CR/LF, which it turned into spaces.
/// `None` if the line does not start with the metadata.
pub fn split_line(line: &str) -> Option<(LineMeta<'_>, String)> {
    let rest = line
        .trim_end_matches(['\n', '\r'])
        .strip_prefix("{\"")?
        .strip_prefix(META_KEY)?
        .strip_prefix("\":")?;
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<LineMeta<'_>>();
    let meta = stream.next()?.ok()?;
    let after = &rest[stream.byte_offset()..];
    let body = after.strip_prefix(',').unwrap_or(after);
    if !body.trim_end().ends_with('}') {
        return None;
    }
    Some((meta, format!("{{{body}")))
}

/// Appends `obj_text` (the exact text of one JSON object) with `meta` spliced in as its first
/// key, followed by `\n`.
pub fn push_line_with_meta(out: &mut Vec<u8>, meta: &LineMeta<'_>, obj_text: &str) -> Result<()> {
    let body = obj_text
        .strip_prefix('{')
        .ok_or_else(|| Error::Encode("record text does not start with '{'".into()))?;
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(META_KEY.as_bytes());
    out.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *out, meta).map_err(|e| Error::Encode(e.to_string()))?;
    if !body.trim_start().starts_with('}') {
        out.push(b',');
    }
    let start = out.len();
    out.extend_from_slice(body.as_bytes());
    for b in &mut out[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: LineMeta<'static> = LineMeta {
        shard: Cow::Borrowed("shardId-000000000000"),
        seq: Cow::Borrowed("49"),
        sub: 0,
        pk: Cow::Borrowed("p\"k"),
        arrival: Cow::Borrowed("2025-11-22T10:00:00.000Z"),
    };

    #[test]
    fn metadata_reads_back_as_written() {
        let text = serde_json::to_string(&META).expect("json");
        let back = LineMeta::parse(&text).expect("parses");
        assert_eq!(back, META);
        assert_eq!(back.record_key(), "shardId-000000000000-49-0");
        assert_eq!(back.arrival_micros(), Some(1_763_805_600_000_000));
        assert!(LineMeta::parse(r#"{"shard":"s"}"#).is_none());
        let partial = LineMeta::parse(r#"{"shard":"s","seq":"9","sub":2}"#).expect("parses");
        assert_eq!(
            (partial.record_key(), partial.arrival_micros()),
            ("s-9-2".into(), None)
        );
    }

    fn line(obj: &str) -> String {
        let mut out = Vec::new();
        push_line_with_meta(&mut out, &META, obj).expect("line");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn splices_metadata_first_and_keeps_the_record() {
        let l = line("{\"a\":1.10,\n\"b\":\"x\\ny\"}");
        assert!(l.ends_with("}\n") && l.matches('\n').count() == 1, "{l}");
        let v: serde_json::Value = serde_json::from_str(&l).expect("json");
        assert_eq!(v["a"].to_string(), "1.1");
        assert!(l.contains("\"a\":1.10"));
        assert_eq!(v["b"], "x\ny");
        assert_eq!(v["_sluice"]["pk"], "p\"k");
        assert!(l.starts_with("{\"_sluice\":{\"shard\""));
        let empty = line("{ }");
        let v: serde_json::Value = serde_json::from_str(&empty).expect("json");
        assert_eq!(v.as_object().map(|m| m.len()), Some(1));
        let mut out = Vec::new();
        assert!(push_line_with_meta(&mut out, &META, "[1]").is_err());
    }

    #[test]
    fn split_line_gives_back_the_metadata_and_the_record() {
        for obj in [
            "{\"a\":1.10,\"b\":\"x\\ny\"}",
            "{ }",
            "{\"_sluicer\":[1,{\"c\":2}]}",
        ] {
            let l = line(obj);
            let (meta, rec) = split_line(&l).expect("splits");
            assert_eq!(meta, META);
            assert_eq!(rec, obj, "{l}");
        }
        assert!(split_line("{\"a\":1}").is_none());
        assert!(split_line("{\"_sluice\":{\"shard\":\"s\"},\"a\":1}").is_none());
        assert!(
            split_line("{\"_sluice\":{\"shard\":\"s\",\"seq\":\"1\",\"sub\":0},\"a\":1").is_none()
        );
    }
}
