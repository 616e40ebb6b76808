//! s3-transform against a real S3 API (moto) and a real PostgreSQL (a throwaway cluster):
//! Parquet read back field by field, rows queried, idempotency, hostile objects, outages.

use std::collections::BTreeMap;
use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use aws_lambda_events::event::kinesis::KinesisEvent;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use s3_transform::event::S3Input;
use s3_transform::handle;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::warehouse::Postgres;
use serde_json::{json, Value};
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::{Common, Zones};
use sluice_local::events::{s3_event_json, sample};
use sluice_local::{demo_config, shared_postgres, unique, Aws, Pg};

const HMAC: &[u8] = b"test-hmac-key-0123456789";

struct Fixture {
    aws: Aws,
    bucket: String,
    cfg: PipelineConfig,
    zones: Zones,
    store: S3Store,
    warehouse: Postgres,
    schema: String,
    key: HashKey,
}

impl Fixture {
    async fn new(pg: &Pg) -> Fixture {
        let aws = Aws::local().await;
        let bucket = aws.bucket().await;
        let schema = unique("t").replace('-', "_");
        let config: tokio_postgres::Config = pg.url.parse().expect("pg url");
        Fixture {
            store: S3Store::new(aws.s3.clone(), &bucket),
            aws,
            bucket,
            cfg: demo_config(),
            zones: Zones::default(),
            warehouse: Postgres::new(config, None, &schema),
            schema,
            key: HashKey::new(HMAC.to_vec()).expect("key"),
        }
    }

    fn ctx(&self) -> s3_transform::Handler<'_> {
        s3_transform::Handler {
            cfg: &self.cfg,
            zones: &self.zones,
            store: &self.store,
            warehouse: &self.warehouse,
            limits: Limits {
                max_decompressed: 8 << 20,
                max_line: 1 << 20,
            },
            hash_key: Some(&self.key),
        }
    }

    async fn ingest(&self, sample_name: &str) {
        let event: KinesisEvent =
            serde_json::from_value(sample(sample_name)).expect("kinesis event");
        let ctx = kinesis_ingest::Handler {
            cfg: &self.cfg,
            zones: &self.zones,
            store: &self.store,
            max_concurrency: 4,
        };
        let resp = kinesis_ingest::handle(&ctx, event).await.expect("ingest");
        assert!(resp.failed.is_empty());
    }

    async fn notify(
        &self,
        key: &str,
    ) -> Result<s3_transform::handler::Outcome, s3_transform::TransformError> {
        let size = self.aws.get(&self.bucket, key).await.len();
        let input: S3Input =
            serde_json::from_value(s3_event_json(&self.bucket, key, size)).expect("s3 event");
        handle(&self.ctx(), input).await
    }

    async fn rows(&self, pg: &Pg, table: &str) -> Vec<tokio_postgres::Row> {
        let client = pg.client().await.expect("pg client");
        client
            .query(
                &format!(
                    "SELECT * FROM \"{}\".\"{table}\" ORDER BY _sluice_key",
                    self.schema
                ),
                &[],
            )
            .await
            .expect("query")
    }
}

