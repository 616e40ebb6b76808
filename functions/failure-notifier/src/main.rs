//! Lambda entry point of failure-notifier: configuration and clients once, then the handler.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use failure_notifier::kinesis::KinesisReader;
use failure_notifier::sns::SnsAlerter;
use failure_notifier::{handle, Config, Handler, QueueBatch};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sluice_core::aws::{s3_client, sdk_config, S3Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice_core::telemetry::init_logging();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let store = S3Store::new(s3_client(&sdk)?, &config.common.bucket);
    let reader = KinesisReader::new(aws_sdk_kinesis::Client::new(&sdk));
    let alerter = SnsAlerter::new(aws_sdk_sns::Client::new(&sdk), &config.alert_topic_arn);
    let ctx = Handler {
        zones: &config.common.zones,
        store: &store,
        reader: &reader,
        alerter: &alerter,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<QueueBatch>| async {
        handle(&ctx, event.payload)
            .await
            .map(SqsBatchResponse::from)
    }))
    .await
}
