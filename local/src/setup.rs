//! Creating the demo's local stack (bucket, queues, topic, Glue database, S3 notifications,
//! stream) and putting the producers' records into it.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use sluice_core::config::PipelineConfig;

use crate::clickstream::Generated;
use crate::Aws;

pub(crate) const STREAM: &str = "sluice-events";
pub const BUCKET: &str = "sluice-demo";
pub(crate) const RAW_QUEUE: &str = "sluice-raw-notifications";
pub(crate) const CURATED_QUEUE: &str = "sluice-curated-notifications";
pub(crate) const FAILURE_QUEUE: &str = "sluice-on-failure";
pub(crate) const ALERT_TOPIC: &str = "sluice-alerts";
pub(crate) const ALERT_QUEUE: &str = "sluice-alerts-inbox";
pub(crate) const ACCOUNT: &str = "123456789012";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub events: usize,
    pub shards: i32,
    pub batch_size: usize,
    pub bad_per_mille: u32,
    pub seed: u64,
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            events: 20_000,
            shards: 2,
            batch_size: 1_000,
            bad_per_mille: 30,
            seed: 42,
            progress: true,
        }
    }
}

/// The ARN of a demo queue.
pub(crate) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
}

/// Creates the demo's bucket, queues, topic, Glue database, S3 notifications and stream.
pub(crate) async fn setup(aws: &Aws, cfg: &PipelineConfig, opts: &Options) -> Result<()> {
    aws.s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("create bucket")?;
    for q in [RAW_QUEUE, CURATED_QUEUE, FAILURE_QUEUE, ALERT_QUEUE] {
        aws.sqs
            .create_queue()
            .queue_name(q)
            .send()
            .await
            .with_context(|| format!("create queue {q}"))?;
    }
    let topic = aws
        .sns
        .create_topic()
        .name(ALERT_TOPIC)
        .send()
        .await
        .context("create topic")?;
    aws.sns
        .subscribe()
        .topic_arn(topic.topic_arn().unwrap_or_default())
        .protocol("sqs")
        .endpoint(queue_arn(ALERT_QUEUE))
        .send()
        .await
        .context("subscribe alert inbox")?;
    aws.glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&cfg.catalog.database)
                .description("sluice demo lake")
                .build()
                .context("database input")?,
        )
        .send()
        .await
        .context("create glue database")?;
    let rule = |prefix: &str| -> Result<NotificationConfigurationFilter> {
        Ok(NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(prefix)
                            .build(),
                    )
                    .build(),
            )
            .build())
    };
    let notifications = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("raw-to-transform")
                .queue_arn(queue_arn(RAW_QUEUE))
                .events(Event::S3ObjectCreated)
                .filter(rule("raw/")?)
                .build()
                .context("queue configuration")?,
        )
        .queue_configurations(
            QueueConfiguration::builder()
                .id("curated-to-catalog")
                .queue_arn(queue_arn(CURATED_QUEUE))
                .events(Event::S3ObjectCreated)
                .filter(rule("curated/")?)
                .build()
                .context("queue configuration")?,
        )
        .build();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(notifications)
        .send()
        .await
        .context("configure bucket notifications")?;
    aws.kinesis
        .create_stream()
        .stream_name(STREAM)
        .shard_count(opts.shards)
        .send()
        .await
        .context("create stream")?;
    for _ in 0..100 {
        let d = aws
            .kinesis
            .describe_stream_summary()
            .stream_name(STREAM)
            .send()
            .await?;
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("stream {STREAM} did not become active")
}

/// PutRecords of one chunk, retrying the records Kinesis throttled.
pub(crate) async fn put_records(aws: &Aws, chunk: &[Generated]) -> Result<()> {
    let mut pending: Vec<PutRecordsRequestEntry> = chunk
        .iter()
        .map(|e| {
            PutRecordsRequestEntry::builder()
                .partition_key(&e.partition_key)
                .data(Blob::new(e.data.clone()))
                .build()
        })
        .collect::<Result<_, _>>()?;
    for _ in 0..10 {
        let out = aws
            .kinesis
            .put_records()
            .stream_name(STREAM)
            .set_records(Some(pending.clone()))
            .send()
            .await?;
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(());
        }
        pending = pending
            .into_iter()
            .zip(out.records())
            .filter(|(_, r)| r.error_code().is_some())
            .map(|(e, _)| e)
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("PutRecords kept failing")
}
