//! `sluice quarantine list|show|requeue`: what was set aside, why, and putting it back.
//!
//! A scan lists the quarantine zone one dataset at a time, only the `dt=` days of the time
//! range (plus the few objects kept outside a partition), and reads every quarantine object
//! that holds lines ([`sluice_core::lake::quarantine::holds_lines`]). A record's hour is its
//! quarantine partition's (the arrival hour at ingest, the event hour at transform), or the
//! object's last-modified time when it has none.
//!
//! Requeue puts each selected record back into the stream with its original partition key:
//! a record kinesis-ingest set aside as it was received, a record s3-transform set aside as the
//! record's own text (its raw line without sluice's metadata). After the stream accepted an
//! object's records, the lines are added to the object's
//! [`RequeueNote`](sluice_core::lake::quarantine::RequeueNote), and no later requeue sends them
//! again; an interrupted run leaves at most the object it was on to be sent again, which the
//! stages de-duplicate on the record key.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sluice_core::aws::{parse_s3_uri, Listed, S3Store};
use sluice_core::lake::keys::{
    dataset_prefix, day_prefix, is_day_folder, parse_zone_key, reason_key, Partition,
};
use sluice_core::lake::line::split_line;
use sluice_core::lake::quarantine::{
    holds_lines, requeued_key, ObjectReason, Origin, QuarantineLine, RejectKind, RequeueNote,
    REQUEUED_SUFFIX,
};
use sluice_core::schema::format_micros;
use sluice_core::store::ObjectStore;

use crate::error::{Error, Result};
use crate::notes::{read_bytes, read_json, write_json};
use crate::ports::{Entry, RecordWriter, StreamTarget};
use crate::replay::put_all;
use crate::table::table;
use crate::when::Span;

/// Objects read at once.
const READ_CONCURRENCY: usize = 8;
/// Largest record Kinesis accepts (1 MiB, data and partition key).
const MAX_KINESIS_RECORD: usize = 1024 * 1024;
/// Longest partition key Kinesis accepts (characters).
const MAX_PARTITION_KEY: usize = 256;

/// Which quarantined records a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Only this dataset (`_unrouted` for records that matched none); every one if `None`.
    pub dataset: Option<String>,
    /// Only these kinds; every kind if empty.
    pub kinds: Vec<RejectKind>,
    /// Only these hours.
    pub span: Span,
}

/// A reject kind by its snake_case name.
pub fn parse_kind(name: &str) -> std::result::Result<RejectKind, String> {
    RejectKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| {
            format!(
                "{name:?} is not a reject kind; one of: {}",
                RejectKind::ALL.map(RejectKind::as_str).join(", ")
            )
        })
}

/// A quarantine object a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    listed: Listed,
    dataset: String,
    /// Start of its hour, epoch microseconds.
    hour: i64,
}

/// One quarantined record, read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `s3://bucket/key` of its quarantine object.
    pub object: String,
    /// Its 1-based line in the object.
    pub line: usize,
    pub dataset: String,
    /// Its hour, `YYYY-MM-DDTHH`.
    pub hour: String,
    pub kind: RejectKind,
    pub reason: String,
    /// `stream` (set aside by kinesis-ingest) or `object` (by s3-transform).
    pub stage: &'static str,
    /// Where it came from: `shard/seq/sub` or `source key:line`.
    pub from: String,
    /// The partition key it had in the stream, when known.
    pub partition_key: Option<String>,
    /// Whether `sluice quarantine requeue` has put it back.
    pub requeued: bool,
    #[serde(skip)]
    payload: Vec<u8>,
}