fn parquet_batches(bytes: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

#[tokio::test]
async fn raw_objects_become_parquet_and_rows_field_by_field() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    f.ingest("kinesis-clean.json").await;
    let raw_keys = f.aws.keys(&f.bucket, "raw/").await;
    assert_eq!(raw_keys.len(), 4);
    for key in &raw_keys {
        let out = f.notify(key).await.expect("transform");
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.objects[0].rejected, 0);
    }
    // Every raw object has its curated twin, same partition, same stem.
    let curated = f.aws.keys(&f.bucket, "curated/").await;
    let expected: Vec<String> = raw_keys
        .iter()
        .map(|k| {
            k.replacen("raw/", "curated/", 1)
                .replace(".json.gz", ".parquet")
        })
        .collect();
    assert_eq!(curated, expected);

    // Purchases: compare every field with the original records.
    let originals: BTreeMap<String, Value> = sample("kinesis-clean.json")["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            let data = base64_decode(r["kinesis"]["data"].as_str().unwrap_or(""));
            serde_json::from_slice::<Value>(&data).expect("json")
        })
        .filter(|v| v["type"] == "purchase")
        .map(|v| (v["order_id"].as_str().unwrap_or("").to_string(), v))
        .collect();
    let pkey = curated
        .iter()
        .find(|k| k.starts_with("curated/purchases/"))
        .expect("purchases file");
    let batches = parquet_batches(f.aws.get(&f.bucket, pkey).await);
    let b = &batches[0];
    let schema = b.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "order_id",
            "ts",
            "user_id",
            "amount",
            "currency",
            "items",
            "coupon",
            "payment",
            "payment_method",
            "_sluice_key",
            "_sluice_source"
        ]
    );
    assert_eq!(b.num_rows(), originals.len());
    for i in 0..b.num_rows() {
        let id = b.column(0).as_string::<i32>().value(i);
        let o = &originals[id];
        let ts = b
            .column(1)
            .as_primitive::<TimestampMicrosecondType>()
            .value(i);
        assert_eq!(
            sluice_core::schema::format_micros(ts),
            "2025-11-22T08:15:30.000Z"
        );
        assert_eq!(b.column(2).as_string::<i32>().value(i), o["user_id"]);
        // amount is decimal(12,2): the unscaled cents, exactly as sent.
        assert_eq!(
            b.column(3).data_type(),
            &arrow_schema::DataType::Decimal128(12, 2)
        );
        assert_eq!(
            Ok(b.column(3).as_primitive::<Decimal128Type>().value(i)),
            sluice_core::decimal::parse(&o["amount"].to_string(), 12, 2)
        );
        assert_eq!(b.column(4).as_string::<i32>().value(i), o["currency"]);
        assert_eq!(
            b.column(5).as_primitive::<Int64Type>().value(i),
            o["items"].as_i64().unwrap_or(-1)
        );
        assert!(b.column(6).is_null(i), "null coupon stays null");
        let payment: Value =
            serde_json::from_str(b.column(7).as_string::<i32>().value(i)).expect("json column");
        assert_eq!(payment, o["payment"]);
        assert_eq!(
            b.column(8).as_string::<i32>().value(i),
            o["payment"]["method"],
            "the nested field payment.method"
        );
        assert_eq!(
            b.column(9).as_string::<i32>().value(i),
            id,
            "key is the order id"
        );
        assert_eq!(
            b.column(10).as_string::<i32>().value(i),
            pkey.replacen("curated/", "raw/", 1)
                .replace(".parquet", ".json.gz")
        );
    }

    // And the same rows in PostgreSQL, typed.
    let rows = f.rows(pg, "purchases").await;
    assert_eq!(rows.len(), originals.len());
    for r in &rows {
        let id: String = r.get("order_id");
        let o = &originals[&id];
        let client = pg.client().await.expect("pg client");
        let amount: String = client
            .query_one(
                &format!(
                    "SELECT amount::text FROM \"{}\".purchases WHERE order_id = $1",
                    f.schema
                ),
                &[&id],
            )
            .await
            .expect("amount")
            .get(0);
        let sent = sluice_core::decimal::parse(&o["amount"].to_string(), 12, 2).expect("cents");
        assert_eq!(
            amount,
            sluice_core::decimal::format(sent, 2),
            "numeric(12,2)"
        );
        assert_eq!(r.get::<_, i64>("items"), o["items"].as_i64().unwrap_or(-1));
        assert_eq!(r.get::<_, Option<String>>("coupon"), None);
        assert_eq!(r.get::<_, Value>("payment"), o["payment"]);
        assert_eq!(
            r.get::<_, Option<String>>("payment_method").as_deref(),
            o["payment"]["method"].as_str()
        );
        assert_eq!(
            r.get::<_, chrono::DateTime<chrono::Utc>>("ts").to_rfc3339(),
            "2025-11-22T08:15:30+00:00"
        );
    }

    // Signups: PII masked everywhere.
    let srows = f.rows(pg, "signups").await;
    assert_eq!(srows.len(), 1);
    assert_eq!(srows[0].get::<_, String>("email"), "***@example.com");
    assert_eq!(srows[0].get::<_, String>("ip"), "198.51.100.0");
    assert_eq!(
        srows[0].get::<_, String>("phone"),
        f.key.hash("+1-555-0100")
    );
    let columns: Vec<&str> = srows[0].columns().iter().map(|c| c.name()).collect();
    assert!(
        !columns.contains(&"birth_date"),
        "dropped column is not in the table"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[tokio::test]
async fn seeded_pii_never_reaches_curated_or_postgres() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    f.ingest("kinesis-clean.json").await;
    f.ingest("kinesis-mixed.json").await;
    f.ingest("kinesis-kpl.json").await;
    for key in f.aws.keys(&f.bucket, "raw/").await {
        f.notify(&key).await.expect("transform");
    }
    let markers = [
        "pii-marker-",
        "+1-555-0100",
        "1990-04-01",
        "198.51.100.77",
        "203.0.113.42",
    ];
    for key in f.aws.keys(&f.bucket, "curated/").await {
        let bytes = f.aws.get(&f.bucket, &key).await;
        for batch in parquet_batches(bytes) {
            for col in batch.columns() {
                if let Some(strings) = col.as_string_opt::<i32>() {
                    for v in strings.iter().flatten() {
                        for m in markers {
                            assert!(!v.contains(m), "{key} holds PII marker {m}");
                        }
                    }
                }
            }
        }
    }
    let client = pg.client().await.expect("pg");
    for table in ["signups", "page_views", "purchases"] {
        let dump: Vec<String> = client
            .query(
                &format!("SELECT t::text FROM \"{}\".\"{table}\" t", f.schema),
                &[],
            )
            .await
            .expect("dump")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!dump.is_empty(), "{table} has rows");
        for row in dump {
            for m in markers {
                assert!(!row.contains(m), "{table} row holds PII marker {m}");
            }
        }
    }
}

