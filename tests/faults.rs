//! Failures on the wire and in the database, one at a time: each fault the proxy injects is seen
//! by the SDK and classified by sluice as retryable, the SDK's own retries get through a faulty
//! link, and PostgreSQL stopped while a transform is loading (and restarted) loses and
//! duplicates nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use s3_transform::error::TransformError;
use s3_transform::event::S3Input;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::rollup::RollupSql;
use s3_transform::transform::{Column, Row};
use s3_transform::warehouse::{LoadStats, Postgres, Warehouse};
use sluice_core::aws::S3Store;
use sluice_core::env::Zones;
use sluice_core::lake::stream::StreamRecord;
use sluice_core::store::ObjectStore;
use sluice_local::events::{kinesis_event, record, s3_event_json};
use sluice_local::faults::{FaultProxy, Rates};
use sluice_local::{demo_config, moto, unique, Aws, Pg};
use tokio::sync::{Notify, Semaphore};

fn only(kind: &str) -> Rates {
    let mut r = Rates::NONE;
    match kind {
        "500" => r.error_500 = 1.0,
        "throttle" => r.throttle = 1.0,
        "reset" => r.reset = 1.0,
        "reset_after" => r.reset_after = 1.0,
        _ => unreachable!("unknown kind {kind}"),
    }
    r
}

fn one_attempt(aws: &Aws) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&aws.sdk)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[tokio::test]
async fn every_injected_fault_is_a_retryable_storage_error() {
    let direct = Aws::local().await;
    let bucket = direct.bucket().await;
    direct.put(&bucket, "k", b"body".to_vec()).await;
    let proxy = FaultProxy::http(&moto().endpoint, Rates::NONE, 1)
        .await
        .expect("proxy");
    let aws = Aws::at(&proxy.endpoint).await;
    let store = S3Store::new(one_attempt(&aws), &bucket);
    // Transparent when no fault is chosen.
    assert_eq!(store.get("k").await.expect("get through proxy"), b"body");

    for kind in ["500", "throttle", "reset", "reset_after"] {
        proxy.set_rates(only(kind));
        let put = store
            .put("p", b"x".to_vec(), "text/plain")
            .await
            .expect_err(kind);
        assert!(put.is_retryable(), "{kind}: put error {put} is retryable");
        let get = store.get("k").await.expect_err(kind);
        assert!(get.is_retryable(), "{kind}: get error {get} is retryable");
    }
    let c = proxy.counts();
    assert_eq!(
        (c.error_500, c.throttle, c.reset, c.reset_after),
        (2, 2, 2, 2),
        "{c}"
    );
    // A reset after forwarding: the PUT took effect although the client saw a failure.
    assert_eq!(direct.get(&bucket, "p").await, b"x");

    // The body of a throttled S3 call is S3's SlowDown; for a JSON protocol it is a
    // ThrottlingException, which the SDK parses as such.
    proxy.set_rates(only("throttle"));
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(&aws.sdk)
            .retry_config(
                aws_sdk_kinesis::config::retry::RetryConfig::standard().with_max_attempts(1),
            )
            .build(),
    );
    let err = kinesis.list_streams().send().await.expect_err("throttled");
    let code = err
        .as_service_error()
        .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e))
        .map(str::to_string);
    assert_eq!(code.as_deref(), Some("ThrottlingException"));
    let err = aws
        .s3
        .head_bucket()
        .bucket(&bucket)
        .customize()
        .config_override(
            aws_sdk_s3::config::Builder::default()
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .expect_err("throttled");
    let raw = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(503));
}

#[tokio::test]
async fn the_sdk_retries_get_through_a_faulty_link() {
    let direct = Aws::local().await;
    let bucket = direct.bucket().await;
    let proxy = FaultProxy::http(&moto().endpoint, Rates::uniform(0.06), 7)
        .await
        .expect("proxy");
    let aws = Aws::at(&proxy.endpoint).await;
    let conf = aws_sdk_s3::config::Builder::from(&aws.sdk)
        .force_path_style(true)
        .retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(conf), &bucket);
    for i in 0..150 {
        let body = format!("object {i}").into_bytes();
        store
            .put(&format!("o/{i}"), body.clone(), "text/plain")
            .await
            .expect("put survives faults with retries");
        assert_eq!(store.get(&format!("o/{i}")).await.expect("get"), body);
    }
    let c = proxy.counts();
    assert!(
        c.error_500 > 0 && c.throttle > 0 && c.reset > 0 && c.reset_after > 0 && c.delay > 0,
        "every kind was injected: {c}"
    );
    assert_eq!(direct.keys(&bucket, "o/").await.len(), 150);
}

/// A warehouse whose first load stops at a gate, so the test can take PostgreSQL away while a
/// transform is in the middle of it.
struct Gated<'a> {
    inner: &'a Postgres,
    entered: Arc<Notify>,
    release: Arc<Semaphore>,
}

