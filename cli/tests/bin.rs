//! The `sluice` binary itself against a local S3/Kinesis API (moto): argument parsing, SDK
//! configuration from the environment, reading dead letters and the dry-run output.

use std::process::{Command, Output};

use failure_notifier::archive::{async_archive, kinesis_archive, RangeRead};
use failure_notifier::failure::{classify, Failure};
use serde_json::{json, Value};
use sluice_core::lake::stream::StreamRecord;
use sluice_local::events::sample;
use sluice_local::{unique, Aws};

fn sluice(aws: &Aws, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &aws.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("SLUICE_DEAD_LETTER_PREFIX")
        .output()
        .expect("run sluice")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The Kinesis on-failure record of the committed sample, pointed at `stream_arn`.
fn kinesis_failure(stream_arn: &str) -> Failure {
    let event = sample("failure-kinesis.json");
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["body"].as_str().unwrap_or("")).expect("body");
    body["KinesisBatchInfo"]["streamArn"] = json!(stream_arn);
    body["KinesisBatchInfo"]["startSequenceNumber"] = json!("1");
    body["KinesisBatchInfo"]["endSequenceNumber"] = json!("3");
    body["KinesisBatchInfo"]["batchSize"] = json!(3);
    classify(&body.to_string())
}

#[tokio::test]
async fn dry_run_of_a_kinesis_dead_letter_sends_nothing() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let stream = unique("sluice-replay");
    aws.kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");
    let arn = format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}");
    let Failure::Kinesis(f) = kinesis_failure(&arn) else {
        panic!("the sample is a Kinesis failure")
    };
    let records: Vec<StreamRecord> = (1..=3)
        .map(|i| StreamRecord {
            shard: "shardId-000000000000".into(),
            seq: i.to_string(),
            partition_key: format!("user-{i}"),
            data: format!("{{\"n\":{i}}}").into_bytes(),
            arrival_micros: 1_763_805_600_000_000,
        })
        .collect();
    let archive =
        kinesis_archive("dead-letter/", &f, &RangeRead::Records(records)).expect("archive");
    aws.put(&bucket, &archive.key, archive.body).await;
    let uri = format!("s3://{bucket}/{}", archive.key);

    let out = sluice(&aws, &["replay", &uri, "--dry-run"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("put 3 records into stream {arn}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("seq 2  partition key user-2  7 bytes"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing was sent"), "{stdout}");
    assert!(!stdout.contains("\"n\""), "never the data");

    let it = aws
        .kinesis
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let page = aws
        .kinesis
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .expect("records");
    assert!(page.records().is_empty(), "a dry run puts nothing");

    // Without --dry-run the binary puts them, with their partition keys.
    let out = sluice(&aws, &["replay", &uri]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("done: 3 records put"));
}

#[tokio::test]
async fn async_dry_run_unknown_refusal_and_bad_arguments() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let event = sample("failure-async.json");
    let Failure::Async(f) = classify(event["Records"][0]["body"].as_str().unwrap_or("")) else {
        panic!("the sample is an async failure")
    };
    let archive = async_archive("dead-letter/", &f).expect("archive");
    aws.put(&bucket, &archive.key, archive.body).await;
    let out = sluice(
        &aws,
        &[
            "replay",
            &format!("s3://{bucket}/{}", archive.key),
            "--dry-run",
            "--function",
            "s3-transform-staging",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("invoke s3-transform-staging asynchronously (InvocationType=Event)"),
        "{stdout}"
    );

    aws.put(&bucket, "dead-letter/unknown/m-1.txt", b"hello".to_vec())
        .await;
    let out = sluice(
        &aws,
        &[
            "replay",
            &format!("s3://{bucket}/dead-letter/unknown/m-1.txt"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot replay"),
        "{}",
        text(&out.stderr)
    );

    let out = sluice(&aws, &["replay", "not-a-uri", "--dry-run"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not an s3://bucket/key URI"));

    let out = sluice(
        &aws,
        &["replay", &format!("s3://{bucket}/dead-letter/x/nope.json")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}
