//! kinesis-ingest against a real S3 API (moto server): what lands, where, and how often.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use kinesis_ingest::handle;
use kinesis_ingest::KinesisBatch;
use serde_json::Value;
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_local::events::{kinesis_event, record, sample};
use sluice_local::{demo_config, Aws};

async fn run(aws: &Aws, bucket: &str, cfg: &PipelineConfig, event: KinesisBatch) -> Vec<String> {
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), bucket);
    let ctx = kinesis_ingest::Handler {
        cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    let resp = handle(&ctx, event)
        .await
        .expect("handler never fails on data");
    resp.failed
}

fn event_from_sample(name: &str) -> KinesisBatch {
    serde_json::from_value(sample(name)).expect("sample is a Kinesis event")
}

/// The original record of a raw line: the line without sluice's metadata key.
fn strip_meta(mut v: Value) -> Value {
    v.as_object_mut().map(|m| m.remove("_sluice"));
    v
}

#[tokio::test]
async fn clean_batch_lands_in_event_time_partitions() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let event = event_from_sample("kinesis-clean.json");
    let originals: Vec<Value> = event
        .records
        .iter()
        .map(|r| serde_json::from_slice(&r.data).expect("json"))
        .collect();
    let failures = run(&aws, &bucket, &cfg, event).await;
    assert!(failures.is_empty());

    assert_eq!(
        aws.keys(&bucket, "").await,
        vec![
            "raw/page_views/dt=2025-11-22/hr=09/shardId-000000000000-49590000000000000000000000000000000000000000000000000001-49590000000000000000000000000000000000000000000000000001.json.gz",
            "raw/page_views/dt=2025-11-22/hr=10/shardId-000000000000-49590000000000000000000000000000000000000000000000000004-49590000000000000000000000000000000000000000000000000004.json.gz",
            "raw/purchases/dt=2025-11-22/hr=08/shardId-000000000000-49590000000000000000000000000000000000000000000000000003-49590000000000000000000000000000000000000000000000000005.json.gz",
            "raw/signups/dt=2025-11-22/hr=09/shardId-000000000000-49590000000000000000000000000000000000000000000000000002-49590000000000000000000000000000000000000000000000000002.json.gz",
        ]
    );
    let lines = aws.json_lines(&bucket, "raw/").await;
    assert_eq!(lines.len(), originals.len());
    for original in &originals {
        let found: Vec<&(String, Value)> = lines
            .iter()
            .filter(|(_, v)| strip_meta(v.clone()) == *original)
            .collect();
        assert_eq!(found.len(), 1, "record {original} lands exactly once");
        let meta = &found[0].1["_sluice"];
        assert_eq!(meta["shard"], "shardId-000000000000");
        assert!(meta["arrival"]
            .as_str()
            .is_some_and(|a| a.starts_with("2025-11-22T10:00:00.")));
    }
}

