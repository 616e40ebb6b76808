//! The Lambda handler: a [`QueueBatch`] from the on-failure queue in, a [`BatchOutcome`] (the
//! messages to redeliver) out; the edge converts both ([`crate::event`]).
//!
//! Each message is classified ([`crate::failure::classify`]), archived to the dead-letter zone
//! (Kinesis ranges are read back from the stream first) and then alerted on, in that order, so
//! an alert always points at an archive that exists. A message whose archive or alert fails is
//! reported in [`BatchOutcome::failed`] and redelivered by SQS; a message that cannot be understood
//! is archived verbatim under `unknown/` and is not a failure. Nothing is logged from payloads.

use sluice_core::env::Zones;
use sluice_core::store::ObjectStore;
use sluice_core::telemetry::Metrics;

use crate::alert::compose;
use crate::archive::{async_archive, kinesis_archive, unknown_archive, Archive, RangeRead};
use crate::error::{Error, Result};
use crate::event::{BatchOutcome, QueueBatch, QueueMessage};
use crate::failure::{classify, Failure};
use crate::kinesis::ShardReader;
use crate::sns::Alerter;

/// Name used in metrics and logs.
pub const FUNCTION: &str = "failure-notifier";

/// Everything the handler needs, built once at cold start.
pub struct Handler<'a> {
    pub zones: &'a Zones,
    pub store: &'a dyn ObjectStore,
    pub reader: &'a dyn ShardReader,
    pub alerter: &'a dyn Alerter,
}

/// What handling one message did.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub kind: &'static str,
    pub key: String,
    pub records: u64,
    pub missing: Option<u64>,
}

/// Handles one batch of on-failure messages (sluice's edge type, or an `aws_lambda_events`
/// `SqsEvent`).
pub async fn handle(ctx: &Handler<'_>, event: impl Into<QueueBatch>) -> Result<BatchOutcome> {
    let event = event.into();
    let mut metrics = Metrics::new(FUNCTION);
    let mut outcome = BatchOutcome::default();
    metrics.count("MessagesIn", event.messages.len());
    for msg in &event.messages {
        match handle_message(ctx, msg).await {
            Ok(h) => {
                metrics.count(&format!("Failures_{}", h.kind), 1);
                metrics.count("RecordsArchived", h.records as usize);
                metrics.count("RecordsMissing", h.missing.unwrap_or(0) as usize);
                metrics.count("AlertsPublished", 1);
                tracing::info!(
                    message_id = msg.message_id.as_deref().unwrap_or(""),
                    kind = h.kind,
                    key = %h.key,
                    records = h.records,
                    missing = h.missing,
                    "failure archived and alerted"
                );
            }
            Err(e) => {
                metrics.count("MessagesFailed", 1);
                tracing::warn!(
                    message_id = msg.message_id.as_deref().unwrap_or(""),
                    error = %e,
                    error_kind = e.kind(),
                    retryable = e.is_retryable(),
                    "message not archived or not alerted; reported for redelivery"
                );
                match &msg.message_id {
                    Some(id) if !id.is_empty() => outcome.failed.push(id.clone()),
                    // Without an id the failure cannot be reported per item: fail the batch.
                    _ => {
                        metrics.emit();
                        return Err(e);
                    }
                }
            }
        }
    }
    metrics.emit();
    Ok(outcome)
}

