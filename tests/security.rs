//! Security properties as tests:
//! - no input (shard id, sequence number, partition key, routing value, event time, key field,
//!   field names, S3 keys with encoded `/`, `..`, `+` or control characters) and no dataset
//!   name can put `/`, `..` or control characters into an object key;
//! - logs: `tests/logs.rs` (its own binary, so the captured subscriber sees every event);
//!   PII in curated objects and PostgreSQL: `s3_transform::seeded_pii_never_reaches_curated_or_postgres`.

use kinesis_ingest::plan_batch;
use s3_transform::event::S3Input;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::warehouse::Postgres;
use serde_json::{json, Value};
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::is_safe_component;
use sluice_core::lake::stream::StreamRecord;
use sluice_local::events::{kinesis_event, record, s3_event_json};
use sluice_local::{demo_config, shared_postgres, unique, Aws};

fn assert_safe_key(key: &str) {
    for c in key.split('/') {
        assert!(
            is_safe_component(c) && c != ".." && !c.chars().any(char::is_control),
            "unsafe component {c:?} in key {key:?}"
        );
    }
}

const HOSTILE: &[&str] = &[
    "../../etc",
    "..",
    ".",
    "a/b",
    "/abs",
    "a\nb",
    "a\0b",
    "\u{1b}[31m",
    "dt=2025-11-22/hr=07",
    "%2F..%2F",
    "+1",
    "héllo",
    "a b",
    "x:y",
    "",
    "page_view/../signups",
];

fn random_hostile(rng: &mut fastrand::Rng) -> String {
    const ALPHABET: &[char] = &[
        '/', '.', '.', '\n', '\r', '\0', '\u{7f}', '\u{1b}', 'a', '%', '2', 'F', '+', '=', ' ',
        'é', '\\', ':', '-', '_',
    ];
    (0..rng.usize(0..12))
        .map(|_| ALPHABET[rng.usize(0..ALPHABET.len())])
        .collect()
}

