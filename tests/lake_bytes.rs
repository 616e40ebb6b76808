//! Byte identity of the lake: the demo's input (the seeded clickstream, the committed KPL and
//! mixed samples, dropped CSV/JSON/corrupt/unsupported files, a Kinesis and an async failure)
//! goes through the handlers and archive builders of kinesis-ingest, s3-transform and
//! failure-notifier into an in-memory bucket, and the SHA-256 of every object is compared with
//! `tests/golden/lake.manifest`.
//!
//! A change that alters one byte or one key of any output fails here, so a refactoring proves
//! it changed nothing. A change meant to alter outputs re-blesses the manifest with
//! `SLUICE_BLESS=1 cargo test -p sluice-tests --test lake_bytes`; the manifest's diff in the
//! commit shows which objects changed.

use std::fmt::Write as _;
use std::path::PathBuf;

use failure_notifier::archive::{async_archive, kinesis_archive, RangeRead};
use failure_notifier::failure::{classify, Failure};
use kinesis_ingest::handler::handle as ingest;
use kinesis_ingest::KinesisBatch;
use s3_transform::event::S3Input;
use s3_transform::handle as transform;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use sha2::{Digest, Sha256};
use sluice_core::env::Zones;
use sluice_core::lake::stream::StreamRecord;
use sluice_core::store::ObjectStore;
use sluice_local::clickstream::generate;
use sluice_local::events::{kinesis_event, s3_event_json, sample};
use sluice_local::testing::{CountingWarehouse, MemStore};
use sluice_local::{demo_config, workspace_root};

/// Event times are in the four hours before this instant (2025-11-24T16:00:00Z).
const NOW: i64 = 1_764_000_000;
const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];

fn manifest_path() -> PathBuf {
    workspace_root().join("tests/golden/lake.manifest")
}

/// Every object of the bucket as `<sha256> <bytes> <key>`, one per line, in key order.
fn manifest(store: &MemStore) -> String {
    let mut out = String::new();
    for (key, body) in store.objects() {
        let digest = Sha256::digest(&body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "{hex} {} {key}", body.len());
    }
    out
}

/// The demo's clickstream, in batches of 100 per shard, with fixed sequence numbers and arrivals.
fn clickstream_batches() -> Vec<KinesisBatch> {
    let events = generate(600, NOW, 40, 7);
    let mut batches = Vec::new();
    for (s, shard) in SHARDS.iter().enumerate() {
        let records: Vec<StreamRecord> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| i % SHARDS.len() == s)
            .map(|(i, g)| StreamRecord {
                shard: shard.to_string(),
                seq: format!("4959{i:052}"),
                partition_key: g.partition_key.clone(),
                data: g.data.clone(),
                arrival_micros: (NOW * 1000 + i as i64 * 250) * 1000,
            })
            .collect();
        for chunk in records.chunks(100) {
            batches.push(kinesis_event(chunk));
        }
    }
    for name in [
        "kinesis-kpl.json",
        "kinesis-mixed.json",
        "kinesis-clean.json",
    ] {
        batches.push(serde_json::from_value(sample(name)).expect("committed sample"));
    }
    batches
}

/// Files dropped straight into the raw zone: CSV and JSON with one name in two folders, a
/// corrupt gzip and an unsupported file.
fn dropped_files() -> Vec<(&'static str, Vec<u8>)> {
    let header = "order_id,ts,user_id,amount,currency,items,coupon,payment\n";
    vec![
        (
            "raw/purchases/team-a/import.csv",
            format!("{header}a-1,2025-11-22T07:00:00Z,u,1,EUR,,,\na-2,2025-11-22T07:01:00Z,u,lots,EUR,,,\n")
                .into_bytes(),
        ),
        (
            "raw/purchases/team-b/import.json",
            br#"[{"order_id":"b-1","ts":"2025-11-22T07:05:00Z","user_id":"u","amount":4.25,"currency":"EUR","payment":{"big":123456789012345678901234567890}}]"#
                .to_vec(),
        ),
        ("raw/page_views/broken.json.gz", b"\x1f\x8b\x08\x00not gzip".to_vec()),
        ("raw/signups/notes.bin", b"\x00\x01\x02".to_vec()),
    ]
}