/// Archives and alerts one message.
pub async fn handle_message(ctx: &Handler<'_>, msg: &QueueMessage) -> Result<Handled> {
    let body = msg.body.as_deref().unwrap_or("");
    let failure = classify(body);
    let prefix = &ctx.zones.dead_letter;
    let archive: Archive = match &failure {
        Failure::Kinesis(k) => {
            let read = match ctx
                .reader
                .read_range(
                    &k.stream_arn,
                    &k.shard_id,
                    &k.start_sequence_number,
                    &k.end_sequence_number,
                )
                .await
            {
                Ok(records) => RangeRead::Records(records),
                Err(e) if !e.is_retryable() => RangeRead::Unreadable(e.to_string()),
                Err(e) => return Err(e),
            };
            kinesis_archive(prefix, k, &read)?
        }
        Failure::Async(a) => async_archive(prefix, a)?,
        Failure::Unknown { reason } => {
            tracing::warn!(
                message_id = msg.message_id.as_deref().unwrap_or(""),
                reason = %reason,
                "unrecognised message; archiving it verbatim"
            );
            unknown_archive(prefix, msg.message_id.as_deref(), body)
        }
    };
    ctx.store
        .put(&archive.key, archive.body.clone(), archive.content_type)
        .await
        .map_err(Error::from)?;
    let alert = compose(&failure, &archive, ctx.store.bucket());
    ctx.alerter.publish(&alert).await?;
    Ok(Handled {
        kind: failure.kind(),
        key: archive.key,
        records: archive.records,
        missing: archive.missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sns::Alert;
    use async_trait::async_trait;
    use aws_lambda_events::event::sqs::SqsEvent;
    use serde_json::json;
    use sluice_core::lake::stream::StreamRecord;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemStore {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        down: bool,
    }

    #[async_trait]
    impl ObjectStore for MemStore {
        fn bucket(&self) -> &str {
            "mem"
        }
        async fn put(&self, key: &str, body: Vec<u8>, _: &str) -> sluice_core::Result<()> {
            if self.down {
                return Err(sluice_core::Error::Storage {
                    op: "put",
                    bucket: "mem".into(),
                    key: key.into(),
                    code: "ServiceUnavailable".into(),
                    message: String::new(),
                    retryable: true,
                });
            }
            if let Ok(mut m) = self.objects.lock() {
                m.insert(key.to_string(), body);
            }
            Ok(())
        }
        async fn get(&self, key: &str) -> sluice_core::Result<Vec<u8>> {
            self.objects
                .lock()
                .ok()
                .and_then(|m| m.get(key).cloned())
                .ok_or_else(|| sluice_core::Error::NotFound {
                    bucket: "mem".into(),
                    key: key.into(),
                })
        }
        async fn get_range(&self, key: &str, _: u64, _: u64) -> sluice_core::Result<Vec<u8>> {
            self.get(key).await
        }
        async fn size(&self, key: &str) -> sluice_core::Result<u64> {
            Ok(self.get(key).await?.len() as u64)
        }
        async fn list(&self, _: &str) -> sluice_core::Result<Vec<String>> {
            Ok(self
                .objects
                .lock()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default())
        }
    }

    /// Answers every range with records, or with a Kinesis error of the given retryability.
    struct Reader(Option<bool>);

    #[async_trait]
    impl ShardReader for Reader {
        async fn read_range(
            &self,
            _: &str,
            shard: &str,
            start: &str,
            _: &str,
        ) -> Result<Vec<StreamRecord>> {
            match self.0 {
                None => Ok(vec![StreamRecord {
                    shard: "shardId-000000000000".into(),
                    seq: start.to_string(),
                    partition_key: "pk".into(),
                    data: b"{}".to_vec(),
                    arrival_micros: 0,
                }]),
                Some(retryable) => Err(Error::Kinesis {
                    op: "get_records",
                    stream: "s".into(),
                    shard: shard.into(),
                    code: if retryable {
                        "ProvisionedThroughputExceededException".into()
                    } else {
                        "ResourceNotFoundException".into()
                    },
                    message: String::new(),
                    retryable,
                }),
            }
        }
    }

    #[derive(Default)]
    struct Alerts {
        sent: Mutex<Vec<Alert>>,
        down: bool,
    }

    #[async_trait]
    impl Alerter for Alerts {
        async fn publish(&self, alert: &Alert) -> Result<()> {
            if self.down {
                return Err(Error::Alert {
                    topic: "t".into(),
                    code: "Throttling".into(),
                    message: String::new(),
                    retryable: true,
                });
            }
            if let Ok(mut s) = self.sent.lock() {
                s.push(alert.clone());
            }
            Ok(())
        }
    }

    fn kinesis_body() -> String {
        json!({
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:kinesis-ingest", "condition": "RecordAgeExceeded"},
            "timestamp": "2025-11-22T10:20:00.000Z",
            "KinesisBatchInfo": {"shardId": "shardId-000000000000", "startSequenceNumber": "7", "endSequenceNumber": "7", "batchSize": 1, "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events"}
        })
        .to_string()
    }

    fn event(bodies: &[(&str, &str)]) -> SqsEvent {
        let records: Vec<_> = bodies
            .iter()
            .map(|(id, body)| json!({"messageId": id, "body": body}))
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap_or_default()
    }

    async fn run(
        store: &MemStore,
        reader: &Reader,
        alerts: &Alerts,
        ev: SqsEvent,
    ) -> Result<Vec<String>> {
        let zones = Zones::default();
        let ctx = Handler {
            zones: &zones,
            store,
            reader,
            alerter: alerts,
        };
        Ok(handle(&ctx, ev).await?.failed)
    }

    #[tokio::test]
    async fn only_messages_that_were_not_archived_and_alerted_fail() {
        let k = kinesis_body();
        let ev = || event(&[("a", &k), ("b", "garbage")]);
        let (store, alerts) = (MemStore::default(), Alerts::default());
        let failed = run(&store, &Reader(None), &alerts, ev()).await;
        assert_eq!(failed.ok(), Some(vec![]));
        let keys = store.list("").await.unwrap_or_default();
        assert_eq!(
            keys,
            vec![
                "dead-letter/kinesis/events/shardId-000000000000/7-7.json.gz",
                "dead-letter/unknown/b.txt",
            ]
        );
        assert_eq!(alerts.sent.lock().map(|s| s.len()).unwrap_or(0), 2);

        // A retryable read error: the Kinesis message is retried, the unknown one is not.
        let failed = run(&MemStore::default(), &Reader(Some(true)), &alerts, ev()).await;
        assert_eq!(failed.ok(), Some(vec!["a".to_string()]));

        // A stream that is gone: archived as unreadable, not retried.
        let store = MemStore::default();
        let failed = run(&store, &Reader(Some(false)), &alerts, ev()).await;
        assert_eq!(failed.ok(), Some(vec![]));
        assert_eq!(store.list("").await.map(|k| k.len()).unwrap_or(0), 2);

        // S3 down or SNS down: both messages are retried.
        let down = MemStore {
            down: true,
            ..MemStore::default()
        };
        let failed = run(&down, &Reader(None), &alerts, ev()).await;
        assert_eq!(failed.ok(), Some(vec!["a".to_string(), "b".to_string()]));
        let sns_down = Alerts {
            down: true,
            ..Alerts::default()
        };
        let failed = run(&MemStore::default(), &Reader(None), &sns_down, ev()).await;
        assert_eq!(failed.ok(), Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[tokio::test]
    async fn a_failure_without_a_message_id_fails_the_invocation() {
        let down = MemStore {
            down: true,
            ..MemStore::default()
        };
        let ev: SqsEvent =
            serde_json::from_value(json!({"Records": [{"body": "x"}]})).unwrap_or_default();
        let res = run(&down, &Reader(None), &Alerts::default(), ev).await;
        assert!(matches!(res, Err(Error::Core(_))));
    }
}
