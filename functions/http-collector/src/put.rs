//! Writing records to the stream: PutRecords batches (≤ 500 records, ≤ 5 MiB), only the failed
//! entries retried, with backoff, until a deadline.
//!
//! PutRecords succeeds as a call while failing single entries (`FailedRecordCount`, an
//! `ErrorCode` such as `ProvisionedThroughputExceededException` or `InternalFailure` on the
//! entry). Those entries, and the entries of a call that failed as a whole with a retryable
//! error, are sent again in the next round; entries that were written are never sent again. The
//! rounds stop when every entry is written, when the next round could not finish before the
//! deadline, or when a call fails with an error no retry can fix. [`Outcome::written`] says which
//! entries are in the stream.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use crate::error::Error;

/// Most entries in one PutRecords call.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes (data and partition keys) in one PutRecords call.
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// One record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The record's bytes.
    pub data: &'a [u8],
    /// Its partition key.
    pub partition_key: String,
}

impl Entry<'_> {
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// What one PutRecords call gave: per entry its error code, or the call's error.
pub type CallResult = Result<Vec<Option<String>>, Error>;

/// The stream port: one PutRecords call.
#[async_trait]
pub trait Stream: Send + Sync {
    /// Writes `entries` in one call; on success, the error code of every entry in order
    /// (`None`: written).
    async fn put_records(&self, entries: &[Entry<'_>]) -> CallResult;
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// No round starts that could not end before this.
    pub deadline: Instant,
    /// The first pause between rounds; doubled each round (full jitter).
    pub base_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
    /// PutRecords calls in flight at once.
    pub concurrency: usize,
    /// The longest a round is expected to take (kept free before the deadline).
    pub round_budget: Duration,
}

impl Policy {
    /// The default policy with a deadline `within` from now.
    pub fn within(within: Duration) -> Policy {
        Policy {
            deadline: Instant::now() + within,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            concurrency: 4,
            round_budget: Duration::from_millis(1500),
        }
    }
}

/// What happened to the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Per entry: whether it is in the stream.
    pub written: Vec<bool>,
    /// Rounds made (1 when nothing had to be retried).
    pub rounds: u32,
    /// PutRecords calls made.
    pub calls: u32,
    /// Entries sent again after a failure (each time counted).
    pub retried: usize,
    /// Entry error codes seen, with how often.
    pub entry_errors: Vec<(String, usize)>,
    /// The last whole-call error, if any.
    pub call_error: Option<String>,
    /// Whether the last whole-call error was one no retry can fix.
    pub fatal: bool,
}

impl Outcome {
    /// Whether every entry is in the stream.
    pub fn complete(&self) -> bool {
        self.written.iter().all(|w| *w)
    }

    /// Indexes (into the entries) not written.
    pub fn unwritten(&self) -> impl Iterator<Item = usize> + '_ {
        self.written
            .iter()
            .enumerate()
            .filter(|(_, w)| !**w)
            .map(|(i, _)| i)
    }

    fn count_error(&mut self, code: &str) {
        match self.entry_errors.iter_mut().find(|(c, _)| c == code) {
            Some((_, n)) => *n += 1,
            None => self.entry_errors.push((code.to_string(), 1)),
        }
    }
}