#[tokio::test]
async fn a_repeated_event_adds_nothing_and_rewrites_identical_bytes() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    f.ingest("kinesis-mixed.json").await;
    let key = f.aws.keys(&f.bucket, "raw/signups/").await.remove(0);
    let first = f.notify(&key).await.expect("transform");
    assert_eq!(first.objects[0].inserted, 1);
    let curated = f.aws.keys(&f.bucket, "curated/").await;
    let before: Vec<Vec<u8>> =
        futures::future::join_all(curated.iter().map(|k| f.aws.get(&f.bucket, k))).await;
    let count_before = f.rows(pg, "signups").await.len();
    let second = f.notify(&key).await.expect("transform");
    assert_eq!(
        (second.objects[0].inserted, second.objects[0].updated),
        (0, 0)
    );
    assert_eq!(f.rows(pg, "signups").await.len(), count_before);
    assert_eq!(f.aws.keys(&f.bucket, "curated/").await, curated);
    for (k, b) in curated.iter().zip(before) {
        assert_eq!(f.aws.get(&f.bucket, k).await, b, "{k} byte-identical");
    }
}

#[tokio::test]
async fn dropped_csv_and_json_files_with_encoded_keys_are_processed() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    let csv = "order_id,ts,user_id,amount,currency,items,coupon,payment\n\
               o-1,2025-11-22T07:00:00Z,u-1,10.50,EUR,2,,\n\
               o-2,2025-11-22 07:30:00,u-2,3,USD,,SAVE5,\"{\"\"method\"\":\"\"card\"\"}\"\n\
               o-1,2025-11-22T07:00:00Z,u-1,10.50,EUR,2,,\n\
               o-3,2025-11-22T07:45:00Z,u-3,free,EUR,1,,\n";
    let key = "raw/purchases/manual import 2025.csv.gz";
    f.aws.put(&f.bucket, key, gz(csv.as_bytes())).await;
    let out = f.notify(key).await.expect("transform");
    let o = &out.objects[0];
    assert_eq!((o.rows, o.duplicates, o.rejected, o.inserted), (2, 1, 1, 2));
    let rows = f.rows(pg, "purchases").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1].get::<_, Option<String>>("coupon").as_deref(),
        Some("SAVE5")
    );
    assert_eq!(
        rows[1].get::<_, Value>("payment"),
        serde_json::json!({"method": "card"})
    );
    assert_eq!(rows[0].get::<_, String>("_sluice_source"), key);
    let curated = f
        .aws
        .keys(&f.bucket, "curated/purchases/dt=2025-11-22/hr=07/")
        .await;
    assert_eq!(curated.len(), 1);
    assert!(
        curated[0].ends_with(".parquet") && curated[0].contains("/src-manual_import_2025.csv.gz-"),
        "{curated:?}"
    );
    let q = f.aws.json_lines(&f.bucket, "quarantine/purchases/").await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].1["error_kind"], "wrong_type");
    assert_eq!(q[0].1["line"], 4);

    let unicode = "raw/signups/café ünïcode.json";
    let body = r#"[{"event_id":"u-1","ts":"2025-11-22T06:00:00Z","user_id":"u","email":"zoë@example.org"}]"#;
    f.aws
        .put(&f.bucket, unicode, body.as_bytes().to_vec())
        .await;
    let out = f.notify(unicode).await.expect("transform");
    assert_eq!(out.objects[0].key, unicode, "the key is URL-decoded");
    assert_eq!(out.objects[0].inserted, 1);
    assert_eq!(
        f.rows(pg, "signups").await[0].get::<_, String>("email"),
        "***@example.org"
    );
}

