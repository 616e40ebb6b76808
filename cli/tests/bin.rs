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

/// `sluice check` against tables the functions themselves created (s3-transform into
/// PostgreSQL and curated/, glue-catalog into Glue): the config they came from is up to date;
/// a change that adds a field and turns a text field into a number lists the new column and
/// fails with the refusals; an invalid config fails naming the dataset.
#[tokio::test]
async fn check_compares_a_config_with_the_live_tables_and_fails_on_a_refused_change() {
    use s3_transform::warehouse::Postgres;
    use sluice_core::aws::S3Store;
    use sluice_core::env::Zones;

    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let pg = sluice_local::shared_postgres();
    let db = unique("check_db").replace('-', "_");
    let schema = unique("check").replace('-', "_");
    let v1 = std::fs::read_to_string(sluice_local::workspace_root().join("pipeline.toml"))
        .expect("pipeline.toml")
        .replace(
            "database = \"sluice_demo\"",
            &format!("database = \"{db}\""),
        )
        .replace("schema = \"sluice\"", &format!("schema = \"{schema}\""));
    let cfg = sluice_core::config::PipelineConfig::from_toml(&v1).expect("config");
    assert_eq!(cfg.warehouse.schema, schema);

    // One purchase through s3-transform and glue-catalog.
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), &bucket);
    let raw = "raw/purchases/dt=2025-11-22/hr=10/check.json";
    let line = r#"{"type":"purchase","order_id":"o-1","ts":"2025-11-22T10:00:00Z","user_id":"u-1","amount":"12.50","currency":"EUR","payment":{"method":"card"}}"#;
    aws.put(&bucket, raw, format!("{line}\n").into_bytes())
        .await;
    let warehouse = Postgres::new(pg.url.parse().expect("url"), None, &schema);
    let hmac =
        s3_transform::pii::HashKey::new(b"check-test-hmac-key-0123456789".to_vec()).expect("key");
    let transform = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: s3_transform::input::Limits {
            max_decompressed: 1 << 20,
            max_line: 1 << 16,
        },
        hash_key: Some(&hmac),
    };
    let event = |key: &str| sluice_local::events::s3_event_json(&bucket, key, 0);
    let out = s3_transform::handle(
        &transform,
        serde_json::from_value(event(raw)).expect("event"),
    )
    .await
    .expect("transform");
    assert_eq!(out.objects[0].inserted, 1, "{out:?}");
    let catalog = glue_catalog::GlueCatalog::new(aws.glue.clone());
    let cache = glue_catalog::CatalogCache::new();
    let glue = glue_catalog::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        catalog: &catalog,
        cache: &cache,
        retry: glue_catalog::RetryPolicy::default(),
    };
    for k in &out.objects[0].curated_keys {
        glue_catalog::handle(&glue, serde_json::from_value(event(k)).expect("event"))
            .await
            .expect("catalogue");
    }

    let dir = std::env::temp_dir().join(unique("sluice-check"));
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write config");
        p.to_string_lossy().into_owned()
    };
    let postgres = format!("{} sslmode=disable", pg.url);

    let same = write("v1.toml", &v1);
    let out = sluice(&aws, &["check", &same, "--glue", "--postgres", &postgres]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("glue     {db}.purchases: up to date")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("postgres {schema}.purchases: up to date")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("glue     {db}.signups: will be created")),
        "{stdout}"
    );

    let changed = v1
        .replace(
            r#"{ name = "currency", type = "string", required = true },"#,
            r#"{ name = "currency", type = "int", required = true },"#,
        )
        .replace(
            r#"{ name = "coupon", type = "string" },"#,
            r#"{ name = "coupon", type = "string" },
  { name = "channel", type = "string" },"#,
        );
    assert_ne!(changed, v1);
    let changed = write("v2.toml", &changed);
    let out = sluice(
        &aws,
        &[
            "check",
            &changed,
            "--glue",
            "--postgres",
            &postgres,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let purchases: Vec<&Value> = report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|t| {
            t["table"]
                .as_str()
                .is_some_and(|n| n.ends_with(".purchases"))
        })
        .collect();
    assert_eq!(purchases.len(), 2, "{report}");
    for t in purchases {
        assert_eq!(t["added"], json!(["channel"]), "{t}");
        let refused = t["refused"].to_string();
        assert!(refused.contains("currency"), "{t}");
    }

    let invalid = write(
        "v3.toml",
        &v1.replace("key = \"order_id\"", "key = \"no_such_field\""),
    );
    let out = sluice(&aws, &["check", &invalid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("purchases"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bash completion script loads in bash itself and completes the subcommands.
#[test]
fn bash_completion_loads_and_offers_the_subcommands() {
    let script = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["completions", "bash"])
        .output()
        .expect("run sluice");
    assert!(script.status.success());
    let path = std::env::temp_dir().join(unique("sluice-completion"));
    std::fs::write(&path, &script.stdout).expect("write script");
    // Complete `sluice ` (the empty second word) the way bash calls the function.
    let probe = format!(
        "source {} && complete -p sluice && COMP_WORDS=(sluice '') COMP_CWORD=1 COMP_LINE='sluice ' COMP_POINT=7 && _sluice sluice '' sluice && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let _ = std::fs::remove_file(&path);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for sub in ["check", "replay", "completions"] {
        assert!(stdout.lines().any(|l| l == sub), "{sub} offered: {stdout}");
    }
}