async fn run_pipeline() -> MemStore {
    let cfg = demo_config();
    let zones = Zones::default();
    let store = MemStore::default();
    let ingest_ctx = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    for batch in clickstream_batches() {
        let response = ingest(&ingest_ctx, batch).await.expect("ingest");
        assert!(response.failed.is_empty(), "an in-memory write never fails");
    }
    for (key, body) in dropped_files() {
        store
            .put(key, body, "application/octet-stream")
            .await
            .expect("put");
    }

    let warehouse = CountingWarehouse::default();
    let hash_key = HashKey::new(b"lake-bytes-test-hash-key".to_vec()).expect("16+ bytes");
    let transform_ctx = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: Limits::default(),
        hash_key: Some(&hash_key),
    };
    let raw = store.list("raw/").await.expect("list");
    for key in &raw {
        let event: S3Input =
            serde_json::from_value(s3_event_json("mem", key, 0)).expect("notification");
        transform(&transform_ctx, event).await.expect("transform");
    }
    assert!(
        warehouse.rows().values().sum::<u64>() > 300,
        "most clickstream rows reach the warehouse: {:?}",
        warehouse.rows()
    );

    for name in ["failure-kinesis.json", "failure-async.json"] {
        let sqs = sample(name);
        let body = sqs["Records"][0]["body"].as_str().expect("SQS body");
        let archive = match classify(body) {
            Failure::Kinesis(k) => {
                let records = (1..=4)
                    .map(|n| StreamRecord {
                        shard: "shardId-000000000000".into(),
                        seq: format!("4959{n:052}"),
                        partition_key: format!("pk-{n}"),
                        data: format!(r#"{{"type":"page_view","n":{n}}}"#).into_bytes(),
                        arrival_micros: 1_763_805_600_124_000 + n * 1_000,
                    })
                    .collect();
                kinesis_archive(&zones.dead_letter, &k, &RangeRead::Records(records))
            }
            Failure::Async(a) => async_archive(&zones.dead_letter, &a),
            other => panic!("{name} is not a Kinesis or async failure: {}", other.kind()),
        }
        .expect("archive");
        store
            .put(&archive.key, archive.body, archive.content_type)
            .await
            .expect("put");
    }
    store
}

#[tokio::test]
async fn every_output_object_keeps_its_bytes() {
    let store = run_pipeline().await;
    let got = manifest(&store);
    for zone in ["raw/", "quarantine/", "curated/", "dead-letter/"] {
        assert!(
            got.lines().any(|l| l.contains(&format!(" {zone}"))),
            "the run writes to {zone}:\n{got}"
        );
    }
    let path = manifest_path();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write manifest");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with SLUICE_BLESS=1 cargo test -p sluice-tests --test lake_bytes",
            path.display()
        )
    });
    if got != want {
        let want_lines: std::collections::BTreeSet<&str> = want.lines().collect();
        let got_lines: std::collections::BTreeSet<&str> = got.lines().collect();
        let gone: Vec<&&str> = want_lines.difference(&got_lines).collect();
        let new: Vec<&&str> = got_lines.difference(&want_lines).collect();
        panic!(
            "lake outputs changed.\nno longer written:\n{gone:#?}\nnow written:\n{new:#?}\n\
             If the change is intended: SLUICE_BLESS=1 cargo test -p sluice-tests --test lake_bytes"
        );
    }
}

/// The run is deterministic: two runs in one process write the same bytes under the same keys.
#[tokio::test]
async fn two_runs_write_the_same_bytes() {
    let a = manifest(&run_pipeline().await);
    let b = manifest(&run_pipeline().await);
    assert_eq!(a, b);
}