impl Record {
    /// What requeue would put into the stream, or why it cannot.
    fn entry(&self) -> std::result::Result<Entry, &'static str> {
        let (partition_key, data) = match self.stage {
            "stream" => (
                self.partition_key.clone().unwrap_or_default(),
                self.payload.clone(),
            ),
            _ => {
                let text = std::str::from_utf8(&self.payload)
                    .map_err(|_| "not a raw line (a file dropped into raw/): fix the file")?;
                let (meta, record) = split_line(text)
                    .ok_or("not a raw line (a file dropped into raw/): fix the file")?;
                let pk = match meta.pk.is_empty() {
                    true => meta.record_key(),
                    false => meta.pk.into_owned(),
                };
                (pk, record.into_bytes())
            }
        };
        if partition_key.is_empty() || partition_key.chars().count() > MAX_PARTITION_KEY {
            return Err("no usable partition key");
        }
        if data.is_empty() || data.len() + partition_key.len() > MAX_KINESIS_RECORD {
            return Err("empty or larger than a Kinesis record (1 MiB)");
        }
        Ok(Entry {
            partition_key,
            data,
            original_seq: self.from.clone(),
        })
    }
}

/// An object s3-transform could not read at all, copied whole into the quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopiedObject {
    pub object: String,
    pub dataset: String,
    pub hour: String,
    pub bytes: u64,
    pub kind: Option<RejectKind>,
    pub reason: String,
    pub source: String,
}

/// What a scan read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Records, by object key then line.
    pub records: Vec<Record>,
    /// Whole objects.
    pub copies: Vec<CopiedObject>,
    /// Lines that are not quarantine lines (counted, never skipped silently).
    pub unreadable: Vec<String>,
    /// Requeue notes by object key.
    notes: BTreeMap<String, RequeueNote>,
}

fn hour_label(start: i64) -> String {
    format_micros(start)[..13].to_string()
}

/// Lists the quarantine objects of the selection.
async fn find(store: &S3Store, prefix: &str, sel: &Selection) -> Result<Vec<Found>> {
    let datasets = match &sel.dataset {
        Some(d) => vec![d.clone()],
        None => store
            .list_level(prefix)
            .await?
            .folders
            .iter()
            .filter_map(|f| {
                f.strip_prefix(prefix)?
                    .strip_suffix('/')
                    .map(str::to_string)
            })
            .collect(),
    };
    let mut found = Vec::new();
    for ds in datasets {
        let top = store.list_level(&dataset_prefix(prefix, &ds)).await?;
        let mut listed: Vec<Listed> = top.objects;
        for folder in &top.folders {
            let is_day = is_day_folder(folder);
            if !is_day {
                listed.extend(store.list_detailed(folder).await?);
            }
        }
        for day in sel.span.days() {
            listed.extend(store.list_detailed(&day_prefix(prefix, &ds, &day)).await?);
        }
        for l in listed {
            let hour = parse_zone_key(prefix, &l.key)
                .and_then(|z| z.partition)
                .map(|p| hour_start(&p));
            let keep = match hour {
                Some(h) => sel.span.has_hour(h),
                None => sel.span.has(l.modified_micros),
            };
            if keep && !l.key.ends_with(REQUEUED_SUFFIX) {
                let hour = hour.unwrap_or(l.modified_micros - l.modified_micros.rem_euclid(HOUR));
                found.push(Found {
                    listed: l,
                    dataset: ds.clone(),
                    hour,
                });
            }
        }
    }
    found.sort_by(|a, b| a.listed.key.cmp(&b.listed.key));
    found.dedup_by(|a, b| a.listed.key == b.listed.key);
    Ok(found)
}

const HOUR: i64 = 3_600_000_000;

/// Start of a partition's hour, epoch microseconds.
pub(crate) fn hour_start(p: &Partition) -> i64 {
    sluice_core::schema::parse_timestamp(&format!("{}T{}:00:00Z", p.dt, p.hr)).unwrap_or(0)
}