#[tokio::test]
async fn hostile_objects_are_quarantined_without_failing() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    let bomb = gz(&vec![b' '; 64 << 20]);
    assert!(
        bomb.len() < 200_000,
        "64 MiB of spaces compress to {} bytes",
        bomb.len()
    );
    let bomb_key = "raw/page_views/dt=2025-11-22/hr=09/bomb.json.gz";
    f.aws.put(&f.bucket, bomb_key, bomb.clone()).await;
    let out = f
        .notify(bomb_key)
        .await
        .expect("a bomb never fails the invocation");
    assert!(out.objects[0]
        .quarantined
        .as_deref()
        .is_some_and(|r| r.contains("more than")));
    let good = gz(b"{\"event_id\":\"x\"}\n{\"event_id\":\"y\"}\n");
    let truncated_key = "raw/page_views/dt=2025-11-22/hr=09/cut.json.gz";
    f.aws
        .put(&f.bucket, truncated_key, good[..good.len() - 8].to_vec())
        .await;
    let out = f
        .notify(truncated_key)
        .await
        .expect("truncated gzip never fails the invocation");
    assert!(out.objects[0]
        .quarantined
        .as_deref()
        .is_some_and(|r| r.contains("corrupt")));
    let unknown = "raw/refunds/x.json";
    f.aws.put(&f.bucket, unknown, b"{}".to_vec()).await;
    f.notify(unknown)
        .await
        .expect("unknown dataset never fails the invocation");

    let q = f.aws.keys(&f.bucket, "quarantine/").await;
    // A key outside the layout is named after the whole of it (see `layout::output_stem`).
    let unrouted = sluice_core::lake::keys::output_stem("refunds/x.json", None);
    assert!(unrouted.starts_with("src-refunds_x.json-"), "{unrouted}");
    assert_eq!(
        q,
        vec![
            format!("quarantine/_unrouted/objects/{unrouted}"),
            format!("quarantine/_unrouted/objects/{unrouted}.reason.json"),
            "quarantine/page_views/dt=2025-11-22/hr=09/objects/bomb.json.gz".to_string(),
            "quarantine/page_views/dt=2025-11-22/hr=09/objects/bomb.json.gz.reason.json"
                .to_string(),
            "quarantine/page_views/dt=2025-11-22/hr=09/objects/cut.json.gz".to_string(),
            "quarantine/page_views/dt=2025-11-22/hr=09/objects/cut.json.gz.reason.json".to_string(),
        ]
    );
    assert_eq!(
        f.aws.get(&f.bucket, &q[2]).await,
        bomb,
        "the object is copied as is"
    );
    let reason: Value =
        serde_json::from_slice(&f.aws.get(&f.bucket, &q[3]).await).expect("reason json");
    assert_eq!(reason["error_kind"], "too_large");
    assert_eq!(reason["source"], bomb_key);
    assert!(f.aws.keys(&f.bucket, "curated/").await.is_empty());
}

