//! `sluice backfill`: s3-transform over the raw objects of a dataset and a time range again,
//! after a schema or PII-rule change.
//!
//! The raw objects are listed from the range's `dt=` days and kept when their partition hour
//! is in the range. Each is then either transformed here, with s3-transform's own handler
//! against the bucket and PostgreSQL ([`Mode::Local`]), or handed to the deployed function as
//! the S3 notification it would have received, by an asynchronous `Invoke`
//! ([`Mode::Invoke`]); at most `parallel` at a time either way.
//!
//! It is idempotent because the transform is: the same raw object gives the same curated keys
//! and bytes and the same PostgreSQL rows (a merge on the record key). It is resumable: every
//! object done is appended to a checkpoint file, and a run given the same checkpoint skips
//! them. The final count reconciles: objects listed = done + skipped (from the checkpoint) +
//! failed; locally it also says where the records of the objects done went (curated,
//! rejected to the quarantine, left out by a filter, duplicates within an object).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sluice_core::aws::{Listed, S3Store};
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{day_prefix, parse_zone_key};
use sluice_core::schema::format_micros;
use sluice_core::store::ObjectStore;

use crate::error::{Error, Result};
use crate::ports::Invoker;
use crate::quarantine::hour_start;
use crate::when::Span;

/// How each raw object is transformed.
pub enum Mode<'a> {
    /// Here, with s3-transform's handler.
    Local(s3_transform::Handler<'a>),
    /// By the deployed function, invoked asynchronously with the object's S3 notification.
    Invoke {
        function: String,
        invoker: &'a dyn Invoker,
    },
}

impl Mode<'_> {
    fn name(&self) -> String {
        match self {
            Mode::Local(_) => "local".into(),
            Mode::Invoke { function, .. } => format!("invoke {function}"),
        }
    }
}

/// What to backfill.
pub struct Backfill<'a> {
    pub store: &'a S3Store,
    pub zones: &'a Zones,
    pub cfg: &'a PipelineConfig,
    pub dataset: String,
    pub span: Span,
    pub mode: Mode<'a>,
    pub parallel: usize,
    pub dry_run: bool,
    /// Objects done are appended here, and skipped when it already names them; removed when
    /// a run ends with nothing failed.
    pub checkpoint: Option<PathBuf>,
    /// Called after each object, with (objects finished, objects to do).
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

/// The first line of a checkpoint: what it is a checkpoint of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CheckpointHeader {
    dataset: String,
    mode: String,
    /// A hash of the pipeline config: objects done under another config are not done.
    config: String,
}

/// The outcome of `sluice backfill`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    pub dataset: String,
    pub from: String,
    pub to: String,
    pub mode: String,
    pub dry_run: bool,
    /// Raw objects of the dataset in the range.
    pub objects: usize,
    pub bytes: u64,
    /// Already done according to the checkpoint.
    pub skipped: usize,
    /// Transformed here, or invocations queued.
    pub done: usize,
    /// `key: error`, for the objects that failed (they are not checkpointed).
    pub failed: Vec<String>,
    /// Local mode: the records of the objects done (curated + rejected + filtered +
    /// duplicates) and where they went.
    pub records: usize,
    pub curated: usize,
    pub rejected: usize,
    pub filtered: usize,
    pub duplicates: usize,
    pub inserted: u64,
    pub updated: u64,
    pub checkpoint: Option<String>,
}

impl BackfillReport {
    /// Whether every object listed is done, skipped or failed.
    pub fn reconciles(&self) -> bool {
        self.objects == self.done + self.skipped + self.failed.len()
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = format!(
            "backfill of {} from {} to {} ({}): {} raw object(s), {} bytes\n",
            self.dataset, self.from, self.to, self.mode, self.objects, self.bytes
        );
        if self.dry_run {
            out.push_str(&format!(
                "dry run: would transform {} object(s) ({} already done per the checkpoint); nothing was changed\n",
                self.objects - self.skipped,
                self.skipped
            ));
            return out;
        }
        out.push_str(&format!(
            "done {}, skipped {} (checkpoint), failed {}\n",
            self.done,
            self.skipped,
            self.failed.len()
        ));
        if self.mode == "local" {
            out.push_str(&format!(
                "records {}: curated {}, rejected {} (to the quarantine), filtered {}, duplicates {}; PostgreSQL inserted {}, updated {}\n",
                self.records,
                self.curated,
                self.rejected,
                self.filtered,
                self.duplicates,
                self.inserted,
                self.updated
            ));
        }
        for f in &self.failed {
            out.push_str(&format!("  failed: {f}\n"));
        }
        out.push_str(match self.reconciles() {
            true => "reconciled: every object listed is done, skipped or failed\n",
            false => "NOT RECONCILED\n",
        });
        if let Some(c) = &self.checkpoint {
            out.push_str(&format!(
                "checkpoint {c} kept: run the same command again to redo only what is not done\n"
            ));
        }
        out
    }
}