#[tokio::test]
async fn mixed_batch_quarantines_each_bad_record_with_its_payload() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let event = event_from_sample("kinesis-mixed.json");
    let payloads: Vec<Vec<u8>> = event.records.iter().map(|r| r.data.clone()).collect();
    let failures = run(&aws, &bucket, &cfg, event).await;
    assert!(failures.is_empty(), "invalid data never fails the batch");

    let raw = aws.json_lines(&bucket, "raw/").await;
    assert_eq!(
        raw.len(),
        3,
        "one page view plus one NDJSON record of two lines"
    );
    let quarantine = aws.json_lines(&bucket, "quarantine/").await;
    let kinds: BTreeMap<String, usize> =
        quarantine.iter().fold(BTreeMap::new(), |mut m, (_, v)| {
            *m.entry(v["error_kind"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
            m
        });
    let expected: BTreeMap<String, usize> = [
        ("bad_event_time", 1),
        ("corrupt_aggregate", 1),
        ("event_time_out_of_range", 2),
        ("invalid_json", 1),
        ("invalid_utf8", 1),
        ("missing_field", 1),
        ("not_an_object", 1),
        ("unknown_dataset", 1),
        ("unrouted", 1),
        ("wrong_type", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(kinds, expected);
    let b64 = base64::engine::general_purpose::STANDARD;
    for (key, line) in &quarantine {
        let payload = b64
            .decode(line["payload_b64"].as_str().expect("payload"))
            .expect("base64");
        assert!(
            payloads.contains(&payload),
            "{key}: quarantined payload is the record's bytes"
        );
        assert!(line["reason"].as_str().is_some_and(|r| !r.is_empty()));
        for f in ["shard", "seq", "partition_key", "arrival"] {
            assert!(line[f].is_string(), "{key}: {f} present");
        }
        let dir = match line["dataset"].as_str() {
            Some(d) => d.to_string(),
            None => "_unrouted".to_string(),
        };
        assert!(
            key.starts_with(&format!("quarantine/{dir}/dt=2025-11-22/hr=10/")),
            "{key}"
        );
    }
}

#[tokio::test]
async fn kpl_aggregates_are_deaggregated() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let failures = run(&aws, &bucket, &cfg, event_from_sample("kinesis-kpl.json")).await;
    assert!(failures.is_empty());
    let raw = aws.json_lines(&bucket, "raw/").await;
    let mut subs: Vec<(String, u64, String)> = raw
        .iter()
        .map(|(_, v)| {
            let m = &v["_sluice"];
            (
                m["seq"].as_str().unwrap_or("").to_string(),
                m["sub"].as_u64().unwrap_or(99),
                m["pk"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    subs.sort();
    let s30 = "49590000000000000000000000000000000000000000000000000030".to_string();
    let s31 = "49590000000000000000000000000000000000000000000000000031".to_string();
    let s30 = s30.as_str();
    let s31 = s31.as_str();
    let want: Vec<(String, u64, String)> = [
        (s30, 0, "user-1"),
        (s30, 1, "user-2"),
        (s30, 2, "user-1"),
        (s31, 0, "user-3"),
    ]
    .iter()
    .map(|(s, n, p)| (s.to_string(), *n, p.to_string()))
    .collect();
    assert_eq!(subs, want);
    let quarantine = aws.json_lines(&bucket, "quarantine/").await;
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0].1["error_kind"], "invalid_json");
    assert_eq!(quarantine[0].1["sub"], 3);
    assert_eq!(quarantine[0].1["partition_key"], "user-3");
}

#[tokio::test]
async fn redelivery_rewrites_the_same_keys_with_the_same_bytes() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    run(&aws, &bucket, &cfg, event_from_sample("kinesis-mixed.json")).await;
    let keys = aws.keys(&bucket, "").await;
    let mut first = Vec::new();
    for k in &keys {
        first.push(aws.get(&bucket, k).await);
    }
    run(&aws, &bucket, &cfg, event_from_sample("kinesis-mixed.json")).await;
    assert_eq!(
        aws.keys(&bucket, "").await,
        keys,
        "no new keys on redelivery"
    );
    for (k, before) in keys.iter().zip(&first) {
        assert_eq!(&aws.get(&bucket, k).await, before, "{k} is byte-identical");
    }
}

#[tokio::test]
async fn s3_failure_reports_batch_item_failures_and_loses_nothing() {
    let aws = Aws::local().await;
    let bucket = sluice_local::unique("sluice-missing");
    let cfg = demo_config();
    let event = event_from_sample("kinesis-mixed.json");
    let all: BTreeSet<String> = event.records.iter().map(|r| r.seq.clone()).collect();
    let failures: BTreeSet<String> = run(&aws, &bucket, &cfg, event).await.into_iter().collect();
    assert_eq!(
        failures, all,
        "every record is reported when the bucket is missing"
    );

    // Lambda retries from the lowest reported sequence number: here, the whole batch.
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let retry = run(&aws, &bucket, &cfg, event_from_sample("kinesis-mixed.json")).await;
    assert!(retry.is_empty());
    let landed = aws.json_lines(&bucket, "raw/").await.len()
        + aws.json_lines(&bucket, "quarantine/").await.len();
    assert_eq!(landed, 3 + 11);
}

#[tokio::test]
async fn every_record_of_a_large_batch_lands_exactly_once() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let arrival = 1_763_805_600.0;
    let mut records = Vec::new();
    for i in 0..600u64 {
        let data = match i % 10 {
            0 => b"{\"type\":\"page_view\"".to_vec(),
            1 => serde_json::to_vec(&serde_json::json!({"type": "mystery", "n": i})).expect("json"),
            2 => serde_json::to_vec(&serde_json::json!({
                "type": "purchase", "order_id": format!("o-{i}"), "ts": "2025-11-22T07:00:00Z",
                "user_id": "u", "amount": "free", "currency": "EUR"}))
            .expect("json"),
            3..=5 => serde_json::to_vec(&serde_json::json!({
                "type": "purchase", "order_id": format!("o-{i}"),
                "ts": format!("2025-11-22T{:02}:10:00Z", i % 10),
                "user_id": "u", "amount": i as f64 / 4.0, "currency": "EUR"}))
            .expect("json"),
            _ => serde_json::to_vec(&serde_json::json!({
                "type": "page_view", "event_id": format!("pv-{i}"),
                "ts": format!("2025-11-2{}T0{}:00:00Z", i % 2, i % 6),
                "session_id": "s", "url": "https://example.com/"}))
            .expect("json"),
        };
        let mut r = record(i, data, arrival + i as f64 / 1000.0);
        r.shard = "shardId-000000000003".into();
        records.push(r);
    }
    let failures = run(&aws, &bucket, &cfg, kinesis_event(&records)).await;
    assert!(failures.is_empty());
    let raw = aws.json_lines(&bucket, "raw/").await;
    let quarantine = aws.json_lines(&bucket, "quarantine/").await;
    assert_eq!(raw.len(), 420);
    assert_eq!(quarantine.len(), 180);
    let mut seen = BTreeSet::new();
    for (_, v) in &raw {
        assert!(seen.insert(v["_sluice"]["seq"].as_str().unwrap_or("").to_string()));
    }
    for (_, v) in &quarantine {
        assert!(seen.insert(v["seq"].as_str().unwrap_or("").to_string()));
    }
    let expected: BTreeSet<String> = records.iter().map(|r| r.seq.clone()).collect();
    assert_eq!(
        seen, expected,
        "each sequence number is in exactly one place"
    );
    for (key, v) in &raw {
        let ts = v["ts"].as_str().unwrap_or("");
        let want = format!("dt={}/hr={}/", &ts[..10], &ts[11..13]);
        assert!(key.contains(&want), "{key} holds a record of {ts}");
    }
}

#[tokio::test]
async fn oversized_record_and_empty_batch() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let failures = run(&aws, &bucket, &cfg, kinesis_event(&[])).await;
    assert!(failures.is_empty());
    assert!(
        aws.keys(&bucket, "").await.is_empty(),
        "an empty batch writes nothing"
    );

    let mut big = br#"{"type":"page_view","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend_from_slice(br#""}"#);
    let failures = run(
        &aws,
        &bucket,
        &cfg,
        kinesis_event(&[record(1, big.clone(), 1_763_805_600.0)]),
    )
    .await;
    assert!(failures.is_empty());
    let q = aws.json_lines(&bucket, "quarantine/").await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].1["error_kind"], "oversized");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(q[0].1["payload_b64"].as_str().unwrap_or(""))
        .expect("base64");
    assert_eq!(payload, big, "the oversized payload is kept whole");
}

