//! Lambda entry point of http-collector: configuration, keys and clients once, then requests.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use http_collector::auth::{Keys, SecretsManagerKeys};
use http_collector::event::{deadline_of, request_of, response_of};
use http_collector::kinesis::KinesisStream;
use http_collector::{Config, Handler};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::sdk_config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let cfg = Config::from_env()?;
    let sdk = sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let keys = Keys::new(
        Box::new(SecretsManagerKeys::new(secrets, &cfg.keys_secret)),
        cfg.keys_ttl,
    );
    keys.load().await?;
    let stream = Box::new(KinesisStream::new(
        aws_sdk_kinesis::Client::new(&sdk),
        &cfg.stream,
    ));
    let h = Handler { cfg, stream, keys };
    let h = &h;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let deadline = deadline_of(&event.context);
            let resp = match request_of(event.payload) {
                Ok(req) => h.handle(&req, deadline).await,
                Err(resp) => resp,
            };
            Ok::<_, Error>(response_of(resp))
        },
    ))
    .await
}
