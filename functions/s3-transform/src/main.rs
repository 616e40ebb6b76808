//! Lambda entry point of s3-transform: configuration, secrets and clients once, then the
//! handler (with the pipeline config current for each invocation).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use s3_transform::event::S3Input;
use s3_transform::handler::FUNCTION;
use s3_transform::warehouse::Postgres;
use s3_transform::{handle, Config, Handler};
use sluice_core::aws::{s3_client, sdk_config, ConfigWatch, S3Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let watch =
        ConfigWatch::load(&config.config_location, &s3, config.config_ttl, FUNCTION).await?;
    let cfg = watch.current().await;
    let store = S3Store::new(s3, &config.common.bucket);
    let hash_key = config.hash_key(&cfg, &sm).await?;
    let (db, tls) = config.database(&sm).await?;
    let warehouse =
        Postgres::new(db, tls, &cfg.warehouse.schema).with_credentials(config.credentials(&sm));
    let watch = watch.with_check(s3_transform::config::reload_check_with(hash_key.is_some()));
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Input>| async {
        let cfg = watch.current().await;
        let ctx = Handler {
            cfg: &cfg,
            zones: &config.common.zones,
            store: &store,
            warehouse: &warehouse,
            limits: config.limits,
            hash_key: hash_key.as_ref(),
        };
        handle(&ctx, event.payload).await
    }))
    .await
}