#[async_trait]
impl Warehouse for Gated<'_> {
    async fn load(
        &self,
        table: &str,
        cols: &[Column],
        rows: &[&Row],
        source: &str,
        rollups: &[RollupSql],
    ) -> Result<LoadStats, TransformError> {
        self.entered.notify_one();
        let permit = self.release.acquire().await.expect("gate");
        permit.forget();
        self.inner.load(table, cols, rows, source, rollups).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_during_a_transform_and_restarted_loses_and_duplicates_nothing() {
    let pg = Pg::start().expect("own cluster");
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let cfg = demo_config();
    let zones = Zones::default();
    let store = S3Store::new(aws.s3.clone(), &bucket);

    // One batch with page views in one partition: one raw object.
    let arrival = 1_763_806_500.0; // 2025-11-22T10:15:00Z
    let records: Vec<StreamRecord> = (0..300u64)
        .map(|i| {
            let line = format!(
                r#"{{"type":"page_view","event_id":"pv-{i}","ts":"2025-11-22T10:{:02}:00Z","session_id":"s","url":"/"}}"#,
                i % 15
            );
            record(i + 1, line.into_bytes(), arrival)
        })
        .chain(std::iter::once(record(
            301,
            br#"{"type":"signup","event_id":"su-1","ts":"2025-11-22T10:00:00Z","user_id":"u","email":"a@example.com"}"#.to_vec(),
            arrival,
        )))
        .collect();
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 2,
    };
    let resp = kinesis_ingest::handle(&ingest, kinesis_event(&records))
        .await
        .expect("ingest");
    assert!(resp.failed.is_empty());
    let keys = aws.keys(&bucket, "raw/page_views/").await;
    assert_eq!(keys.len(), 1);
    let signups = aws.keys(&bucket, "raw/signups/").await;
    assert_eq!(signups.len(), 1);

    let schema = unique("pgstop").replace('-', "_");
    let pg_cfg: tokio_postgres::Config = pg.url.parse().expect("url");
    let postgres = Postgres::new(pg_cfg, None, &schema);
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Semaphore::new(0));
    let gated = Gated {
        inner: &postgres,
        entered: entered.clone(),
        release: release.clone(),
    };
    let key = HashKey::new(b"faults-hmac-key-0123456789".to_vec()).expect("key");
    let ctx = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &gated,
        limits: Limits {
            max_decompressed: 8 << 20,
            max_line: 1 << 20,
        },
        hash_key: Some(&key),
    };
    let event = || -> S3Input {
        serde_json::from_value(s3_event_json(&bucket, &keys[0], 0)).expect("s3 event")
    };
    // Warm the shared connection with another object, so the outage hits a live connection.
    let warm = s3_transform::Handler {
        warehouse: &postgres,
        ..ctx
    };
    let s: S3Input =
        serde_json::from_value(s3_event_json(&bucket, &signups[0], 0)).expect("s3 event");
    let out = s3_transform::handle(&warm, s).await.expect("warm-up load");
    assert_eq!(out.objects[0].inserted, 1);

    // The transform reaches the load; PostgreSQL stops underneath it; the load proceeds.
    let (first, ()) = tokio::join!(s3_transform::handle(&ctx, event()), async {
        entered.notified().await;
        pg.stop().expect("stop postgres mid-transform");
        release.add_permits(1);
    });
    let err = first.expect_err("the load fails while PostgreSQL is down");
    assert!(err.is_retryable(), "{err}");
    // Curated Parquet was written before the load: the retry rewrites the same bytes.
    let curated = aws.keys(&bucket, "curated/page_views/").await;
    assert_eq!(curated.len(), 1);
    let parquet_before = aws.get(&bucket, &curated[0]).await;

    // Lambda's async retries: the first retry still meets the outage, then it is back.
    release.add_permits(10);
    let err = s3_transform::handle(&ctx, event())
        .await
        .expect_err("still down");
    assert!(err.is_retryable(), "{err}");
    pg.resume().expect("restart postgres");
    let out = s3_transform::handle(&ctx, event())
        .await
        .expect("the retry after the restart succeeds");
    assert_eq!(out.objects[0].inserted, 300);
    // The event is delivered once more (S3 delivers at least once): nothing changes.
    let again = s3_transform::handle(&ctx, event())
        .await
        .expect("duplicate delivery");
    assert_eq!(
        (again.objects[0].inserted, again.objects[0].updated),
        (0, 0)
    );
    assert_eq!(aws.get(&bucket, &curated[0]).await, parquet_before);

    let client = pg.client().await.expect("client");
    let rows = client
        .query(
            &format!("SELECT _sluice_key FROM \"{schema}\".page_views"),
            &[],
        )
        .await
        .expect("query");
    let got: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let want: BTreeSet<String> = (0..300).map(|i| format!("pv-{i}")).collect();
    assert_eq!(rows.len(), 300, "no duplicates");
    assert_eq!(got, want, "nothing lost");
}