/// Reads every record and whole object of the selection.
pub async fn scan(store: &S3Store, prefix: &str, sel: &Selection) -> Result<Scan> {
    let found = find(store, prefix, sel).await?;
    let bucket = store.bucket().to_string();
    let reads = futures::stream::iter(found.into_iter().map(|f| read_one(store, f)))
        .buffered(READ_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let mut scan = Scan::default();
    for (f, part) in reads {
        match part {
            Part::Lines { text, note } => {
                let object = format!("s3://{bucket}/{}", f.listed.key);
                for (i, l) in text.lines().enumerate() {
                    let line = i + 1;
                    match QuarantineLine::parse(l) {
                        Ok(q) if sel.kinds.is_empty() || sel.kinds.contains(&q.error_kind) => {
                            scan.records.push(record(&object, line, &f, q, &note));
                        }
                        Ok(_) => {}
                        Err(_) => scan.unreadable.push(format!("{object} line {line}")),
                    }
                }
                if !note.lines.is_empty() {
                    scan.notes.insert(f.listed.key.clone(), note);
                }
            }
            Part::Copy(reason) => {
                if sel.kinds.is_empty() || reason.0.is_some_and(|k| sel.kinds.contains(&k)) {
                    scan.copies.push(CopiedObject {
                        object: format!("s3://{bucket}/{}", f.listed.key),
                        dataset: f.dataset.clone(),
                        hour: hour_label(f.hour),
                        bytes: f.listed.size,
                        kind: reason.0,
                        reason: reason.1,
                        source: reason.2,
                    });
                }
            }
            Part::Skip => {}
        }
    }
    Ok(scan)
}

enum Part {
    Lines { text: String, note: RequeueNote },
    Copy((Option<RejectKind>, String, String)),
    Skip,
}

async fn read_one(store: &S3Store, f: Found) -> Result<(Found, Part)> {
    let key = &f.listed.key;
    if key.ends_with(".reason.json") {
        return Ok((f, Part::Skip));
    }
    if !holds_lines(key) {
        let note = read_bytes(store, &reason_key(key)).await?;
        let reason = match note {
            Some(v) => match serde_json::from_slice::<ObjectReason<'_>>(&v) {
                Ok(r) => (
                    Some(r.error_kind),
                    r.reason.into_owned(),
                    r.source.into_owned(),
                ),
                Err(_) => (
                    None,
                    "its reason note is not readable".into(),
                    String::new(),
                ),
            },
            None => (None, "no reason note beside it".into(), String::new()),
        };
        return Ok((f, Part::Copy(reason)));
    }
    let bytes = store.get(key).await?;
    let text = gunzip(key, &bytes)?;
    let note = read_json::<RequeueNote>(store, &requeued_key(key))
        .await?
        .unwrap_or_default();
    Ok((f, Part::Lines { text, note }))
}

fn gunzip(key: &str, bytes: &[u8]) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| Error::Note {
            key: key.to_string(),
            reason: format!("not gzip text: {e}"),
        })?;
    Ok(text)
}

fn record(
    object: &str,
    line: usize,
    f: &Found,
    q: QuarantineLine<'_>,
    note: &RequeueNote,
) -> Record {
    let payload = q.payload().unwrap_or_default();
    let (stage, from, partition_key) = match &q.origin {
        Origin::Stream {
            shard,
            seq,
            sub,
            partition_key,
            ..
        } => (
            "stream",
            format!("{shard}/{seq}/{sub}"),
            Some(partition_key.to_string()),
        ),
        Origin::Object { source, line } => ("object", format!("{source}:{line}"), None),
    };
    Record {
        object: object.to_string(),
        line,
        dataset: f.dataset.clone(),
        hour: hour_label(f.hour),
        kind: q.error_kind,
        reason: q.reason.into_owned(),
        stage,
        from,
        partition_key,
        requeued: note.has(line),
        payload,
    }
}

/// One row of `sluice quarantine list`: records of a dataset, kind and hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    pub dataset: String,
    pub kind: RejectKind,
    pub hour: String,
    pub records: usize,
    pub requeued: usize,
    /// The first such record, for `sluice quarantine show`.
    pub first: String,
}

/// The outcome of `sluice quarantine list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListReport {
    pub from: String,
    pub to: String,
    pub rows: Vec<ListRow>,
    pub copies: Vec<CopiedObject>,
    pub unreadable: Vec<String>,
}