/// The raw objects of `dataset` whose partition hour is in `span`, by key.
pub async fn raw_objects(
    store: &S3Store,
    raw_prefix: &str,
    dataset: &str,
    span: Span,
) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for day in span.days() {
        for o in store
            .list_detailed(&day_prefix(raw_prefix, dataset, &day))
            .await?
        {
            let hour = parse_zone_key(raw_prefix, &o.key)
                .and_then(|z| z.partition)
                .map(|p| hour_start(&p));
            if hour.is_some_and(|h| span.has_hour(h)) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

fn read_checkpoint(path: &PathBuf, header: &CheckpointHeader) -> Result<BTreeSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::Usage(format!("{}: {e}", path.display()))),
    };
    let mut lines = text.lines();
    let first: Option<CheckpointHeader> = lines.next().and_then(|l| serde_json::from_str(l).ok());
    if first.as_ref() != Some(header) {
        return Err(Error::Usage(format!(
            "{} is the checkpoint of another backfill ({}): finish that one, or delete the file or pass another --checkpoint to start afresh",
            path.display(),
            first.map_or("unreadable".to_string(), |h| format!(
                "{}, {}, config {}",
                h.dataset, h.mode, h.config
            ))
        )));
    }
    // A line cut short by an interruption is not a key of the dataset: it is redone.
    Ok(lines
        .filter_map(|l| serde_json::from_str::<String>(l).ok())
        .collect())
}

fn append(file: &mut Option<std::fs::File>, line: &str) -> Result<()> {
    if let Some(f) = file {
        writeln!(f, "{line}")
            .and_then(|_| f.flush())
            .map_err(|e| Error::Usage(format!("writing the checkpoint: {e}")))?;
    }
    Ok(())
}

/// Runs a backfill.
pub async fn backfill(b: &Backfill<'_>) -> Result<BackfillReport> {
    if b.cfg.dataset(&b.dataset).is_none() {
        return Err(Error::Usage(format!(
            "--dataset {}: the config declares no such dataset",
            b.dataset
        )));
    }
    let header = CheckpointHeader {
        dataset: b.dataset.clone(),
        mode: b.mode.name(),
        config: format!(
            "{:016x}",
            sluice_core::lake::keys::stable_hash(&format!("{:?}", b.cfg))
        ),
    };
    let objects = raw_objects(b.store, &b.zones.raw, &b.dataset, b.span).await?;
    let done_before = match &b.checkpoint {
        Some(p) => read_checkpoint(p, &header)?,
        None => BTreeSet::new(),
    };
    let mut report = BackfillReport {
        dataset: b.dataset.clone(),
        from: format_micros(b.span.from),
        to: format_micros(b.span.to),
        mode: header.mode.clone(),
        dry_run: b.dry_run,
        objects: objects.len(),
        bytes: objects.iter().map(|o| o.size).sum(),
        checkpoint: b.checkpoint.as_ref().map(|p| p.display().to_string()),
        ..BackfillReport::default()
    };
    let todo: Vec<&Listed> = objects
        .iter()
        .filter(|o| !done_before.contains(&o.key))
        .collect();
    report.skipped = objects.len() - todo.len();
    if b.dry_run {
        return Ok(report);
    }
    let mut file = match &b.checkpoint {
        Some(p) => {
            let fresh = !p.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            if fresh {
                writeln!(f, "{}", serde_json::to_string(&header).unwrap_or_default())
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            }
            Some(f)
        }
        None => None,
    };
    let total = todo.len() as u64;
    let mut results = futures::stream::iter(todo.into_iter().map(|o| one(b, o)))
        .buffer_unordered(b.parallel.max(1));
    let mut finished = 0;
    while let Some((key, outcome)) = results.next().await {
        finished += 1;
        match outcome {
            Ok(counts) => {
                report.done += 1;
                report.records += counts.records;
                report.curated += counts.curated;
                report.rejected += counts.rejected;
                report.filtered += counts.filtered;
                report.duplicates += counts.duplicates;
                report.inserted += counts.inserted;
                report.updated += counts.updated;
                append(&mut file, &serde_json::to_string(&key).unwrap_or_default())?;
            }
            Err(e) => report.failed.push(format!("{key}: {e}")),
        }
        (b.progress)(finished, total);
    }
    report.failed.sort();
    if let (Some(p), true) = (&b.checkpoint, report.failed.is_empty()) {
        drop(file);
        std::fs::remove_file(p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        report.checkpoint = None;
    }
    Ok(report)
}

#[derive(Default)]
struct Counts {
    records: usize,
    curated: usize,
    rejected: usize,
    filtered: usize,
    duplicates: usize,
    inserted: u64,
    updated: u64,
}

async fn one(b: &Backfill<'_>, o: &Listed) -> (String, std::result::Result<Counts, String>) {
    let event = sluice_core::notify::object_created_json(
        b.store.bucket(),
        &o.key,
        o.size,
        &format_micros(o.modified_micros),
        "sluice-backfill",
    );
    let outcome = match &b.mode {
        Mode::Invoke { function, invoker } => {
            let payload = serde_json::to_vec(&event).unwrap_or_default();
            invoker
                .invoke_event(function, &payload)
                .await
                .map(|()| Counts::default())
                .map_err(|e| e.to_string())
        }
        Mode::Local(handler) => match serde_json::from_value(event) {
            Ok(input) => s3_transform::handle(handler, input)
                .await
                .map_err(|e| e.to_string())
                .and_then(|out| {
                    let mut c = Counts::default();
                    for obj in &out.objects {
                        let filtered: usize = obj.filtered.values().sum();
                        c.records += obj.rows + obj.rejected + obj.duplicates + filtered;
                        c.curated += obj.rows;
                        c.rejected += obj.rejected;
                        c.filtered += filtered;
                        c.duplicates += obj.duplicates;
                        c.inserted += obj.inserted;
                        c.updated += obj.updated;
                    }
                    match out.objects.is_empty() {
                        true => Err(format!(
                            "s3-transform skipped it: {:?}",
                            out.skipped.keys().collect::<Vec<_>>()
                        )),
                        false => Ok(c),
                    }
                }),
            Err(e) => Err(format!("the notification does not parse: {e}")),
        },
    };
    (o.key.clone(), outcome)
}