#[test]
fn hostile_stream_values_never_reach_a_key() {
    let cfg = demo_config();
    let zones = Zones::default();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut values: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    values.extend((0..2_000).map(|_| random_hostile(&mut rng)));
    let arrival = 1_763_806_500_000_000;
    let mut planned = 0;
    for (i, v) in values.iter().enumerate() {
        let other = &values[(i * 7 + 3) % values.len()];
        let datas = [
            // Unknown routing value: quarantined under _unrouted.
            json!({"type": v, "event_id": "e", "ts": "2025-11-22T10:00:00Z"}),
            // Event time that is a hostile string: bad_event_time.
            json!({"type": "page_view", "event_id": "e", "ts": v, "session_id": "s", "url": "/"}),
            // Valid record whose key field, a field name and values are hostile.
            json!({"type": "page_view", "event_id": v, "ts": "2025-11-22T10:00:00Z", "session_id": v, "url": other, v.clone(): 1}),
        ];
        let records: Vec<StreamRecord> = datas
            .iter()
            .enumerate()
            .map(|(j, d)| StreamRecord {
                shard: if j == 0 {
                    v.clone()
                } else {
                    "shardId-000000000000".into()
                },
                seq: if j == 1 {
                    v.clone()
                } else {
                    format!("{}", 100 + j)
                },
                partition_key: other.clone(),
                arrival_micros: arrival,
                data: d.to_string().into_bytes(),
            })
            .collect();
        let plan = plan_batch(&cfg, &zones, &records).expect("plan");
        assert_eq!(plan.user_records, 3, "every record is planned: {v:?}");
        for o in &plan.objects {
            assert_safe_key(&o.key);
            planned += 1;
        }
    }
    // The handler's own path from a Lambda event (shard id from eventID) as well.
    let mut hostile = record(1, br#"{"type":"a/../b"}"#.to_vec(), 1_763_806_500.0);
    hostile.shard = "../../x\n".into();
    let event = kinesis_event(&[hostile]);
    let records = event.records;
    for o in plan_batch(&cfg, &zones, &records).expect("plan").objects {
        assert_safe_key(&o.key);
    }
    assert!(planned > 4_000, "{planned} objects checked");
}

#[test]
fn hostile_dataset_names_are_refused_at_cold_start() {
    for name in [
        "../x", "a/b", "a\nb", "A", "x y", "", "a.b", "..", "_sluice", "é", "a\u{0}",
    ] {
        let toml = format!(
            "[pipeline]\nrouting_field = \"type\"\n[[dataset]]\nname = {}\nfields = [{{ name = \"id\", type = \"string\" }}]\n",
            serde_json::to_string(name).expect("quoted")
        );
        let err = PipelineConfig::from_toml(&toml).expect_err(name);
        assert!(
            err.to_string().contains("name"),
            "{name:?}: the message names the field: {err}"
        );
    }
    // Routes are free text, but never reach a key (the dataset name does).
    let ok = "[pipeline]\nrouting_field = \"type\"\n[[dataset]]\nname = \"ok\"\nroute = \"../x\"\nfields = [{ name = \"id\", type = \"string\" }]\n";
    let cfg = PipelineConfig::from_toml(ok).expect("free-text route");
    assert_eq!(cfg.datasets[0].name, "ok");
}

#[tokio::test]
async fn hostile_s3_keys_never_reach_an_output_key() {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), &bucket);
    let pg = shared_postgres();
    let schema = unique("sec").replace('-', "_");
    let warehouse = Postgres::new(pg.url.parse().expect("url"), None, &schema);
    let key = HashKey::new(b"security-hmac-key-0123456789".to_vec()).expect("key");
    let ctx = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: Limits {
            max_decompressed: 1 << 20,
            max_line: 1 << 16,
        },
        hash_key: Some(&key),
    };
    // Objects that exist: a partition value `hr=+1` (regression: it reached quarantine keys),
    // file names with spaces, unicode, `=`, `+` and a bad record so a quarantine file is written.
    let body = b"{\"type\":\"page_view\",\"event_id\":\"e1\",\"ts\":\"2025-11-22T10:00:00Z\",\"session_id\":\"s\",\"url\":\"/\"}\n{\"type\":\"page_view\"}\n".to_vec();
    let existing = [
        "raw/page_views/dt=2025-11-22/hr=+1/a.json",
        "raw/page_views/dt=2025-11-22/hr=07/we ird+name é.json",
        "raw/page_views/dt=2025-11-22/hr=07/x=y.json",
        "raw/page_views/dt=+2025-11-2/hr=07/b.json",
        "raw/nope/dt=2025-11-22/hr=07/c.json",
        "raw/page_views/notes.txt",
    ];
    for k in existing {
        aws.put(&bucket, k, body.clone()).await;
        let input: S3Input =
            serde_json::from_value(s3_event_json(&bucket, k, body.len())).expect("event");
        s3_transform::handle(&ctx, input).await.expect(k);
    }
    // Notifications whose encoded keys decode to traversal or control characters.
    for raw in [
        "raw/%2E%2E/%2E%2E/curated/evil.json",
        "raw/..%2F..%2Fcurated%2Fevil.json",
        "raw/page_views/dt=2025-11-22/hr=07/%0A%1B.json",
        "raw/x%00y/z.csv",
        "raw/a/b/c/..",
    ] {
        let mut v = s3_event_json(&bucket, "raw/x.json", 1);
        v["Records"][0]["s3"]["object"]["key"] = Value::String(raw.to_string());
        let input: S3Input = serde_json::from_value(v).expect("event");
        let _ = s3_transform::handle(&ctx, input).await;
    }
    let written: Vec<String> = aws
        .keys(&bucket, "")
        .await
        .into_iter()
        .filter(|k| !existing.contains(&k.as_str()))
        .collect();
    assert!(written.len() >= 8, "outputs were written: {written:?}");
    for k in &written {
        assert!(
            k.starts_with("quarantine/") || k.starts_with("curated/"),
            "{k}"
        );
        assert_safe_key(k);
    }
    // An unsupported file is copied to the quarantine with its reason.
    let notes = sluice_core::lake::keys::output_stem("notes.txt", None);
    assert!(notes.starts_with("src-notes.txt-"), "{notes}");
    let reason = aws
        .get(
            &bucket,
            &format!("quarantine/page_views/objects/{notes}.reason.json"),
        )
        .await;
    let reason: Value = serde_json::from_slice(&reason).expect("reason json");
    assert_eq!(reason["error_kind"], "unsupported");
    // Traversal in an encoded key names no dataset: the object goes to `_unrouted`.
    assert!(
        written.iter().all(|k| !k.starts_with("curated/")
            || k.starts_with("curated/page_views/dt=2025-11-22/hr=10/")),
        "{written:?}"
    );
    // The `hr=+1` object is not given a partition: its quarantine file sits at the dataset root.
    let a = sluice_core::lake::keys::output_stem("dt=2025-11-22/hr=+1/a.json", None);
    assert!(
        written
            .iter()
            .any(|k| *k == format!("quarantine/page_views/{a}.transform.json.gz")),
        "{written:?}"
    );
}

/// `cargo lambda watch` serves an unauthenticated invoke API for functions that hold the
/// database URL and the HMAC key: every script that starts it binds it to loopback.
#[test]
fn local_invoke_api_listens_on_loopback_only() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut starts = 0;
    for file in ["scripts/invoke.sh", "Makefile"] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        for line in text.lines().filter(|l| l.contains("cargo lambda watch")) {
            if line.trim_start().starts_with('#') {
                continue;
            }
            starts += 1;
            assert!(
                line.contains("--invoke-address 127.0.0.1"),
                "{file}: `{line}` must bind the invoke API to 127.0.0.1"
            );
        }
    }
    assert!(
        starts > 0,
        "no `cargo lambda watch` found: update this test"
    );
}