#[tokio::test]
async fn events_outside_raw_and_test_events_are_skipped() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    f.aws
        .put(
            &f.bucket,
            "curated/page_views/dt=2025-11-22/hr=09/a.parquet",
            b"PAR1".to_vec(),
        )
        .await;
    let out = f
        .notify("curated/page_views/dt=2025-11-22/hr=09/a.parquet")
        .await
        .expect("skip");
    assert_eq!(out.skipped.get("outside_prefix"), Some(&1));
    assert!(out.objects.is_empty());
    let test_event: S3Input =
        serde_json::from_value(sample("s3-test-event.json")).expect("test event");
    let out = handle(&f.ctx(), test_event).await.expect("skip");
    assert_eq!(out.skipped.get("test_event"), Some(&1));
    let sample_put: S3Input = serde_json::from_value(sample("s3-put-raw.json")).expect("sample");
    // The sample names a bucket this test does not own: skipped, never processed.
    let out = handle(&f.ctx(), sample_put).await.expect("skip");
    assert_eq!(out.skipped.get("other_bucket"), Some(&1));
    assert!(f.aws.keys(&f.bucket, "quarantine/").await.is_empty());
}

#[tokio::test]
async fn postgres_down_then_back_loses_nothing_and_duplicates_nothing() {
    let pg = Pg::start().expect("own cluster");
    let f = Fixture::new(&pg).await;
    f.ingest("kinesis-clean.json").await;
    let keys = f.aws.keys(&f.bucket, "raw/page_views/").await;
    // Warm connection, then the database goes away.
    f.notify(&keys[0]).await.expect("first object loads");
    pg.stop().expect("stop postgres");
    let err = f
        .notify(&keys[1])
        .await
        .expect_err("postgres down fails the invocation");
    assert!(err.is_retryable(), "{err}");
    pg.resume().expect("restart postgres");
    // Lambda's async retry delivers the same event again (twice, for good measure).
    f.notify(&keys[1]).await.expect("retry succeeds");
    f.notify(&keys[1]).await.expect("duplicate delivery");
    let rows = f.rows(&pg, "page_views").await;
    let ids: Vec<String> = rows.iter().map(|r| r.get("event_id")).collect();
    assert_eq!(ids, vec!["pv-0001", "pv-0004"]);
}

#[tokio::test]
async fn tls_is_required_and_verified_when_configured() {
    let pg = Pg::start_tls().expect("TLS cluster");
    let ca = pg.dir().join("ca.pem");
    let mut config: tokio_postgres::Config = pg.url.parse().expect("pg url");
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let mut f = Fixture::new(&pg).await;
    f.ingest("kinesis-clean.json").await;
    let key = f.aws.keys(&f.bucket, "raw/signups/").await.remove(0);

    // Without the CA the server's certificate is not trusted: the load fails, retryably.
    let untrusted = s3_transform::config::tls_connector(None, false).expect("connector");
    f.warehouse = Postgres::new(config.clone(), Some(untrusted), &f.schema);
    let err = f
        .notify(&key)
        .await
        .expect_err("unverified certificate is refused");
    assert!(err.to_string().contains("connect"), "{err}");

    // Plain connections are refused by this server, so a load that works is a TLS one.
    f.warehouse = Postgres::new(pg.url.parse().expect("pg url"), None, &f.schema);
    assert!(f.notify(&key).await.is_err(), "plain connection refused");

    let trusted =
        s3_transform::config::tls_connector(Some(&ca.to_string_lossy()), false).expect("connector");
    // A trusted chain for another host name (the certificate names 127.0.0.1 and localhost):
    // refused, as a proxy endpoint whose certificate does not name it would be.
    let named = |name: &str| {
        let mut c = tokio_postgres::Config::new();
        c.host(name)
            .hostaddr(std::net::IpAddr::from([127, 0, 0, 1]))
            .port(pg.port)
            .user("postgres")
            .dbname("postgres")
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        c
    };
    f.warehouse = Postgres::new(
        named("db-proxy.example.com"),
        Some(trusted.clone()),
        &f.schema,
    );
    let err = f
        .notify(&key)
        .await
        .expect_err("a certificate for another name is refused");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // The same connection under a name the certificate holds is accepted.
    f.warehouse = Postgres::new(named("localhost"), Some(trusted.clone()), &f.schema);
    assert_eq!(
        f.notify(&key).await.expect("verified by name").objects[0].inserted,
        1
    );

    f.warehouse = Postgres::new(config, Some(trusted), &f.schema);
    let out = f.notify(&key).await.expect("verified TLS load");
    assert_eq!(out.objects[0].inserted, 0, "already loaded, not duplicated");
}

