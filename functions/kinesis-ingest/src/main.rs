//! Lambda entry point of kinesis-ingest: configuration and clients once, then the handler.

use aws_lambda_events::event::streams::KinesisEventResponse;
use kinesis_ingest::{handle, Ingest, KinesisBatch};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::{load_pipeline_config, s3_client, sdk_config, S3Store};
use sluice_core::env::{self, Zones};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    let cfg = load_pipeline_config(&env::env_required(env::CONFIG)?, &s3).await?;
    let zones = Zones::from_env()?;
    let store = S3Store::new(s3, env::env_required(env::BUCKET)?);
    let max_concurrency = env::env_parse(
        env::MAX_CONCURRENCY,
        kinesis_ingest::handler::DEFAULT_MAX_CONCURRENCY,
    )?;
    let ctx = Ingest {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<KinesisBatch>| async {
        handle(&ctx, event.payload)
            .await
            .map(KinesisEventResponse::from)
    }))
    .await
}
