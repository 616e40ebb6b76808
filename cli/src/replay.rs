//! `sluice replay`: read a dead letter back, plan what to send, and send it (or only show it).
//!
//! A Kinesis dead letter becomes `PutRecords` calls into its stream (or `--stream`), the
//! records with their original partition keys and bytes, at most [`MAX_PUT_RECORDS`] entries
//! and [`MAX_PUT_BYTES`] per call; entries the stream rejects (throttling, internal errors) are
//! retried alone with backoff, up to [`MAX_ATTEMPTS`] times. An async dead letter becomes one
//! asynchronous `Invoke` of its function (or `--function`) with the original event. Unknown
//! messages are refused. Replayed records get new sequence numbers, so replaying twice writes
//! the same records again (downstream stages de-duplicate on the dataset's record key); to keep
//! that deliberate, a replay leaves a [`ReplayNote`] beside the archive and a second replay sends
//! nothing unless `--force` is given.

use std::time::Duration;

use sluice_core::aws::{parse_s3_uri, S3Store};
use sluice_core::store::ObjectStore;

use sluice_core::lake::dead_letter::{
    parse_dead_letter, replayed_key, DeadLetter, KinesisHeader, ReplayNote, ReplayRun,
};

use crate::error::{Error, Result};
use crate::notes::{read_json, write_json};
use crate::ports::{Entry, Invoker, RecordWriter, StreamTarget};

/// Most entries in one `PutRecords` call (the API's limit).
pub const MAX_PUT_RECORDS: usize = 500;
/// Most bytes (data + partition keys) in one `PutRecords` call (the API's limit is 5 MiB).
pub const MAX_PUT_BYTES: usize = 5 * 1024 * 1024;
/// Attempts per entry before replay gives up on it.
pub const MAX_ATTEMPTS: usize = 5;
/// Backoff before the first retry of rejected entries (doubled each time).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// What to replay and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// `s3://bucket/key` of the dead letter.
    pub uri: String,
    /// Only show what would be sent.
    pub dry_run: bool,
    /// Put Kinesis records into this stream (name or ARN) instead of their own.
    pub stream: Option<String>,
    /// Invoke this function (name or ARN) instead of the one that failed.
    pub function: Option<String>,
    /// The dead-letter prefix the archive lives under.
    pub dead_letter_prefix: String,
    /// Send even if the archive has been replayed before.
    pub force: bool,
}

/// A planned replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Put records back into a stream.
    Kinesis {
        stream: StreamTarget,
        header: Box<KinesisHeader>,
        entries: Vec<Entry>,
    },
    /// Re-invoke a function with its original event.
    Async {
        function: String,
        request_id: String,
        condition: String,
        payload: Vec<u8>,
    },
}

/// What a replay did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    /// Records put, or invocations queued.
    pub sent: usize,
    /// `PutRecords` / `Invoke` calls made.
    pub calls: usize,
    /// Human-readable account of the plan and the result.
    pub text: String,
}

