//! Seeded PII, payloads and secrets (the HMAC key, the database password) never appear in the
//! JSON logs of real handler runs, including their failure paths: S3 writes failing with 500s
//! (through the fault proxy), PostgreSQL down, a hostile gzip object, records rejected for every
//! reason. The logs are captured with the production format (`telemetry::init_logging`) and
//! scanned line by line. Its own test binary, so no other test's events race the capture.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use s3_transform::event::S3Input;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::warehouse::Postgres;
use serde_json::{json, Value};
use sluice_core::aws::S3Store;
use sluice_core::env::Zones;
use sluice_core::lake::stream::StreamRecord;
use sluice_local::events::{kinesis_event, record, s3_event_json};
use sluice_local::faults::{FaultProxy, Rates};
use sluice_local::{demo_config, moto, unique, Aws, Pg};

/// A `MakeWriter` target: every log line goes into one buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn pii_payloads_and_secrets_never_appear_in_logs() {
    const EMAIL: &str = "pii-log-marker@example.com";
    const PHONE: &str = "+64-21-7654321";
    const IP: &str = "198.51.100.99";
    const BIRTH: &str = "1977-07-07";
    const PAYLOAD: &str = "PAYLOADMARKER";
    const ROUTE: &str = "ROUTEMARKER";
    const HMAC: &str = "HMAC-KEY-MARKER-0123456789";
    const DBPASS: &str = "DBPASS-MARKER-42";

    let capture = Capture::default();
    let writer = capture.clone();
    // The production format (telemetry::init_logging) at the production default level, plus
    // debug for sluice's own crates.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,sluice_core=debug,kinesis_ingest=debug,s3_transform=debug",
        ))
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cfg = demo_config();
    let zones = Zones::default();
    let direct = Aws::local().await;
    let bucket = direct.bucket().await;
    let proxy = FaultProxy::http(&moto().endpoint, Rates::NONE, 3)
        .await
        .expect("proxy");
    let faulty = Aws::at(&proxy.endpoint).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&faulty.sdk)
            .force_path_style(true)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    let store = S3Store::new(s3, &bucket);

    let arrival = 1_763_806_500.0;
    let lines = [
        json!({"type":"signup","event_id":"su-1","ts":"2025-11-22T10:00:00Z","user_id":"u1","email":EMAIL,"phone":PHONE,"ip":IP,"birth_date":BIRTH}).to_string(),
        json!({"type":"page_view","event_id":"pv-1","ts":"2025-11-22T10:00:00Z","session_id":"s","url":format!("/{PAYLOAD}"),"ip":IP}).to_string(),
        json!({"type":"page_view","event_id":"pv-2","ts":"2025-11-22T10:00:00Z","session_id":"s","url":"/","duration_ms":PAYLOAD}).to_string(),
        json!({"type":ROUTE,"secret":PAYLOAD}).to_string(),
        format!("{{\"type\":\"signup\",\"email\":\"{EMAIL}\",\"x\":{PAYLOAD}"),
        json!({"type":"signup","event_id":"su-2","ts":PAYLOAD,"user_id":"u","email":EMAIL}).to_string(),
    ];
    let records: Vec<StreamRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 + 1, l.clone().into_bytes(), arrival))
        .collect();
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 2,
    };
    // Failure path first: every write fails with a 500, then the batch is redelivered.
    proxy.set_rates(Rates {
        error_500: 1.0,
        ..Rates::NONE
    });
    let resp = kinesis_ingest::handle(&ingest, kinesis_event(&records))
        .await
        .expect("handler");
    assert_eq!(resp.failed.len(), records.len());
    proxy.set_rates(Rates::NONE);
    let resp = kinesis_ingest::handle(&ingest, kinesis_event(&records))
        .await
        .expect("handler");
    assert!(resp.failed.is_empty());

    // s3-transform with the database password in its connection string: PostgreSQL down
    // (the error path), then up; and a hostile object.
    let pg = Pg::start().expect("postgres");
    let url = format!(
        "host=127.0.0.1 port={} user=postgres password={DBPASS} dbname=postgres connect_timeout=5",
        pg.port
    );
    let warehouse = Postgres::new(
        url.parse().expect("url"),
        None,
        &unique("logs").replace('-', "_"),
    );
    let hmac = HashKey::new(HMAC.as_bytes().to_vec()).expect("key");
    let ctx = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: Limits {
            max_decompressed: 1 << 20,
            max_line: 1 << 16,
        },
        hash_key: Some(&hmac),
    };
    direct
        .put(
            &bucket,
            "raw/signups/dt=2025-11-22/hr=10/hostile.json.gz",
            format!("\u{1f}\u{8b}{PAYLOAD}{EMAIL}").into_bytes(),
        )
        .await;
    direct
        .put(
            &bucket,
            "raw/signups/dt=2025-11-22/hr=10/dropped.csv",
            format!("event_id,ts,user_id,email\nsu-9,{PAYLOAD},u,{EMAIL}\n").into_bytes(),
        )
        .await;
    let raw = direct.keys(&bucket, "raw/").await;
    assert!(raw.len() >= 4, "{raw:?}");
    pg.stop().expect("stop");
    for k in &raw {
        let input: S3Input = serde_json::from_value(s3_event_json(&bucket, k, 0)).expect("event");
        let _ = s3_transform::handle(&ctx, input).await;
    }
    pg.resume().expect("resume");
    for k in &raw {
        let input: S3Input = serde_json::from_value(s3_event_json(&bucket, k, 0)).expect("event");
        s3_transform::handle(&ctx, input).await.expect(k);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(_guard);

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8 logs");
    // The capture saw the runs, including their failure paths.
    for expected in [
        "batch processed",
        "object write failed",
        "object transformed",
        "object failed",
        "object quarantined",
    ] {
        assert!(
            logs.contains(expected),
            "log line {expected:?} captured:\n{logs}"
        );
    }
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line).expect("every log line is JSON");
        assert!(v.get("level").is_some(), "{line}");
    }
    for marker in [
        EMAIL,
        "pii-log-marker",
        PHONE,
        "7654321",
        IP,
        BIRTH,
        PAYLOAD,
        ROUTE,
        HMAC,
        DBPASS,
    ] {
        assert!(
            !logs.contains(marker),
            "marker {marker:?} appears in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(marker))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The quarantine is where payloads belong: the markers are there, so they were live.
    let q = direct.json_lines(&bucket, "quarantine/_unrouted/").await;
    assert!(q.iter().any(|(_, v)| v["payload_b64"].is_string()));
}