/// Cuts pending entry indexes into batches within both PutRecords limits.
pub fn batches(entries: &[Entry<'_>], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0usize;
    for &i in pending {
        let size = entries[i].size();
        let full = out
            .last()
            .is_none_or(|b| b.len() == MAX_BATCH_RECORDS || bytes + size > MAX_BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = out.last_mut() {
            b.push(i);
        }
    }
    out
}

/// Writes every entry it can before the policy's deadline.
pub async fn put_all(stream: &dyn Stream, entries: &[Entry<'_>], policy: Policy) -> Outcome {
    let mut out = Outcome {
        written: vec![false; entries.len()],
        ..Outcome::default()
    };
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut backoff = policy.base_backoff;
    while !pending.is_empty() {
        out.rounds += 1;
        if out.rounds > 1 {
            out.retried += pending.len();
        }
        let plan = batches(entries, &pending);
        out.calls += plan.len() as u32;
        let results: Vec<(Vec<usize>, CallResult)> =
            stream::iter(plan.into_iter().map(|idx| async move {
                let batch: Vec<Entry<'_>> = idx.iter().map(|&i| entries[i].clone()).collect();
                let r = stream.put_records(&batch).await;
                (idx, r)
            }))
            .buffer_unordered(policy.concurrency.max(1))
            .collect()
            .await;
        let mut still = Vec::new();
        for (idx, result) in results {
            match result {
                Ok(codes) if codes.len() == idx.len() => {
                    for (i, code) in idx.into_iter().zip(codes) {
                        match code {
                            None => out.written[i] = true,
                            Some(c) => {
                                out.count_error(&c);
                                still.push(i);
                            }
                        }
                    }
                }
                Ok(codes) => {
                    out.call_error = Some(format!(
                        "PutRecords answered {} entries for {}",
                        codes.len(),
                        idx.len()
                    ));
                    still.extend(idx);
                }
                Err(e) => {
                    out.fatal = !e.is_retryable();
                    out.call_error = Some(e.to_string());
                    still.extend(idx);
                }
            }
        }
        still.sort_unstable();
        pending = still;
        if pending.is_empty() || out.fatal {
            break;
        }
        let pause = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64));
        if Instant::now() + pause + policy.round_budget > policy.deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails the entries whose data is in `fail` the first `times` times each is sent.
    struct Flaky {
        fail: Vec<&'static [u8]>,
        times: usize,
        sent: Mutex<Vec<Vec<u8>>>,
        whole_call: Option<bool>,
    }

    #[async_trait]
    impl Stream for Flaky {
        async fn put_records(&self, entries: &[Entry<'_>]) -> Result<Vec<Option<String>>, Error> {
            let mut sent = self.sent.lock().unwrap();
            if let Some(retryable) = self.whole_call {
                return Err(Error::Stream {
                    code: "X".into(),
                    message: String::new(),
                    retryable,
                });
            }
            Ok(entries
                .iter()
                .map(|e| {
                    let before = sent.iter().filter(|s| s[..] == *e.data).count();
                    sent.push(e.data.to_vec());
                    (self.fail.contains(&e.data) && before < self.times)
                        .then(|| "ProvisionedThroughputExceededException".to_string())
                })
                .collect())
        }
    }

    fn entries<'a>(data: &[&'a [u8]]) -> Vec<Entry<'a>> {
        data.iter()
            .map(|d| Entry {
                data: d,
                partition_key: "k".into(),
            })
            .collect()
    }

    fn quick(within: Duration) -> Policy {
        Policy {
            base_backoff: Duration::from_millis(1),
            round_budget: Duration::from_millis(1),
            ..Policy::within(within)
        }
    }

    #[tokio::test]
    async fn only_failed_entries_are_sent_again() {
        let s = Flaky {
            fail: vec![b"b", b"d"],
            times: 2,
            sent: Mutex::default(),
            whole_call: None,
        };
        let e = entries(&[b"a", b"b", b"c", b"d"]);
        let out = put_all(&s, &e, quick(Duration::from_secs(5))).await;
        assert!(out.complete());
        assert_eq!(out.rounds, 3);
        assert_eq!(out.retried, 4);
        let sent = s.sent.lock().unwrap();
        for (d, n) in [(b"a", 1), (b"b", 3), (b"c", 1), (b"d", 3)] {
            assert_eq!(sent.iter().filter(|s| s[..] == d[..]).count(), n);
        }
        assert_eq!(
            out.entry_errors,
            [("ProvisionedThroughputExceededException".to_string(), 4)]
        );
    }

    #[tokio::test]
    async fn the_deadline_ends_the_rounds_and_names_what_is_missing() {
        let s = Flaky {
            fail: vec![b"b"],
            times: usize::MAX,
            sent: Mutex::default(),
            whole_call: None,
        };
        let e = entries(&[b"a", b"b", b"c"]);
        let out = put_all(&s, &e, quick(Duration::from_millis(50))).await;
        assert!(!out.complete());
        assert_eq!(out.unwritten().collect::<Vec<_>>(), [1]);
        assert!(out.rounds >= 2);
    }

    #[tokio::test]
    async fn a_fatal_call_error_stops_at_once() {
        let s = Flaky {
            fail: vec![],
            times: 0,
            sent: Mutex::default(),
            whole_call: Some(false),
        };
        let e = entries(&[b"a"]);
        let out = put_all(&s, &e, quick(Duration::from_secs(5))).await;
        assert!(out.fatal && !out.complete());
        assert_eq!(out.rounds, 1);
    }

    #[test]
    fn batches_respect_both_limits() {
        let big = vec![b'x'; 2 * 1024 * 1024];
        let small = [b'y'; 10];
        let mut data: Vec<&[u8]> = vec![&big, &big, &big];
        data.extend(std::iter::repeat_n(&small[..], 1001));
        let e = entries(&data);
        let all: Vec<usize> = (0..e.len()).collect();
        let b = batches(&e, &all);
        let sizes: Vec<usize> = b.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 500, 500, 2]);
        assert_eq!(b.concat(), all);
    }
}