impl ListReport {
    /// Groups a scan by dataset, kind and hour.
    pub fn of(scan: &Scan, span: Span) -> ListReport {
        let mut groups: BTreeMap<(String, RejectKind, String), ListRow> = BTreeMap::new();
        for r in &scan.records {
            let row = groups
                .entry((r.dataset.clone(), r.kind, r.hour.clone()))
                .or_insert_with(|| ListRow {
                    dataset: r.dataset.clone(),
                    kind: r.kind,
                    hour: r.hour.clone(),
                    records: 0,
                    requeued: 0,
                    first: format!("{} --line {}", r.object, r.line),
                });
            row.records += 1;
            row.requeued += usize::from(r.requeued);
        }
        ListReport {
            from: format_micros(span.from),
            to: format_micros(span.to),
            rows: groups.into_values().collect(),
            copies: scan.copies.clone(),
            unreadable: scan.unreadable.clone(),
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let total: usize = self.rows.iter().map(|r| r.records).sum();
        let mut out = format!(
            "quarantined records from {} to {}: {total}\n",
            self.from, self.to
        );
        if !self.rows.is_empty() {
            let mut rows = vec![vec![
                "DATASET".to_string(),
                "KIND".into(),
                "HOUR (UTC)".into(),
                "RECORDS".into(),
                "REQUEUED".into(),
            ]];
            rows.extend(self.rows.iter().map(|r| {
                vec![
                    r.dataset.clone(),
                    r.kind.to_string(),
                    r.hour.clone(),
                    r.records.to_string(),
                    r.requeued.to_string(),
                ]
            }));
            out.push_str(&table(&rows, &[3, 4]));
            out.push_str(&format!(
                "show one: sluice quarantine show {}\n",
                self.rows[0].first
            ));
        }
        if !self.copies.is_empty() {
            out.push_str(&format!(
                "whole objects set aside by s3-transform: {}\n",
                self.copies.len()
            ));
            for c in &self.copies {
                out.push_str(&format!(
                    "  {}  {} bytes  {}: {}\n",
                    c.object,
                    c.bytes,
                    c.kind.map_or("unknown", RejectKind::as_str),
                    c.reason
                ));
            }
        }
        if !self.unreadable.is_empty() {
            out.push_str(&format!(
                "lines that are not quarantine lines: {} (first: {})\n",
                self.unreadable.len(),
                self.unreadable[0]
            ));
        }
        out
    }
}

/// `sluice quarantine show`: the records of one quarantine object (or one line of it), with
/// their decoded payloads.
pub async fn show(
    s3: &aws_sdk_s3::Client,
    prefix: &str,
    uri: &str,
    line: Option<usize>,
) -> Result<Vec<Shown>> {
    let (bucket, key) = parse_s3_uri(uri).ok_or_else(|| Error::InvalidUri(uri.to_string()))?;
    let store = S3Store::new(s3.clone(), bucket);
    if !holds_lines(&key) {
        let why = match read_json::<serde_json::Value>(&store, &reason_key(&key)).await? {
            Some(v) => v.to_string(),
            None => "no reason note beside it".into(),
        };
        return Err(Error::Usage(format!(
            "{uri} is not a file of quarantined records but a whole object (or a note); its reason: {why}"
        )));
    }
    let text = gunzip(&key, &store.get(&key).await?)?;
    let note = read_json::<RequeueNote>(&store, &requeued_key(&key))
        .await?
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_some_and(|want| want != n) {
            continue;
        }
        let q = QuarantineLine::parse(l).map_err(|e| Error::Note {
            key: format!("{key} line {n}"),
            reason: format!("not a quarantine line: {e}"),
        })?;
        let zone = parse_zone_key(prefix, &key);
        let hour = zone
            .as_ref()
            .and_then(|z| z.partition.as_ref())
            .map(hour_start);
        let f = Found {
            listed: Listed {
                key: key.clone(),
                size: 0,
                modified_micros: 0,
            },
            dataset: zone.map_or_else(String::new, |z| z.dataset),
            hour: hour.unwrap_or(0),
        };
        let mut r = record(uri, n, &f, q, &note);
        if hour.is_none() {
            r.hour = String::new();
        }
        out.push(Shown::of(r));
    }
    if let (Some(n), true) = (line, out.is_empty()) {
        return Err(Error::Usage(format!("{uri} has no line {n}")));
    }
    Ok(out)
}

