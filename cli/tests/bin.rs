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
    sluice_with(aws, args, &[])
}

fn sluice_with(aws: &Aws, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .envs(env.iter().copied())
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

/// The operator's loop against moto and PostgreSQL with the real binary: purchases quarantined
/// by a bad config at ingest (kinesis-ingest) and at transform (s3-transform) are listed, shown,
/// requeued after the fix (a dry run first), land in curated (read back by DuckDB) and
/// PostgreSQL, and a second requeue sends nothing; `status` reports all of it.
#[tokio::test]
async fn quarantine_requeue_after_a_fix_lands_every_record_once_and_status_reports_it() {
    use s3_transform::warehouse::Postgres;
    use sluice_core::aws::S3Store;
    use sluice_core::config::PipelineConfig;
    use sluice_core::env::Zones;
    use sluice_local::events::{kinesis_event, record, s3_event_json};
    use sluice_local::readers::{duckdb, Files};

    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let pg = sluice_local::shared_postgres();
    let schema = unique("requeue").replace('-', "_");
    let fixed = std::fs::read_to_string(sluice_local::workspace_root().join("pipeline.toml"))
        .expect("pipeline.toml")
        .replace("schema = \"sluice\"", &format!("schema = \"{schema}\""));
    let broken_text = fixed.replace(
        r#"{ name = "currency", type = "string", required = true },"#,
        r#"{ name = "currency", type = "int", required = true },"#,
    );
    assert_ne!(broken_text, fixed);
    let good = PipelineConfig::from_toml(&fixed).expect("config");
    let broken = PipelineConfig::from_toml(&broken_text).expect("config");
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), &bucket);
    let stream = unique("sluice-requeue");
    aws.kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");

    let now = sluice_core::telemetry::now_micros() as f64 / 1e6;
    let ts = sluice_core::schema::format_micros((now as i64 - 1800) * 1_000_000);
    let purchase = |id: &str| {
        format!(
            r#"{{"type":"purchase","order_id":"{id}","ts":"{ts}","user_id":"u-{id}","amount":"12.50","currency":"EUR","payment":{{"method":"card"}}}}"#
        )
    };
    let ingest = |cfg, records: Vec<sluice_core::lake::stream::StreamRecord>| {
        let store = &store;
        let zones = &zones;
        async move {
            let h = kinesis_ingest::Handler {
                cfg,
                zones,
                store,
                max_concurrency: 4,
            };
            kinesis_ingest::handle(&h, kinesis_event(&records))
                .await
                .expect("ingest")
        }
    };
    let warehouse = Postgres::new(pg.url.parse().expect("url"), None, &schema);
    let hmac =
        s3_transform::pii::HashKey::new(b"requeue-test-hmac-key-0123456789".to_vec()).expect("key");
    let transform = |cfg, key: String| {
        let store = &store;
        let zones = &zones;
        let warehouse = &warehouse;
        let hmac = &hmac;
        let event = s3_event_json(&bucket, &key, 0);
        async move {
            let h = s3_transform::Handler {
                cfg,
                zones,
                store,
                warehouse,
                limits: s3_transform::input::Limits {
                    max_decompressed: 1 << 20,
                    max_line: 1 << 16,
                },
                hash_key: Some(hmac),
            };
            s3_transform::handle(&h, serde_json::from_value(event).expect("event"))
                .await
                .expect("transform")
        }
    };

    // o-1..o-3 are refused at ingest by the broken config; o-4 and o-5 pass ingest under the
    // good one and are refused by s3-transform still running the broken one.
    // One more record is not JSON at all: quarantined as _unrouted, never selected below.
    let mut at_ingest: Vec<_> = (1..=3)
        .map(|i| record(i, purchase(&format!("o-{i}")), now))
        .collect();
    at_ingest.push(record(6, "not json", now));
    ingest(&broken, at_ingest).await;
    ingest(
        &good,
        (4..=5)
            .map(|i| record(i, purchase(&format!("o-{i}")), now))
            .collect(),
    )
    .await;
    for key in aws.keys(&bucket, "raw/purchases/").await {
        let out = transform(&broken, key).await;
        assert_eq!(out.objects[0].rejected, 2, "{out:?}");
    }

    let list = sluice(&aws, &["quarantine", "list", "--bucket", &bucket, "--json"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let report: Value = serde_json::from_slice(&list.stdout).expect("list JSON");
    let rows = report["rows"].as_array().expect("rows");
    let counted: u64 = rows.iter().filter_map(|r| r["records"].as_u64()).sum();
    assert_eq!(counted, 6, "{report}");
    let (unrouted, rows): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r["dataset"] == "_unrouted");
    assert_eq!(unrouted.len(), 1, "{report}");
    assert_eq!(unrouted[0]["kind"], "invalid_json", "{report}");
    assert!(
        rows.iter().all(|r| r["dataset"] == "purchases"
            && r["kind"] == "wrong_type"
            && r["requeued"] == 0),
        "{report}"
    );
    let bad = sluice(
        &aws,
        &[
            "quarantine",
            "list",
            "--bucket",
            &bucket,
            "--from",
            "yesterday",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a malformed time is a usage error"
    );
    assert!(
        text(&bad.stderr).contains("is not a time"),
        "{}",
        text(&bad.stderr)
    );
    let human = text(&sluice(&aws, &["quarantine", "list", "--bucket", &bucket]).stdout);
    assert!(
        human.contains("quarantined records from") && human.contains("wrong_type"),
        "{human}"
    );

    // show: the reason and the decoded payload of each kind of origin.
    for row in rows {
        let first = row["first"].as_str().expect("first");
        let (uri, line) = first.split_once(" --line ").expect("uri and line");
        let shown = sluice(&aws, &["quarantine", "show", uri, "--line", line, "--json"]);
        assert!(shown.status.success(), "{}", text(&shown.stderr));
        let shown: Value = serde_json::from_slice(&shown.stdout).expect("show JSON");
        assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
        let r = &shown[0];
        assert!(
            r["reason"].as_str().is_some_and(|s| s.contains("currency")),
            "{r}"
        );
        assert!(
            r["payload"]
                .as_str()
                .is_some_and(|s| s.contains("\"order_id\":\"o-")),
            "{r}"
        );
        assert!(
            r["requeue"]
                .as_str()
                .is_some_and(|s| s.contains("partition key pk-")),
            "{r}"
        );
    }

    let requeue = |extra: &[&str]| {
        let mut args = vec![
            "quarantine",
            "requeue",
            "--bucket",
            &bucket,
            "--stream",
            &stream,
            "--dataset",
            "purchases",
            "--kind",
            "wrong_type",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = sluice(&aws, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("requeue JSON")
    };
    let dry = requeue(&["--dry-run"]);
    assert_eq!(
        (dry["selected"].as_u64(), dry["sent"].as_u64()),
        (Some(5), Some(5)),
        "{dry}"
    );
    assert!(
        sluice_local::stream::read_stream(&aws.kinesis, &stream)
            .await
            .expect("read")
            .is_empty(),
        "a dry run sends nothing"
    );
    let first = requeue(&[]);
    assert_eq!(first["sent"].as_u64(), Some(5), "{first}");
    assert_eq!(first["notes_written"].as_u64(), Some(2), "{first}");
    let second = requeue(&[]);
    assert_eq!(
        (second["sent"].as_u64(), second["already_requeued"].as_u64()),
        (Some(0), Some(5)),
        "{second}"
    );

    // The stream holds the five records once, with their original partition keys and bytes.
    let sent = sluice_local::stream::read_stream(&aws.kinesis, &stream)
        .await
        .expect("read");
    let mut got: Vec<(String, String)> = sent
        .iter()
        .map(|r| (r.partition_key.clone(), text(&r.data)))
        .collect();
    got.sort();
    let want: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("pk-{i}"), purchase(&format!("o-{i}"))))
        .collect();
    assert_eq!(got, want);

    // With the fix deployed, the requeued records flow through to curated and PostgreSQL.
    let before: std::collections::BTreeSet<String> = aws
        .keys(&bucket, "raw/purchases/")
        .await
        .into_iter()
        .collect();
    ingest(&good, sent).await;
    for key in aws.keys(&bucket, "raw/purchases/").await {
        if !before.contains(&key) {
            let out = transform(&good, key).await;
            assert_eq!(out.objects[0].inserted, 5, "{out:?}");
        }
    }
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .expect("pg");
    tokio::spawn(conn);
    let ids: Vec<String> = client
        .query(
            &format!("SELECT order_id FROM {schema}.purchases ORDER BY order_id"),
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["o-1", "o-2", "o-3", "o-4", "o-5"]);
    let files = Files::new().expect("dir");
    for key in aws.keys(&bucket, "curated/purchases/").await {
        files
            .put(&key, &aws.get(&bucket, &key).await)
            .expect("copy");
    }
    let parquet = duckdb(&format!(
        "SELECT order_id, currency FROM read_parquet('{}/**/*.parquet') ORDER BY order_id",
        files.dir().display()
    ))
    .expect("DuckDB reads curated");
    let got: Vec<(String, String)> = parquet
        .iter()
        .map(|r| (r["order_id"].to_string(), r["currency"].to_string()))
        .collect();
    let want: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("\"o-{i}\""), "\"EUR\"".to_string()))
        .collect();
    assert_eq!(got, want);

    // list now says they were requeued; status shows the freshness and the quarantine.
    let list = sluice(&aws, &["quarantine", "list", "--bucket", &bucket, "--json"]);
    let report: Value = serde_json::from_slice(&list.stdout).expect("list JSON");
    let requeued: u64 = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["requeued"].as_u64())
        .sum();
    assert_eq!(requeued, 5, "{report}");
    let only = sluice(
        &aws,
        &[
            "quarantine",
            "list",
            "--bucket",
            &bucket,
            "--kind",
            "invalid_json",
            "--json",
        ],
    );
    let only: Value = serde_json::from_slice(&only.stdout).expect("list JSON");
    assert_eq!(only["rows"].as_array().map(Vec::len), Some(1), "{only}");

    let dir = std::env::temp_dir().join(unique("sluice-status"));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg_path = dir.join("pipeline.toml");
    std::fs::write(&cfg_path, &fixed).expect("config");
    let postgres = format!("{} sslmode=disable", pg.url);
    let status = sluice(
        &aws,
        &[
            "status",
            "--config",
            &cfg_path.to_string_lossy(),
            "--bucket",
            &bucket,
            "--postgres",
            &postgres,
            "--json",
        ],
    );
    assert!(status.status.success(), "{}", text(&status.stderr));
    let st: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let p = st["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .find(|d| d["dataset"] == "purchases")
        .expect("purchases")
        .clone();
    let newest =
        sluice_core::schema::format_micros(sluice_core::schema::parse_timestamp(&ts).expect("ts"));
    assert_eq!(p["curated"]["newest_event"], json!(newest), "{p}");
    assert_eq!(p["postgres"]["newest_event"], json!(newest), "{p}");
    assert_eq!(p["postgres"]["exists"], json!(true), "{p}");
    assert_eq!(
        p["raw"]["newest_partition"],
        json!(newest[..13].to_string()),
        "{p}"
    );
    assert_eq!(p["raw"]["objects_last_hour"], json!(2), "{p}");
    assert_eq!(p["quarantined_24h"], json!({"wrong_type": 5}), "{p}");
    let lag = p["curated"]["lag_secs"].as_i64().expect("lag");
    assert!((1790..=1800 + 600).contains(&lag), "{p}");
    assert_eq!(st["dead_letters"]["not_replayed"], json!(0), "{st}");
    assert_eq!(st["unrouted_24h"], json!({"invalid_json": 1}), "{st}");
    let human = text(
        &sluice(
            &aws,
            &[
                "status",
                "--config",
                &cfg_path.to_string_lossy(),
                "--bucket",
                &bucket,
                "--dataset",
                "purchases",
            ],
        )
        .stdout,
    );
    assert!(
        human.contains("purchases") && human.contains("5 in 24 h: wrong_type 5"),
        "{human}"
    );
    let unknown = sluice(
        &aws,
        &[
            "status",
            "--config",
            &cfg_path.to_string_lossy(),
            "--bucket",
            &bucket,
            "--dataset",
            "nope",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("no such dataset"),
        "{}",
        text(&unknown.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sluice backfill` with the real binary after a column was added to the config: locally it
/// rewrites curated (read back by DuckDB) and PostgreSQL with the new column, byte for byte the
/// same on a second run; a failed run keeps its checkpoint and a resumed run skips what the
/// checkpoint names; by invocation it queues one asynchronous Invoke per raw object.
#[tokio::test]
async fn backfill_after_adding_a_column_rewrites_curated_and_postgres_and_resumes() {
    use s3_transform::warehouse::Postgres;
    use sluice_core::aws::S3Store;
    use sluice_core::config::PipelineConfig;
    use sluice_core::env::Zones;
    use sluice_local::events::{kinesis_event, record, s3_event_json};
    use sluice_local::readers::{duckdb, Files};

    const HMAC: &str = "backfill-test-hmac-key-0123456789";
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let pg = sluice_local::shared_postgres();
    let schema = unique("backfill").replace('-', "_");
    let v1 = std::fs::read_to_string(sluice_local::workspace_root().join("pipeline.toml"))
        .expect("pipeline.toml")
        .replace("schema = \"sluice\"", &format!("schema = \"{schema}\""));
    let v2 = v1.replace(
        r#"{ name = "coupon", type = "string" },"#,
        r#"{ name = "coupon", type = "string" },
  { name = "channel", type = "string" },"#,
    );
    assert_ne!(v1, v2);
    let cfg1 = PipelineConfig::from_toml(&v1).expect("config");
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), &bucket);

    // Two raw objects (two batches) of purchases that carry a channel, loaded under v1.
    let now = sluice_core::telemetry::now_micros() as f64 / 1e6;
    let ts = sluice_core::schema::format_micros((now as i64 - 600) * 1_000_000);
    let purchase = |i: u64| {
        format!(
            r#"{{"type":"purchase","order_id":"o-{i}","ts":"{ts}","user_id":"u-{i}","amount":"{i}.25","currency":"EUR","channel":"web-{i}","payment":{{"method":"card"}}}}"#
        )
    };
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg1,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    for batch in [[1, 2], [3, 4]] {
        let records: Vec<_> = batch.iter().map(|&i| record(i, purchase(i), now)).collect();
        kinesis_ingest::handle(&ingest, kinesis_event(&records))
            .await
            .expect("ingest");
    }
    let raw = aws.keys(&bucket, "raw/purchases/").await;
    assert_eq!(raw.len(), 2, "{raw:?}");
    let warehouse = Postgres::new(pg.url.parse().expect("url"), None, &schema);
    let hmac = s3_transform::pii::HashKey::new(HMAC.as_bytes().to_vec()).expect("key");
    let transform = s3_transform::Handler {
        cfg: &cfg1,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: s3_transform::input::Limits::default(),
        hash_key: Some(&hmac),
    };
    for key in &raw {
        s3_transform::handle(
            &transform,
            serde_json::from_value(s3_event_json(&bucket, key, 0)).expect("event"),
        )
        .await
        .expect("transform");
    }

    let dir = std::env::temp_dir().join(unique("sluice-backfill"));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("v2.toml");
    std::fs::write(&config, &v2).expect("config");
    let config = config.to_string_lossy().into_owned();
    let checkpoint = dir.join("purchases.ckpt");
    let checkpoint = checkpoint.to_string_lossy().into_owned();
    let postgres = format!("{} sslmode=disable", pg.url);
    let hour = &ts[..13];
    let backfill = |pg: &str, extra: &[&str]| {
        let mut args = vec![
            "backfill",
            "--config",
            &config,
            "--bucket",
            &bucket,
            "--dataset",
            "purchases",
            "--from",
            hour,
            "--local",
            "--postgres",
            pg,
            "--checkpoint",
            &checkpoint,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = sluice_with(&aws, &args, &[("SLUICE_HMAC_KEY", HMAC)]);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("JSON report: {}{}", text(&out.stdout), text(&out.stderr)));
        (out.status.code(), report)
    };

    // A run against a database that is down fails every object and keeps the checkpoint.
    let down =
        "host=127.0.0.1 port=1 user=postgres dbname=postgres sslmode=disable connect_timeout=2";
    let (code, failed) = backfill(down, &[]);
    assert_eq!(code, Some(1), "{failed}");
    assert_eq!(
        failed["failed"].as_array().map(Vec::len),
        Some(2),
        "{failed}"
    );
    assert_eq!(failed["done"], json!(0), "{failed}");
    let kept = std::fs::read_to_string(&checkpoint).expect("checkpoint kept");
    assert_eq!(kept.lines().count(), 1, "only its header: {kept}");

    // As if an interrupted run had finished the first object: the resumed run skips it.
    std::fs::write(&checkpoint, format!("{kept}{}\n", json!(raw[0]))).expect("checkpoint");
    let (dry_code, dry) = backfill(&postgres, &["--dry-run"]);
    assert_eq!(dry_code, Some(0), "{dry}");
    assert_eq!(
        (dry["objects"].as_u64(), dry["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{dry}"
    );
    let (code, resumed) = backfill(&postgres, &[]);
    assert_eq!(code, Some(0), "{resumed}");
    assert_eq!(
        (
            resumed["done"].as_u64(),
            resumed["skipped"].as_u64(),
            resumed["records"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{resumed}"
    );
    assert!(
        !std::path::Path::new(&checkpoint).exists(),
        "a finished run removes its checkpoint"
    );

    // A full run: both objects, every purchase gets its channel in PostgreSQL and curated.
    let (code, full) = backfill(&postgres, &[]);
    assert_eq!(
        code,
        Some(0),
        "{full}: only o-1 and o-2 change; the resumed run did o-3 and o-4"
    );
    assert_eq!(
        (
            full["objects"].as_u64(),
            full["done"].as_u64(),
            full["curated"].as_u64(),
            full["updated"].as_u64()
        ),
        (Some(2), Some(2), Some(4), Some(2)),
        "{full}: only o-1 and o-2 change; the resumed run did o-3 and o-4"
    );
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .expect("pg");
    tokio::spawn(conn);
    let rows: Vec<(String, Option<String>)> = client
        .query(
            &format!("SELECT order_id, channel FROM {schema}.purchases ORDER BY order_id"),
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, Option<String>)> = (1..=4)
        .map(|i| (format!("o-{i}"), Some(format!("web-{i}"))))
        .collect();
    assert_eq!(rows, want);
    let curated = |aws: &Aws| {
        let aws = aws.clone();
        let bucket = bucket.clone();
        async move {
            let mut out = Vec::new();
            for key in aws.keys(&bucket, "curated/purchases/").await {
                let bytes = aws.get(&bucket, &key).await;
                out.push((key, bytes));
            }
            out
        }
    };
    let first = curated(&aws).await;
    assert_eq!(first.len(), 2, "the same curated keys, rewritten");
    let files = Files::new().expect("dir");
    for (key, bytes) in &first {
        files.put(key, bytes).expect("copy");
    }
    let parquet = duckdb(&format!(
        "SELECT order_id, channel FROM read_parquet('{}/**/*.parquet') ORDER BY order_id",
        files.dir().display()
    ))
    .expect("DuckDB reads curated");
    let got: Vec<(String, String)> = parquet
        .iter()
        .map(|r| (r["order_id"].to_string(), r["channel"].to_string()))
        .collect();
    let want: Vec<(String, String)> = (1..=4)
        .map(|i| (format!("\"o-{i}\""), format!("\"web-{i}\"")))
        .collect();
    assert_eq!(got, want);
    let (code, again) = backfill(&postgres, &[]);
    assert_eq!(
        (code, again["done"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(2), Some(0)),
        "{again}: nothing changes"
    );
    assert_eq!(
        curated(&aws).await,
        first,
        "a second backfill writes the same bytes"
    );

    // By invocation: one asynchronous Invoke per raw object of the deployed function.
    // An unknown function fails every object (moto's default Lambda backend answers 404);
    // the Docker-less backend moto_function switches to would answer 202 for any name.
    let invoke = |function: &str| {
        let args = [
            "backfill",
            "--config",
            &config,
            "--bucket",
            &bucket,
            "--dataset",
            "purchases",
            "--from",
            hour,
            "--function",
            function,
            "--checkpoint",
            &checkpoint,
            "--json",
        ];
        let out = sluice_with(&aws, &args, &[]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    };
    let function = unique("s3-transform");
    let (missing, report) = invoke(&format!("{function}-missing"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        report["failed"]
            .to_string()
            .contains("ResourceNotFoundException"),
        "{report}"
    );
    // Its checkpoint (another mode) is kept, and refused by a run of another mode.
    let (other, _) = invoke(&function);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other.stderr).contains("is the checkpoint of another backfill"),
        "{}",
        text(&other.stderr)
    );
    std::fs::remove_file(&checkpoint).expect("the failed run kept its checkpoint");
    sluice_local::services::moto_function(&aws.endpoint, &function);
    let (out, invoked) = invoke(&function);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(invoked["done"], json!(2), "{invoked}");
    assert_eq!(
        invoked["mode"],
        json!(format!("invoke {function}")),
        "{invoked}"
    );
    let usage = sluice(
        &aws,
        &[
            "backfill",
            "--bucket",
            &bucket,
            "--dataset",
            "purchases",
            "--from",
            "1h",
        ],
    );
    assert_eq!(
        usage.status.code(),
        Some(2),
        "--function or --local is required"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
