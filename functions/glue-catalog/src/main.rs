//! Lambda entry point of glue-catalog: configuration, clients and the catalog cache once, then
//! the handler.

use glue_catalog::event::S3Input;
use glue_catalog::{handle, CatalogCache, Config, GlueCatalog, Handler, RetryPolicy};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::{load_pipeline_config, s3_client, sdk_config, S3Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    let cfg = load_pipeline_config(&config.config_location, &s3).await?;
    let store = S3Store::new(s3, &config.common.bucket);
    let catalog = GlueCatalog::new(aws_sdk_glue::Client::new(&sdk));
    let cache = CatalogCache::new();
    let ctx = Handler {
        cfg: &cfg,
        zones: &config.common.zones,
        store: &store,
        catalog: &catalog,
        cache: &cache,
        retry: RetryPolicy::default(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Input>| {
        handle(&ctx, event.payload)
    }))
    .await
}