/// One record as `show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub record: Record,
    /// The payload as text when it is UTF-8.
    pub payload: Option<String>,
    /// The payload in base64 when it is not.
    pub payload_b64: Option<String>,
    pub payload_bytes: usize,
    /// What requeue would put into the stream, or why it cannot.
    pub requeue: String,
}

impl Shown {
    fn of(r: Record) -> Shown {
        use base64::Engine;
        let requeue = match r.entry() {
            Ok(e) => format!(
                "{} bytes with partition key {}",
                e.data.len(),
                e.partition_key
            ),
            Err(why) => format!("cannot be requeued: {why}"),
        };
        let text = String::from_utf8(r.payload.clone()).ok();
        Shown {
            payload_b64: match text {
                Some(_) => None,
                None => Some(base64::engine::general_purpose::STANDARD.encode(&r.payload)),
            },
            payload: text,
            payload_bytes: r.payload.len(),
            requeue,
            record: r,
        }
    }

    /// The human-readable account.
    pub fn text(&self) -> String {
        let r = &self.record;
        format!(
            "line {}: {} ({})\n  reason:    {}\n  from:      {}{}\n  requeue:   {}{}\n  payload:   {} bytes\n{}\n",
            r.line,
            r.kind,
            match r.stage {
                "stream" => "set aside by kinesis-ingest",
                _ => "set aside by s3-transform",
            },
            r.reason,
            r.from,
            r.partition_key
                .as_ref()
                .map_or(String::new(), |k| format!(" (partition key {k})")),
            self.requeue,
            if r.requeued { " (already requeued)" } else { "" },
            self.payload_bytes,
            match (&self.payload, &self.payload_b64) {
                (Some(t), _) => t.clone(),
                (None, Some(b)) => format!("(not UTF-8; base64) {b}"),
                (None, None) => String::new(),
            }
        )
    }
}

/// The outcome of `sluice quarantine requeue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequeueReport {
    pub dry_run: bool,
    pub stream: String,
    /// Records the selection matched.
    pub selected: usize,
    /// Of those, already requeued by an earlier run (not sent again).
    pub already_requeued: usize,
    /// Put into the stream (or, for a dry run, that would be).
    pub sent: usize,
    /// Records that cannot be requeued, by reason.
    pub cannot: BTreeMap<String, usize>,
    /// Records to send by dataset and kind, `dataset/kind`.
    pub by_kind: BTreeMap<String, usize>,
    /// Whole objects in the selection, which are not records and are not requeued.
    pub whole_objects: usize,
    pub calls: usize,
    /// Quarantine objects whose requeue note was written.
    pub notes_written: usize,
}

impl RequeueReport {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = format!(
            "selected {} quarantined record(s); {} already requeued before\n",
            self.selected, self.already_requeued
        );
        for (k, n) in &self.by_kind {
            out.push_str(&format!("  {k}: {n}\n"));
        }
        for (why, n) in &self.cannot {
            out.push_str(&format!("  cannot be requeued, {why}: {n}\n"));
        }
        if self.whole_objects > 0 {
            out.push_str(&format!(
                "  whole objects (not records; see sluice quarantine list): {}\n",
                self.whole_objects
            ));
        }
        match self.dry_run {
            true => out.push_str(&format!(
                "dry run: would put {} record(s) into {}; nothing was sent\n",
                self.sent, self.stream
            )),
            false => out.push_str(&format!(
                "done: {} record(s) put into {} in {} call(s); {} requeue note(s) written\n",
                self.sent, self.stream, self.calls, self.notes_written
            )),
        }
        out
    }
}

