//! Lambda entry point of kinesis-ingest: configuration and clients once, then the handler
//! (with the pipeline config current for each invocation).

use aws_lambda_events::event::streams::KinesisEventResponse;
use kinesis_ingest::handler::FUNCTION;
use kinesis_ingest::{handle, Config, Handler, KinesisBatch};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::{s3_client, sdk_config, ConfigWatch, S3Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    let watch =
        ConfigWatch::load(&config.config_location, &s3, config.config_ttl, FUNCTION).await?;
    let store = S3Store::new(s3, &config.common.bucket);
    lambda_runtime::run(service_fn(|event: LambdaEvent<KinesisBatch>| async {
        let cfg = watch.current().await;
        let ctx = Handler {
            cfg: &cfg,
            zones: &config.common.zones,
            store: &store,
            max_concurrency: config.max_concurrency,
        };
        handle(&ctx, event.payload)
            .await
            .map(KinesisEventResponse::from)
    }))
    .await
}