/// Plans the replay of a parsed dead letter.
pub fn plan(key: &str, dl: DeadLetter, opts: &ReplayOptions) -> Result<Plan> {
    let not = |reason: &str| Error::NotReplayable {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    match dl {
        DeadLetter::Unknown => Err(not(
            "it is an unrecognised message archived verbatim; inspect it and act by hand",
        )),
        DeadLetter::Kinesis { header, records } => {
            let entries = records
                .iter()
                .map(|r| {
                    Ok(Entry {
                        partition_key: r.partition_key.clone(),
                        data: r
                            .data()
                            .map_err(|_| not(&format!("record {} has bad base64 data", r.seq)))?,
                        original_seq: r.seq.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if entries.iter().any(|e| e.partition_key.is_empty()) {
                return Err(not("a record has no partition key"));
            }
            let stream = StreamTarget(
                opts.stream
                    .clone()
                    .unwrap_or_else(|| header.stream_arn.clone()),
            );
            Ok(Plan::Kinesis {
                stream,
                header,
                entries,
            })
        }
        DeadLetter::Async(a) => {
            let event = &a.record["requestPayload"];
            if event.is_null() {
                return Err(not("the failure record has no requestPayload"));
            }
            let payload = serde_json::to_vec(event).map_err(|e| not(&e.to_string()))?;
            Ok(Plan::Async {
                function: opts.function.clone().unwrap_or(a.function_arn),
                request_id: a.request_id,
                condition: a.condition,
                payload,
            })
        }
    }
}

/// Splits entries into `PutRecords` calls by count and size.
pub fn chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let size = e.data.len() + e.partition_key.len();
        if i > start && (i - start == MAX_PUT_RECORDS || bytes + size > MAX_PUT_BYTES) {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

impl Plan {
    /// The stream or function the plan sends to.
    pub fn target(&self) -> String {
        match self {
            Plan::Kinesis { stream, .. } => stream.0.clone(),
            Plan::Async { function, .. } => function.clone(),
        }
    }

    /// A human-readable account of the plan (partition keys and sizes, never data).
    pub fn describe(&self, uri: &str) -> String {
        match self {
            Plan::Kinesis {
                stream,
                header,
                entries,
            } => {
                let mut s = format!(
                    "dead letter: {uri}\nkind: kinesis batch of {} / {} ({} at {}, request {})\n\
                     records: {} archived, missing: {}\n\
                     plan: put {} records into stream {stream} with their partition keys in {} PutRecords call(s)\n",
                    header.stream,
                    header.shard,
                    header.condition,
                    header.failed_at,
                    header.request_id,
                    header.records_archived,
                    match (&header.records_missing, &header.missing_reason) {
                        (_, Some(why)) => why.clone(),
                        (Some(n), None) => n.to_string(),
                        (None, None) => "unknown".into(),
                    },
                    entries.len(),
                    chunks(entries).len(),
                );
                for e in entries {
                    s.push_str(&format!(
                        "  seq {}  partition key {}  {} bytes\n",
                        e.original_seq,
                        e.partition_key,
                        e.data.len()
                    ));
                }
                s
            }
            Plan::Async {
                function,
                request_id,
                condition,
                payload,
            } => format!(
                "dead letter: {uri}\nkind: async invocation failure (request {request_id}, {condition})\n\
                 plan: invoke {function} asynchronously (InvocationType=Event) with the original event ({} bytes)\n",
                payload.len()
            ),
        }
    }
}

/// Puts every entry, retrying rejected ones; returns (records put, calls made).
pub async fn put_all(
    writer: &dyn RecordWriter,
    stream: &StreamTarget,
    entries: &[Entry],
) -> Result<(usize, usize)> {
    let mut pending: Vec<Entry> = entries.to_vec();
    let mut calls = 0;
    let mut backoff = FIRST_BACKOFF;
    let mut last_code = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let mut rejected = Vec::new();
        for chunk in chunks(&pending) {
            calls += 1;
            let results = writer.put_records(stream, chunk).await?;
            for (e, r) in chunk.iter().zip(results) {
                if let Some(code) = r {
                    last_code = code;
                    rejected.push(e.clone());
                }
            }
        }
        if rejected.is_empty() {
            return Ok((entries.len(), calls));
        }
        pending = rejected;
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(Error::PutIncomplete {
        stream: stream.0.clone(),
        failed: pending.len(),
        total: entries.len(),
        accepted: entries.len() - pending.len(),
        attempts: MAX_ATTEMPTS,
        code: last_code,
    })
}

/// Carries out a plan (or, with `dry_run`, only describes it).
pub async fn execute(
    plan: &Plan,
    uri: &str,
    dry_run: bool,
    writer: &dyn RecordWriter,
    invoker: &dyn Invoker,
) -> Result<Report> {
    let mut text = plan.describe(uri);
    if dry_run {
        text.push_str("dry run: nothing was sent\n");
        return Ok(Report {
            dry_run,
            sent: 0,
            calls: 0,
            text,
        });
    }
    let (sent, calls) = match plan {
        Plan::Kinesis {
            stream, entries, ..
        } => {
            let (sent, calls) = put_all(writer, stream, entries).await?;
            text.push_str(&format!(
                "done: {sent} records put into {stream} in {calls} call(s)\n"
            ));
            (sent, calls)
        }
        Plan::Async {
            function, payload, ..
        } => {
            invoker.invoke_event(function, payload).await?;
            text.push_str(&format!("done: invocation of {function} queued\n"));
            (1, 1)
        }
    };
    Ok(Report {
        dry_run,
        sent,
        calls,
        text,
    })
}

/// `sluice replay`: reads the dead letter at `opts.uri` and replays it.
pub async fn replay(
    s3: &aws_sdk_s3::Client,
    writer: &dyn RecordWriter,
    invoker: &dyn Invoker,
    opts: &ReplayOptions,
) -> Result<Report> {
    let (bucket, key) =
        parse_s3_uri(&opts.uri).ok_or_else(|| Error::InvalidUri(opts.uri.clone()))?;
    let store = S3Store::new(s3.clone(), bucket);
    let bytes = store.get(&key).await?;
    let dl = parse_dead_letter(&opts.dead_letter_prefix, &key, &bytes)?;
    let plan = plan(&key, dl, opts)?;
    let mut note = read_json::<ReplayNote>(&store, &replayed_key(&key))
        .await?
        .unwrap_or_default();
    if let (Some(last), false) = (note.runs.last(), opts.force) {
        let mut text = plan.describe(&opts.uri);
        text.push_str(&format!(
            "already replayed: {} time(s), last at {} into {} ({} sent); nothing was sent (--force sends it again)\n",
            note.runs.len(),
            last.at,
            last.target,
            last.sent
        ));
        return Ok(Report {
            dry_run: opts.dry_run,
            sent: 0,
            calls: 0,
            text,
        });
    }
    let report = execute(&plan, &opts.uri, opts.dry_run, writer, invoker).await?;
    if !report.dry_run {
        note.runs.push(ReplayRun {
            at: sluice_core::schema::format_micros(sluice_core::telemetry::now_micros()),
            target: plan.target(),
            sent: report.sent,
        });
        write_json(&store, &replayed_key(&key), &note).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;

    fn entry(i: usize, size: usize) -> Entry {
        Entry {
            partition_key: format!("pk-{i}"),
            data: vec![b'x'; size],
            original_seq: i.to_string(),
        }
    }

    #[test]
    fn chunking_respects_count_and_bytes() {
        let many: Vec<Entry> = (0..1001).map(|i| entry(i, 10)).collect();
        let sizes: Vec<usize> = chunks(&many).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![500, 500, 1]);
        let big: Vec<Entry> = (0..6).map(|i| entry(i, 1024 * 1024)).collect();
        let sizes: Vec<usize> = chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![4, 2]);
        assert!(chunks(&[]).is_empty());
    }

    /// Rejects every entry whose partition key is in `flaky` on its first attempt.
    struct Flaky {
        flaky: Vec<String>,
        seen: Mutex<Vec<String>>,
        always: bool,
    }

    #[async_trait]
    impl RecordWriter for Flaky {
        async fn put_records(
            &self,
            _: &StreamTarget,
            entries: &[Entry],
        ) -> Result<Vec<Option<String>>> {
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| Error::InvalidUri("lock".into()))?;
            Ok(entries
                .iter()
                .map(|e| {
                    let first = !seen.contains(&e.partition_key);
                    seen.push(e.partition_key.clone());
                    (self.flaky.contains(&e.partition_key) && (first || self.always))
                        .then(|| "ProvisionedThroughputExceededException".to_string())
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn rejected_entries_are_retried_alone() {
        let entries: Vec<Entry> = (0..3).map(|i| entry(i, 3)).collect();
        let w = Flaky {
            flaky: vec!["pk-1".into()],
            seen: Mutex::new(Vec::new()),
            always: false,
        };
        let target = StreamTarget("s".into());
        let (sent, calls) = put_all(&w, &target, &entries).await.expect("put");
        assert_eq!((sent, calls), (3, 2));
        let seen = w.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, vec!["pk-0", "pk-1", "pk-2", "pk-1"]);

        let w = Flaky {
            flaky: vec!["pk-2".into()],
            seen: Mutex::new(Vec::new()),
            always: true,
        };
        match put_all(&w, &target, &entries).await {
            Err(Error::PutIncomplete {
                failed, accepted, ..
            }) => assert_eq!((failed, accepted), (1, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_dead_letters_are_refused() {
        let opts = ReplayOptions {
            uri: "s3://b/dead-letter/unknown/x.json".into(),
            dry_run: true,
            stream: None,
            function: None,
            dead_letter_prefix: "dead-letter/".into(),
            force: false,
        };
        assert!(matches!(
            plan("dead-letter/unknown/x.json", DeadLetter::Unknown, &opts),
            Err(Error::NotReplayable { .. })
        ));
    }
}
