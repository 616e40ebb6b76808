//! Lambda entry point of s3-transform: settings, secrets and clients once, then the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use s3_transform::event::S3Input;
use s3_transform::warehouse::Postgres;
use s3_transform::{handle, settings, Transform};
use sluice_core::aws::{load_pipeline_config, s3_client, sdk_config, S3Store};
use sluice_core::env::{self, Zones};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let cfg = load_pipeline_config(&env::env_required(env::CONFIG)?, &s3).await?;
    let zones = Zones::from_env()?;
    let store = S3Store::new(s3, env::env_required(env::BUCKET)?);
    let limits = settings::limits_from_env()?;
    let hash_key = settings::hash_key(&cfg, &sm).await?;
    let (db, tls) = settings::database(&sm).await?;
    let warehouse = Postgres::new(db, tls, &cfg.warehouse.schema);
    let ctx = Transform {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits,
        hash_key: hash_key.as_ref(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Input>| {
        handle(&ctx, event.payload)
    }))
    .await
}
