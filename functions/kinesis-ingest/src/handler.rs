//! The Lambda handler: a [`KinesisBatch`] in, a [`BatchOutcome`] (the records to deliver again)
//! out; the edge turns it into Lambda's batch item failures ([`crate::event`]).
//!
//! Invalid data never fails the batch: it is planned into the quarantine. Only a failed write
//! (after the SDK's retries) reports the stream records with lines in that object as batch item
//! failures, so Lambda retries from the lowest of them and nothing is lost.

use std::collections::BTreeSet;

use futures::stream::{self, StreamExt};
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::store::{ObjectStore, CONTENT_TYPE_NDJSON_GZ};
use sluice_core::telemetry::{freshness_ms, now_micros, Metrics, Unit};
use sluice_core::Result;

use crate::batch::{plan_batch, Zone};
use crate::event::{BatchOutcome, KinesisBatch};

/// Name used in metrics and logs.
pub const FUNCTION: &str = "kinesis-ingest";

/// Everything the handler needs, built once at cold start.
pub struct Handler<'a> {
    pub cfg: &'a PipelineConfig,
    pub zones: &'a Zones,
    pub store: &'a dyn ObjectStore,
    /// Upper bound on concurrent writes (≥ 1).
    pub max_concurrency: usize,
}

/// Handles one Kinesis batch (sluice's edge type, or an `aws_lambda_events` `KinesisEvent`).
pub async fn handle(ctx: &Handler<'_>, event: impl Into<KinesisBatch>) -> Result<BatchOutcome> {
    let records = event.into().records;
    let mut metrics = Metrics::new(FUNCTION);
    let plan = plan_batch(ctx.cfg, ctx.zones, &records)?;

    let writes = plan.objects.iter().map(|o| async move {
        let res = ctx
            .store
            .put(&o.key, o.body.clone(), CONTENT_TYPE_NDJSON_GZ)
            .await;
        (o, res)
    });
    let results: Vec<_> = stream::iter(writes)
        .buffer_unordered(ctx.max_concurrency.max(1))
        .collect()
        .await;

    // Every write has finished: what succeeded is visible in S3 from here on.
    let visible_micros = now_micros();
    let mut failed_sources = BTreeSet::new();
    let mut written_raw = 0usize;
    let mut written_quarantine = 0usize;
    for (o, res) in &results {
        match res {
            Ok(()) => {
                let set = match &o.dataset {
                    Some(d) => metrics.dataset(d),
                    None => metrics.function(),
                };
                set.count("ObjectsWritten", 1);
                set.add("BytesRaw", o.raw_bytes as f64, Unit::Bytes);
                set.add("BytesCompressed", o.body.len() as f64, Unit::Bytes);
                match o.zone {
                    Zone::Raw => {
                        written_raw += o.records;
                        set.count("RecordsWritten", o.records);
                        if let Some(newest) = o.newest_event_micros {
                            set.least(
                                "FreshnessRaw",
                                freshness_ms(visible_micros, newest),
                                Unit::Milliseconds,
                            );
                        }
                    }
                    Zone::Quarantine => {
                        written_quarantine += o.records;
                        set.count("RecordsQuarantined", o.records);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    key = %o.key,
                    error = %e,
                    retryable = e.is_retryable(),
                    records = o.records,
                    "object write failed; its stream records are reported as batch item failures"
                );
                failed_sources.extend(o.sources.iter().copied());
            }
        }
    }

    let outcome = BatchOutcome {
        failed: failed_sources
            .iter()
            .map(|&i| records[i].seq.clone())
            .collect(),
    };

    metrics.count("RecordsIn", plan.stream_records);
    metrics.count("UserRecords", plan.user_records);
    metrics.count("RecordsFailed", failed_sources.len());
    for ((dataset, kind), n) in &plan.rejected_in {
        let set = if ctx.cfg.dataset(dataset).is_some() {
            metrics.dataset(dataset)
        } else {
            metrics.function()
        };
        set.count(&format!("Rejected_{}", kind.as_str()), *n);
    }
    if let (Some(raw), Some(gz)) = (metrics.total("BytesRaw"), metrics.total("BytesCompressed")) {
        if gz > 0.0 {
            metrics.set("CompressionRatio", raw / gz, Unit::None);
        }
    }
    metrics.emit();
    tracing::info!(
        stream_records = plan.stream_records,
        written_raw,
        written_quarantine,
        user_records = plan.user_records,
        valid = plan.valid,
        quarantined = plan.quarantined(),
        objects = plan.objects.len(),
        failed_records = failed_sources.len(),
        "batch processed"
    );
    Ok(outcome)
}