/// A new Secrets Manager secret holding `text`; its ARN.
async fn create_secret(aws: &Aws, text: String) -> String {
    aws.secrets
        .create_secret()
        .name(unique("sluice-db"))
        .secret_string(text)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

/// A new current version of the secret `arn`.
async fn put_secret(aws: &Aws, arn: &str, text: String) {
    aws.secrets
        .put_secret_value()
        .secret_id(arn)
        .secret_string(text)
        .send()
        .await
        .expect("put secret value");
}

/// s3-transform's settings with the database in the secret `arn` (plain TCP to the local
/// cluster), `db_host` as `SLUICE_DB_HOST`.
fn secret_config(f: &Fixture, arn: &str, db_host: Option<&str>) -> s3_transform::Config {
    s3_transform::Config {
        common: Common {
            bucket: f.bucket.clone(),
            zones: Zones::default(),
        },
        config_location: "unused".into(),
        config_ttl: std::time::Duration::from_secs(60),
        limits: Limits {
            max_decompressed: 8 << 20,
            max_line: 1 << 20,
        },
        hmac: None,
        database: s3_transform::config::Database::Secret(arn.to_string()),
        db_tls: Some(false),
        db_ca_file: None,
        db_host: db_host.map(str::to_string),
    }
}

#[tokio::test]
async fn a_proxy_host_replaces_the_host_the_secret_names() {
    // The secret names the cluster (as RDS writes it); SLUICE_DB_HOST points at the proxy,
    // here the local server itself.
    let pg = shared_postgres();
    let mut f = Fixture::new(pg).await;
    let secret = json!({
        "host": "sluice.cluster-abc.eu-west-1.rds.invalid", "port": pg.port,
        "username": "postgres", "password": "unused-with-trust", "dbname": "postgres"
    });
    let arn = create_secret(&f.aws, secret.to_string()).await;
    f.ingest("kinesis-clean.json").await;
    let key = f.aws.keys(&f.bucket, "raw/signups/").await.remove(0);

    let direct = secret_config(&f, &arn, None);
    let (db, tls) = direct.database(&f.aws.secrets).await.expect("database");
    f.warehouse = Postgres::new(db, tls, &f.schema);
    let e = f
        .notify(&key)
        .await
        .expect_err("the cluster name does not resolve here");
    assert!(e.to_string().contains("connect"), "{e}");

    let proxied = secret_config(&f, &arn, Some("127.0.0.1"));
    let (db, tls) = proxied.database(&f.aws.secrets).await.expect("database");
    f.warehouse = Postgres::new(db, tls, &f.schema);
    let out = f.notify(&key).await.expect("load through the proxy host");
    assert_eq!(out.objects[0].inserted, 1);
}

/// Terminates every session of `user` (as a failover or an idle timeout would) and waits until
/// none is left, so the loader's next use must open a new connection.
async fn drop_sessions(admin: &tokio_postgres::Client, user: &str) {
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&user],
        )
        .await
        .expect("terminate");
    for _ in 0..100 {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                &[&user],
            )
            .await
            .expect("count sessions")
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The client notices the closed socket on its next read.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_rotated_database_password_is_read_again_from_the_secret() {
    // A cluster of its own: password authentication for the loader's role.
    let pg = Pg::start().expect("postgres");
    let admin = pg.client().await.expect("pg client");
    admin
        .batch_execute(
            "CREATE ROLE writer LOGIN PASSWORD 'first-password-0001'; \
             GRANT CREATE ON DATABASE postgres TO writer",
        )
        .await
        .expect("role");
    let hba = pg.dir().join("data/pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!("host all writer 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .expect("write pg_hba.conf");
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");

    let mut f = Fixture::new(&pg).await;
    let secret_json = |password: &str| {
        json!({
            "host": "127.0.0.1", "port": pg.port, "username": "writer",
            "password": password, "dbname": "postgres", "engine": "postgres"
        })
        .to_string()
    };
    let arn = create_secret(&f.aws, secret_json("first-password-0001")).await;
    let config = secret_config(&f, &arn, None);
    let (db, tls) = config.database(&f.aws.secrets).await.expect("database");
    f.warehouse =
        Postgres::new(db, tls, &f.schema).with_credentials(config.credentials(&f.aws.secrets));
    f.ingest("kinesis-clean.json").await;
    let mut keys = f.aws.keys(&f.bucket, "raw/").await;
    keys.sort();
    assert!(keys.len() >= 3, "{keys:?}");
    let loaded = |o: &s3_transform::handler::Outcome| o.objects.iter().map(|x| x.inserted).sum();
    let first: u64 = loaded(&f.notify(&keys[0]).await.expect("load, first password"));
    assert!(first > 0);

    // Rotation: the database gets the new password, then the secret; the warm loader's
    // connection is gone. The next load reads the secret again and succeeds.
    admin
        .batch_execute("ALTER ROLE writer PASSWORD 'second-password-0002'")
        .await
        .expect("alter role");
    put_secret(&f.aws, &arn, secret_json("second-password-0002")).await;
    drop_sessions(&admin, "writer").await;
    let second: u64 = loaded(&f.notify(&keys[1]).await.expect("load after the rotation"));
    assert!(second > 0);

    // Mid-rotation (the database changed, the secret not yet): refused, and retryable, so
    // Lambda's retry finds the new secret.
    admin
        .batch_execute("ALTER ROLE writer PASSWORD 'third-password-0003'")
        .await
        .expect("alter role");
    drop_sessions(&admin, "writer").await;
    let e = f.notify(&keys[2]).await.expect_err("stale secret");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("28P01"), "{e}");
    assert!(
        !e.to_string().contains("password-000"),
        "no password in the error: {e}"
    );
    put_secret(&f.aws, &arn, secret_json("third-password-0003")).await;
    let third: u64 = loaded(
        &f.notify(&keys[2])
            .await
            .expect("the retry after the rotation"),
    );
    assert!(third > 0);

    // Every row is there once, loaded by the role whose password was rotated twice.
    let mut tables: Vec<&str> = keys[..3]
        .iter()
        .map(|k| k.split('/').nth(1).expect("dataset"))
        .collect();
    tables.dedup();
    let mut total = 0;
    for t in tables {
        total += f.rows(&pg, t).await.len();
    }
    assert_eq!(total as u64, first + second + third);
}

