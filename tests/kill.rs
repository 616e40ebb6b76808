//! kinesis-ingest killed between two object writes, then the batch redelivered.
//!
//! A test binary without the libtest harness (`harness = false`), so it can re-run itself as
//! the "Lambda process": the child runs the real handler over a batch that plans several
//! objects, writing one at a time; after the first object has landed it announces it and is
//! SIGKILLed by the parent while it is about to write the second. Lambda then redelivers the
//! whole batch (the invocation never answered). The parent redelivers it to a fresh handler and
//! proves the bucket is byte-for-byte what a clean, uninterrupted run produces.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use sluice_core::aws::S3Store;
use sluice_core::env::Zones;
use sluice_core::lake::stream::StreamRecord;
use sluice_core::store::ObjectStore;
use sluice_local::events::{kinesis_event_json, record};
use sluice_local::{demo_config, moto, Aws};

const CHILD: &str = "SLUICE_KILL_CHILD";

/// A store that lets one write through, says so, and then hangs on the next one.
struct OneThenHang {
    inner: S3Store,
    puts: AtomicUsize,
}

#[async_trait]
impl ObjectStore for OneThenHang {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> sluice_core::Result<()> {
        if self.puts.fetch_add(1, Ordering::SeqCst) >= 1 {
            println!("ABOUT-TO-WRITE {key}");
            std::io::stdout().flush().expect("flush");
            // The parent kills the process here, between the two writes.
            tokio::time::sleep(Duration::from_secs(600)).await;
            panic!("the parent should have killed this process");
        }
        self.inner.put(key, body, content_type).await?;
        println!("WROTE {key}");
        std::io::stdout().flush().expect("flush");
        Ok(())
    }
    async fn get(&self, key: &str) -> sluice_core::Result<Vec<u8>> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, start: u64, end: u64) -> sluice_core::Result<Vec<u8>> {
        self.inner.get_range(key, start, end).await
    }
    async fn size(&self, key: &str) -> sluice_core::Result<u64> {
        self.inner.size(key).await
    }
    async fn list(&self, prefix: &str) -> sluice_core::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
}

/// A batch that plans objects in three datasets, two partitions and the quarantine.
fn batch() -> serde_json::Value {
    let arrival = 1_763_806_500.0; // 2025-11-22T10:15:00Z
    let lines = [
        r#"{"type":"page_view","event_id":"pv-1","ts":"2025-11-22T09:01:00Z","session_id":"s1","url":"/"}"#,
        r#"{"type":"signup","event_id":"su-1","ts":"2025-11-22T09:02:00Z","user_id":"u1","email":"a@example.com"}"#,
        r#"{"type":"purchase","order_id":"o-1","ts":"2025-11-22T08:03:00Z","user_id":"u1","amount":9.5,"currency":"EUR"}"#,
        r#"{"type":"page_view","event_id":"pv-2","ts":"2025-11-22T10:04:00Z","session_id":"s2","url":"/cart"}"#,
        r#"{"type":"refund","id":1}"#,
        r#"{"type":"page_view","event_id":"#,
        r#"{"type":"purchase","order_id":"o-2","ts":"2025-11-22T08:30:00Z","user_id":"u2","amount":1,"currency":"USD"}"#,
    ];
    let records: Vec<StreamRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 + 1, l.as_bytes().to_vec(), arrival))
        .collect();
    kinesis_event_json(
        "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events",
        &records,
    )
}

async fn child() {
    let endpoint = std::env::var("SLUICE_KILL_ENDPOINT").expect("endpoint");
    let bucket = std::env::var("SLUICE_KILL_BUCKET").expect("bucket");
    let aws = Aws::at(&endpoint).await;
    let cfg = demo_config();
    let zones = Zones::default();
    let store = OneThenHang {
        inner: S3Store::new(aws.s3.clone(), &bucket),
        puts: AtomicUsize::new(0),
    };
    let ctx = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 1,
    };
    let event: KinesisEvent = serde_json::from_value(batch()).expect("event");
    let _ = kinesis_ingest::handle(&ctx, event).await;
    panic!("the handler finished; the parent should have killed this process first");
}

async fn ingest(aws: &Aws, bucket: &str) {
    let cfg = demo_config();
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), bucket);
    let ctx = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    let event: KinesisEvent = serde_json::from_value(batch()).expect("event");
    let resp = kinesis_ingest::handle(&ctx, event).await.expect("ingest");
    assert!(resp.failed.is_empty());
}

async fn contents(aws: &Aws, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for k in aws.keys(bucket, "").await {
        let body = aws.get(bucket, &k).await;
        out.push((k, body));
    }
    out
}

async fn parent() {
    let aws = Aws::local().await;
    let crashed = aws.bucket().await;
    let clean = aws.bucket().await;

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD, "1")
        .env("SLUICE_KILL_ENDPOINT", &moto().endpoint)
        .env("SLUICE_KILL_BUCKET", &crashed)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut wrote = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the child announces its writes within 2 minutes");
        if let Some(k) = line.strip_prefix("WROTE ") {
            wrote.push(k.to_string());
        } else if line.starts_with("ABOUT-TO-WRITE ") {
            break;
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    assert_eq!(wrote.len(), 1, "exactly one object landed before the kill");

    let after_kill = contents(&aws, &crashed).await;
    assert_eq!(
        after_kill
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>(),
        wrote,
        "the bucket holds only the first object"
    );

    // Lambda redelivers the batch; compare with a clean run of the same batch.
    ingest(&aws, &crashed).await;
    ingest(&aws, &clean).await;
    let recovered = contents(&aws, &crashed).await;
    let expected = contents(&aws, &clean).await;
    assert!(
        expected.len() >= 5,
        "the batch plans several objects: {}",
        expected.len()
    );
    assert_eq!(
        recovered.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        expected.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "same keys as a clean run"
    );
    for ((k, a), (_, b)) in recovered.iter().zip(&expected) {
        assert!(a == b, "{k}: bytes differ from a clean run");
    }
    println!(
        "kill: child SIGKILLed after writing {} of {} objects; redelivery left the bucket identical to a clean run",
        wrote.len(),
        expected.len()
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if std::env::var_os(CHILD).is_some() {
        rt.block_on(child());
    } else {
        println!("running 1 test");
        rt.block_on(parent());
        println!("test killed_between_two_writes_then_redelivered_equals_a_clean_run ... ok");
    }
}