/// A warm kinesis-ingest (one `ConfigWatch` across invocations, as its `main.rs` holds it)
/// routes a dataset added to the config in S3 once the new version is seen; a version that does
/// not validate is refused and the one in use stays; a function's own check refuses a change it
/// cannot adopt warm; within the TTL nothing is read.
#[tokio::test]
async fn a_warm_function_adopts_a_new_config_version_and_keeps_the_old_one_when_the_new_is_bad() {
    use sluice_core::aws::{ConfigChange, ConfigWatch};
    use std::time::Duration;

    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let key = "config/pipeline.toml";
    let location = format!("s3://{bucket}/{key}");
    let v1 = std::fs::read_to_string(sluice_local::workspace_root().join("pipeline.toml"))
        .expect("pipeline.toml");
    let v2 = format!(
        "{v1}\n[[dataset]]\nname = \"returns\"\nroute = \"return\"\nkey = \"return_id\"\nfields = [\n  {{ name = \"return_id\", type = \"string\", required = true }},\n]\n"
    );
    aws.put(&bucket, key, v1.clone().into_bytes()).await;
    let watch = ConfigWatch::load(&location, &aws.s3, Duration::ZERO, "kinesis-ingest")
        .await
        .expect("cold start");
    let rec = |seq| {
        record(
            seq,
            br#"{"type":"return","return_id":"r-1"}"#.to_vec(),
            1_763_806_500.0,
        )
    };

    // Version 1 knows no "return": the record is quarantined as unknown_dataset.
    let cfg = watch.current().await;
    assert!(cfg.dataset("returns").is_none());
    assert!(run(&aws, &bucket, &cfg, kinesis_event(&[rec(1)]))
        .await
        .is_empty());
    assert!(aws.keys(&bucket, "raw/returns/").await.is_empty());
    assert_eq!(
        watch.refresh().await,
        ConfigChange::Unchanged,
        "same ETag: no reload"
    );

    // Version 2 adds the dataset: the next invocation routes the record into raw/returns/.
    aws.put(&bucket, key, v2.into_bytes()).await;
    assert_eq!(watch.refresh().await, ConfigChange::Reloaded);
    let cfg = watch.current().await;
    assert!(run(&aws, &bucket, &cfg, kinesis_event(&[rec(2)]))
        .await
        .is_empty());
    assert_eq!(aws.keys(&bucket, "raw/returns/").await.len(), 1);

    // A version that does not validate is refused with the reason; version 2 stays in use, and
    // the refused version is not read again until the object changes.
    aws.put(
        &bucket,
        key,
        format!("{v1}\n[[dataset]]\nname = \"Bad Name\"\n").into_bytes(),
    )
    .await;
    match watch.refresh().await {
        ConfigChange::Refused(reason) => assert!(reason.contains("Bad Name"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(watch.current().await.dataset("returns").is_some());
    assert_eq!(watch.refresh().await, ConfigChange::Unchanged);

    // The function's own check: s3-transform's loader is bound to its schema.
    let transform = ConfigWatch::load(&location, &aws.s3, Duration::ZERO, "s3-transform")
        .await
        .map(|w| {
            w.with_check(Box::new(|old, new| {
                s3_transform::config::reload_check(old, new, true)
            }))
        });
    // (the object holds the refused version: a cold start refuses it too)
    assert!(transform.is_err());
    aws.put(&bucket, key, v1.clone().into_bytes()).await;
    let transform = ConfigWatch::load(&location, &aws.s3, Duration::ZERO, "s3-transform")
        .await
        .expect("cold start")
        .with_check(Box::new(|old, new| {
            s3_transform::config::reload_check(old, new, true)
        }));
    let moved = v1.replace("schema = \"sluice\"", "schema = \"elsewhere\"");
    assert_ne!(moved, v1);
    aws.put(&bucket, key, moved.into_bytes()).await;
    match transform.refresh().await {
        ConfigChange::Refused(reason) => assert!(reason.contains("[warehouse] schema"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(transform.current().await.warehouse.schema, "sluice");

    // Within the TTL the location is not read at all.
    let slow = ConfigWatch::load(
        &location,
        &aws.s3,
        Duration::from_secs(3600),
        "kinesis-ingest",
    )
    .await
    .expect("cold start");
    aws.put(&bucket, key, v1.clone().into_bytes()).await;
    assert_eq!(slow.refresh().await, ConfigChange::NotDue);

    // S3 answering 500s (after the SDK's retries) is not a refusal: the config in use stays,
    // nothing is counted, and the next check reads again.
    use sluice_local::faults::{FaultProxy, Rates};
    let proxy = FaultProxy::http(&sluice_local::moto().endpoint, Rates::NONE, 3)
        .await
        .expect("proxy");
    let faulty = Aws::at(&proxy.endpoint).await;
    let flaky = ConfigWatch::load(&location, &faulty.s3, Duration::ZERO, "kinesis-ingest")
        .await
        .expect("cold start");
    proxy.set_rates(Rates {
        error_500: 1.0,
        ..Rates::NONE
    });
    assert!(matches!(flaky.refresh().await, ConfigChange::Unreadable(_)));
    proxy.set_rates(Rates::NONE);
    aws.put(&bucket, key, with_extra_dataset(&v1).into_bytes())
        .await;
    assert_eq!(flaky.refresh().await, ConfigChange::Reloaded);
}

/// A different but valid version of the demo config (one more dataset).
fn with_extra_dataset(v1: &str) -> String {
    format!("{v1}\n[[dataset]]\nname = \"extra\"\nroute = \"extra\"\nfields = [{{ name = \"id\", type = \"string\" }}]\n")
}