#[tokio::test]
async fn existing_columns_are_widened_or_the_load_fails_naming_the_conflict() {
    let pg = shared_postgres();
    let f = Fixture::new(pg).await;
    let client = pg.client().await.expect("pg client");
    // A table made by an earlier version (or by hand): `items` is a narrower integer, and
    // `amount` holds text, which a decimal column cannot be loaded into.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".purchases (_sluice_key text PRIMARY KEY, \
             order_id text, items integer, amount text, _sluice_source text NOT NULL)",
            s = f.schema
        ))
        .await
        .expect("create");
    f.ingest("kinesis-clean.json").await;
    let key = f
        .aws
        .keys(&f.bucket, "raw/purchases/")
        .await
        .into_iter()
        .next()
        .expect("a purchases object");
    let e = f.notify(&key).await.expect_err("amount text vs decimal");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.kind(), "schema_conflict");
    let msg = e.to_string();
    let table = format!("table {}.purchases", f.schema);
    for part in [
        table.as_str(),
        "column amount",
        "is text in PostgreSQL",
        "declares numeric(12,2)",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    let before = column_types(&client, &f.schema).await;
    assert_eq!(
        before["items"], "integer",
        "nothing changed by the failed load"
    );
    assert!(
        !before.contains_key("currency"),
        "no column added by the failed load"
    );
    assert!(f.rows(pg, "purchases").await.is_empty());

    // Fixed by hand: the same notification now widens `items` and loads.
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{}\".purchases ALTER COLUMN amount TYPE numeric(12,2) USING NULL",
            f.schema
        ))
        .await
        .expect("fix");
    let out = f.notify(&key).await.expect("loads after the fix");
    assert!(out.objects[0].inserted > 0, "{out:?}");
    let after = column_types(&client, &f.schema).await;
    assert_eq!(after["items"], "bigint", "integer widened to bigint");
    assert_eq!(after["currency"], "text", "new columns added");
    assert_eq!(
        f.rows(pg, "purchases").await.len() as u64,
        out.objects[0].inserted
    );
}

/// Column name → `information_schema` data type of `<schema>.purchases`.
async fn column_types(client: &tokio_postgres::Client, schema: &str) -> BTreeMap<String, String> {
    client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = 'purchases' ORDER BY column_name",
            &[&schema],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect()
}
