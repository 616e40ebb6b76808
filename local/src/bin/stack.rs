//! `sluice-stack ENV_FILE`: the local stack for running one function with `cargo lambda`.
//!
//! Starts moto server and a throwaway PostgreSQL cluster on free loopback ports, creates what
//! the sample events in `events/` refer to (bucket `sluice-data`, stream `sluice-events`, the
//! Glue database, the alert topic, the collector's keys secret), seeds the bucket by running the samples through
//! kinesis-ingest and s3-transform (so the S3 events name objects that exist), writes the
//! environment the functions need to ENV_FILE (`export NAME=value` lines), and keeps
//! everything running until its standard input closes or it is interrupted.

use std::io::Read;

use anyhow::{Context, Result};
use aws_lambda_events::event::kinesis::KinesisEvent;
use s3_transform::event::S3Input;
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_local::events::{s3_event_json, sample};
use sluice_local::{workspace_root, Aws, Pg};

const BUCKET: &str = "sluice-data";
const STREAM: &str = "sluice-events";
const HMAC_KEY: &str = "sluice-local-hmac-key-0001";
/// The API key the collector's sample events carry.
const COLLECTOR_API_KEY: &str = "sluice-local-api-key-0001";

#[tokio::main]
async fn main() -> Result<()> {
    sluice_core::telemetry::set_emf_enabled(false);
    let env_file = std::env::args()
        .nth(1)
        .context("usage: sluice-stack ENV_FILE")?;
    let config_path = workspace_root().join("pipeline.toml");
    let cfg = PipelineConfig::from_path(&config_path.to_string_lossy())?;
    let aws = Aws::local().await;
    let pg = tokio::task::spawn_blocking(Pg::start).await??;

    aws.s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("create bucket")?;
    aws.kinesis
        .create_stream()
        .stream_name(STREAM)
        .shard_count(1)
        .send()
        .await
        .context("create stream")?;
    let topic = aws
        .sns
        .create_topic()
        .name("sluice-alerts")
        .send()
        .await
        .context("create topic")?;
    aws.glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&cfg.catalog.database)
                .build()?,
        )
        .send()
        .await
        .context("create glue database")?;

    // Seed: the Kinesis samples through kinesis-ingest, a dropped CSV, then s3-transform.
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), BUCKET);
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    for name in [
        "kinesis-clean.json",
        "kinesis-mixed.json",
        "kinesis-kpl.json",
    ] {
        let event: KinesisEvent = serde_json::from_value(sample(name))?;
        kinesis_ingest::handle(&ingest, event).await?;
    }
    aws.put(
        BUCKET,
        "raw/purchases/manual import café.csv",
        b"order_id,ts,user_id,amount,currency\no-9001,2025-11-22T07:00:00Z,u-1,12.50,EUR\n"
            .to_vec(),
    )
    .await;
    let mut dbcfg: tokio_postgres::Config = pg.url.parse()?;
    dbcfg.application_name("sluice-stack");
    let warehouse = s3_transform::warehouse::Postgres::new(dbcfg, None, &cfg.warehouse.schema);
    let key = s3_transform::pii::HashKey::new(HMAC_KEY.as_bytes().to_vec()).context("hmac key")?;
    let transform = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: s3_transform::input::Limits::default(),
        hash_key: Some(&key),
    };
    for k in aws.keys(BUCKET, &zones.raw).await {
        let input: S3Input = serde_json::from_value(s3_event_json(BUCKET, &k, 0))?;
        s3_transform::handle(&transform, input).await?;
    }

    let keys = sluice_local::collector::create_keys_secret(
        &aws,
        "sluice-collector-keys",
        &serde_json::json!({ "api_key": COLLECTOR_API_KEY }),
    )
    .await?;

    let env = [
        ("AWS_ENDPOINT_URL", aws.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("SLUICE_BUCKET", BUCKET.into()),
        ("SLUICE_CONFIG", config_path.to_string_lossy().into_owned()),
        ("DATABASE_URL", pg.url.clone()),
        ("SLUICE_DB_TLS", "disable".into()),
        ("SLUICE_HMAC_KEY", HMAC_KEY.into()),
        (http_collector::config::STREAM, STREAM.into()),
        (http_collector::config::KEYS_SECRET, keys),
        (
            failure_notifier::ALERT_TOPIC_ARN,
            topic.topic_arn().unwrap_or_default().to_string(),
        ),
    ];
    let text: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    std::fs::write(&env_file, text).with_context(|| format!("write {env_file}"))?;
    eprintln!(
        "sluice-stack: moto at {}, PostgreSQL on port {}; environment in {env_file}",
        aws.endpoint, pg.port
    );

    // Run until stdin closes (the owner exited) or Ctrl-C.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    });
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(pg);
    Ok(())
}
