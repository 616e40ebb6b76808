//! Lambda entry point of glue-catalog: configuration, clients and the catalog cache once, then
//! the handler.

use glue_catalog::event::S3Input;
use glue_catalog::handler::FUNCTION;
use glue_catalog::{handle, CatalogCache, Config, GlueCatalog, Handler, RetryPolicy};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::{s3_client, sdk_config, ConfigWatch, S3Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk)?;
    // The catalog cache is per database: a warm container keeps the database it started with.
    let watch = ConfigWatch::load(&config.config_location, &s3, config.config_ttl, FUNCTION)
        .await?
        .with_check(Box::new(glue_catalog::config::reload_check));
    let store = S3Store::new(s3, &config.common.bucket);
    let catalog = GlueCatalog::new(aws_sdk_glue::Client::new(&sdk));
    let cache = CatalogCache::new();
    lambda_runtime::run(service_fn(|event: LambdaEvent<S3Input>| async {
        let cfg = watch.current().await;
        let ctx = Handler {
            cfg: &cfg,
            zones: &config.common.zones,
            store: &store,
            catalog: &catalog,
            cache: &cache,
            retry: RetryPolicy::default(),
        };
        handle(&ctx, event.payload).await
    }))
    .await
}