/// `sluice quarantine requeue`: puts the selected records not yet requeued back into `stream`,
/// object by object, noting each object's lines once the stream accepted them.
pub async fn requeue(
    store: &S3Store,
    writer: &dyn RecordWriter,
    prefix: &str,
    sel: &Selection,
    stream: &StreamTarget,
    dry_run: bool,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<RequeueReport> {
    let scan = scan(store, prefix, sel).await?;
    let mut report = RequeueReport {
        dry_run,
        stream: stream.0.clone(),
        selected: scan.records.len(),
        whole_objects: scan.copies.len(),
        ..RequeueReport::default()
    };
    let mut by_object: BTreeMap<&str, Vec<(&Record, Entry)>> = BTreeMap::new();
    for r in &scan.records {
        if r.requeued {
            report.already_requeued += 1;
            continue;
        }
        match r.entry() {
            Ok(e) => {
                *report
                    .by_kind
                    .entry(format!("{}/{}", r.dataset, r.kind))
                    .or_default() += 1;
                by_object.entry(&r.object).or_default().push((r, e));
            }
            Err(why) => *report.cannot.entry(why.to_string()).or_default() += 1,
        }
    }
    let objects = by_object.len() as u64;
    for (n, (object, items)) in by_object.into_iter().enumerate() {
        progress(n as u64, objects);
        if !dry_run {
            let entries: Vec<Entry> = items.iter().map(|(_, e)| e.clone()).collect();
            let (_, calls) = put_all(writer, stream, &entries).await?;
            report.calls += calls;
            let key = parse_s3_uri(object).map_or_else(String::new, |(_, k)| k);
            let mut note = scan.notes.get(&key).cloned().unwrap_or_default();
            let lines: Vec<usize> = items.iter().map(|(r, _)| r.line).collect();
            note.record(
                &lines,
                &stream.0,
                format_micros(sluice_core::telemetry::now_micros()),
            );
            write_json(store, &requeued_key(&key), &note).await?;
            report.notes_written += 1;
        }
        report.sent += items.len();
    }
    progress(objects, objects);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn rec(stage: &'static str, pk: Option<&str>, payload: &[u8]) -> Record {
        Record {
            object: "s3://b/q".into(),
            line: 1,
            dataset: "d".into(),
            hour: "2026-01-01T00".into(),
            kind: RejectKind::WrongType,
            reason: "r".into(),
            stage,
            from: "f".into(),
            partition_key: pk.map(str::to_string),
            requeued: false,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        assert_eq!(parse_kind("wrong_type"), Ok(RejectKind::WrongType));
        let err = parse_kind("wrong").expect_err("unknown");
        assert!(err.contains("missing_field"), "{err}");
    }

    #[test]
    fn requeue_entries_keep_the_partition_key_and_drop_the_metadata() {
        let e = rec("stream", Some("user-1"), b"{\"a\":1}")
            .entry()
            .expect("entry");
        assert_eq!(
            (e.partition_key.as_str(), e.data.as_slice()),
            ("user-1", &b"{\"a\":1}"[..])
        );

        let meta = sluice_core::lake::line::LineMeta {
            shard: Cow::Borrowed("shardId-000000000001"),
            seq: Cow::Borrowed("42"),
            sub: 0,
            pk: Cow::Borrowed("user-2"),
            arrival: Cow::Borrowed("2026-01-01T00:00:00.000Z"),
        };
        let mut line = Vec::new();
        sluice_core::lake::line::push_line_with_meta(&mut line, &meta, "{\"a\":2}").expect("line");
        let e = rec("object", None, &line).entry().expect("entry");
        assert_eq!(
            (e.partition_key.as_str(), e.data.as_slice()),
            ("user-2", &b"{\"a\":2}"[..])
        );

        let mut no_pk = Vec::new();
        let meta = sluice_core::lake::line::LineMeta {
            pk: Cow::Borrowed(""),
            ..meta
        };
        sluice_core::lake::line::push_line_with_meta(&mut no_pk, &meta, "{}").expect("line");
        let e = rec("object", None, &no_pk).entry().expect("entry");
        assert_eq!(e.partition_key, "shardId-000000000001-42-0");

        assert!(rec("object", None, b"a,b,c").entry().is_err());
        assert!(rec("stream", Some(""), b"{}").entry().is_err());
        assert!(rec("stream", Some("k"), &vec![b'x'; MAX_KINESIS_RECORD])
            .entry()
            .is_err());
    }
}
