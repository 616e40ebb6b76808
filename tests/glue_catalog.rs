//! glue-catalog against a real Glue and S3 API (moto server): tables, evolution, partitions.
//!
//! Curated objects in the shape s3-transform produces are written by s3-transform's own encoder
//! (`parquet_out::encode` over the dataset's `columns`); files in other shapes (evolution,
//! conflicting or foreign types) are written with `ArrowWriter`. The handler reads their footers
//! from moto's S3 and writes the catalogue through the real aws-sdk-glue adapter.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use aws_sdk_glue::types::Table;
use glue_catalog::event::S3Input;
use glue_catalog::{
    handle, CatalogCache, CatalogError, GlueCatalog, Handler, Outcome, RetryPolicy,
};
use parquet::arrow::ArrowWriter;
use s3_transform::parquet_out;
use s3_transform::transform::{columns as columns_of, version, Row};
use serde_json::Value;
use sluice_core::aws::S3Store;
use sluice_core::config::{FieldType, PipelineConfig};
use sluice_core::env::Zones;
use sluice_core::lake::keys::{self as lake_keys, Partition};
use sluice_core::schema::Typed;
use sluice_core::store::ObjectStore;
use sluice_local::events::{s3_event_key, sample};
use sluice_local::{demo_config, unique, Aws};

/// The sample keys (decoded).
const STEM: &str = "shardId-000000000000-49590000000000000000000000000000000000000000000000000001-49590000000000000000000000000000000000000000000000000001";

fn curated_key(dataset: &str, dt: &str, hr: &str, stem: &str) -> String {
    let partition = Partition::parse(dt, hr).expect("a valid partition");
    lake_keys::curated_key("curated/", dataset, &partition, stem)
}

/// Three rows of `dataset` (from `cfg`), encoded by s3-transform's own Parquet encoder.
fn curated_parquet(cfg: &PipelineConfig, dataset: &str) -> Vec<u8> {
    let ds = cfg.dataset(dataset).expect("dataset in the config");
    let cols = columns_of(ds);
    let rows: Vec<Row> = (0..3i64)
        .map(|i| Row {
            key: format!("k-{i}"),
            version: version(1_763_802_000_000_000 + i, None, "", i as u64),
            event_micros: 1_763_802_000_000_000 + i,
            values: cols
                .iter()
                .map(|c| match c.ty {
                    FieldType::String => Typed::Str(format!("{}-{i}", c.name).into()),
                    FieldType::Int => Typed::Int(i),
                    FieldType::Float => Typed::Float(i as f64 * 1.5),
                    FieldType::Bool => Typed::Bool(i % 2 == 0),
                    FieldType::Timestamp => Typed::Timestamp(1_763_802_000_000_000 + i),
                    FieldType::Date => Typed::Date(20_414 + i as i32),
                    FieldType::Json => Typed::Json(format!("{{\"n\":{i}}}").into()),
                    FieldType::Decimal { scale, .. } => Typed::Decimal {
                        unscaled: i128::from(i) * 125,
                        scale,
                    },
                })
                .collect(),
        })
        .collect();
    parquet_out::encode(&cols, &rows, "raw/test/object.json").expect("encode")
}

/// The real S3 adapter, refusing whole-object GETs: glue-catalog may only read ranges.
struct RangesOnly(S3Store);

#[async_trait::async_trait]
impl ObjectStore for RangesOnly {
    fn bucket(&self) -> &str {
        self.0.bucket()
    }
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> sluice_core::Result<()> {
        self.0.put(key, body, content_type).await
    }
    async fn get(&self, key: &str) -> sluice_core::Result<Vec<u8>> {
        panic!("glue-catalog GET the whole object {key}")
    }
    async fn get_range(&self, key: &str, start: u64, end: u64) -> sluice_core::Result<Vec<u8>> {
        assert!(end - start < 64 * 1024, "footer-sized ranges only");
        self.0.get_range(key, start, end).await
    }
    async fn size(&self, key: &str) -> sluice_core::Result<u64> {
        self.0.size(key).await
    }
    async fn list(&self, prefix: &str) -> sluice_core::Result<Vec<String>> {
        self.0.list(prefix).await
    }
}

/// One test's world: a bucket, a Glue database of its own, and a container's cache.
struct World {
    aws: Aws,
    bucket: String,
    cfg: PipelineConfig,
    zones: Zones,
    store: RangesOnly,
    catalog: GlueCatalog,
    cache: CatalogCache,
}

impl World {
    async fn new() -> World {
        Self::with_config(demo_config()).await
    }

    async fn with_config(mut cfg: PipelineConfig) -> World {
        let aws = Aws::local().await;
        let bucket = aws.bucket().await;
        cfg.catalog.database = unique("sluice_db").replace('-', "_");
        World {
            store: RangesOnly(S3Store::new(aws.s3.clone(), &bucket)),
            catalog: GlueCatalog::new(aws.glue.clone()),
            cache: CatalogCache::new(),
            zones: Zones::default(),
            cfg,
            bucket,
            aws,
        }
    }

    fn db(&self) -> &str {
        &self.cfg.catalog.database
    }

    /// A cold container: same catalog, empty cache.
    fn cold(&mut self) {
        self.cache = CatalogCache::new();
    }

    async fn run(&self, event: Value) -> Result<Outcome, CatalogError> {
        let input: S3Input = serde_json::from_value(event).expect("S3 input");
        let ctx = Handler {
            cfg: &self.cfg,
            zones: &self.zones,
            store: &self.store,
            catalog: &self.catalog,
            cache: &self.cache,
            retry: RetryPolicy::default(),
        };
        handle(&ctx, input).await
    }

    /// Writes `dataset`'s Parquet as s3-transform writes it and returns the notification for it.
    async fn put_curated(&self, key: &str, dataset: &str) -> Value {
        let body = curated_parquet(&self.cfg, dataset);
        let size = body.len();
        self.aws.put(&self.bucket, key, body).await;
        event_for(&self.bucket, key, size)
    }

    /// Writes a Parquet object in another shape and returns the notification for it.
    async fn put_parquet(&self, key: &str, fields: &[(&str, DataType)]) -> Value {
        let body = parquet_bytes(fields);
        let size = body.len();
        self.aws.put(&self.bucket, key, body).await;
        event_for(&self.bucket, key, size)
    }

    async fn table(&self, name: &str) -> Table {
        self.aws
            .glue
            .get_table()
            .database_name(self.db())
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get table {name}: {e:?}"))
            .table
            .expect("table")
    }

    async fn versions(&self, name: &str) -> usize {
        self.aws
            .glue
            .get_table_versions()
            .database_name(self.db())
            .table_name(name)
            .send()
            .await
            .expect("table versions")
            .table_versions()
            .len()
    }

    /// `(values, location)` of every partition of a table.
    async fn partitions(&self, name: &str) -> BTreeSet<(Vec<String>, String)> {
        let mut out = BTreeSet::new();
        let mut pages = self
            .aws
            .glue
            .get_partitions()
            .database_name(self.db())
            .table_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for p in page.expect("get partitions").partitions() {
                let loc = p
                    .storage_descriptor()
                    .and_then(|s| s.location())
                    .unwrap_or_default()
                    .to_string();
                out.insert((p.values().to_vec(), loc));
            }
        }
        out
    }
}

/// The committed sample `glue-curated.json`, pointed at another bucket/key/size.
fn event_for(bucket: &str, key: &str, size: usize) -> Value {
    retarget(sample("glue-curated.json"), bucket, Some(key), Some(size))
}

fn retarget(mut v: Value, bucket: &str, key: Option<&str>, size: Option<usize>) -> Value {
    for r in v["Records"].as_array_mut().expect("records") {
        r["s3"]["bucket"]["name"] = bucket.into();
        r["s3"]["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
        if let Some(k) = key {
            r["s3"]["object"]["key"] = s3_event_key(k).into();
        }
        if let Some(s) = size {
            r["s3"]["object"]["size"] = s.into();
        }
    }
    v
}

/// Several notifications in one event (S3 sends one per event; the handler takes any number).
fn merge(events: Vec<Value>) -> Value {
    let records: Vec<Value> = events
        .into_iter()
        .flat_map(|e| e["Records"].as_array().cloned().unwrap_or_default())
        .collect();
    serde_json::json!({ "Records": records })
}

/// Three rows of a Parquet file with these columns.
fn parquet_bytes(fields: &[(&str, DataType)]) -> Vec<u8> {
    const N: usize = 3;
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), !n.starts_with("_sluice")))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = fields
        .iter()
        .map(|(n, t)| -> ArrayRef {
            match t {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    (0..N).map(|i| format!("{n}-{i}")),
                )),
                DataType::Int64 => Arc::new(Int64Array::from_iter_values(0..N as i64)),
                DataType::Int32 => Arc::new(Int32Array::from_iter_values(0..N as i32)),
                DataType::Float64 => Arc::new(Float64Array::from_iter_values(
                    (0..N).map(|i| i as f64 * 1.5),
                )),
                DataType::Float32 => Arc::new(Float32Array::from_iter_values(
                    (0..N).map(|i| i as f32 * 1.5),
                )),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![true, false, true])),
                DataType::Date32 => {
                    Arc::new(Date32Array::from_iter_values(20_414..20_414 + N as i32))
                }
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        (0..N as i64).map(|i| 1_763_802_000_000_000 + i),
                    )
                    .with_timezone("UTC"),
                ),
                other => panic!("no generator for {other}"),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

/// Columns of the page_views table (the demo config's eight fields and two sluice columns).
const PAGE_VIEWS_COLUMNS: usize = 10;

fn columns(t: &Table) -> Vec<(String, String)> {
    t.storage_descriptor()
        .map(|s| s.columns())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.r#type().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn param<'a>(t: &'a Table, k: &str) -> Option<&'a str> {
    t.parameters().and_then(|p| p.get(k)).map(String::as_str)
}

#[tokio::test]
async fn curated_object_creates_table_with_parquet_serde_and_partition() {
    let w = World::new().await;
    let key = curated_key("page_views", "2025-11-22", "09", STEM);
    let body = curated_parquet(&w.cfg, "page_views");
    let size = body.len();
    w.aws.put(&w.bucket, &key, body).await;
    // The committed sample, in the test's bucket and with the object's real size.
    let event = retarget(sample("glue-curated.json"), &w.bucket, None, Some(size));

    let started = Instant::now();
    let out = w.run(event).await.expect("catalogued");
    let cold = started.elapsed();
    assert_eq!(out.objects.len(), 1);
    assert!(out.objects[0].table_created);
    assert_eq!(out.partitions_created, 1);

    let t = w.table("page_views").await;
    let sd = t.storage_descriptor().expect("storage descriptor");
    assert_eq!(
        sd.location(),
        Some(format!("s3://{}/curated/page_views/", w.bucket).as_str())
    );
    assert_eq!(
        sd.input_format(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
    );
    assert_eq!(
        sd.output_format(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
    );
    assert_eq!(
        sd.serde_info().and_then(|s| s.serialization_library()),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    assert_eq!(
        columns(&t),
        pairs(&[
            ("event_id", "string"),
            ("ts", "timestamp"),
            ("session_id", "string"),
            ("user_id", "string"),
            ("url", "string"),
            ("referrer", "string"),
            ("duration_ms", "bigint"),
            ("ip", "string"),
            ("_sluice_key", "string"),
            ("_sluice_source", "string"),
        ])
    );
    let keys: Vec<(String, String)> = t
        .partition_keys()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.r#type().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(keys, pairs(&[("dt", "string"), ("hr", "string")]));
    assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
    assert_eq!(param(&t, "classification"), Some("parquet"));
    assert_eq!(param(&t, "EXTERNAL"), Some("TRUE"));
    assert_eq!(param(&t, "projection.enabled"), Some("false"));

    let parts = w.partitions("page_views").await;
    assert_eq!(
        parts,
        BTreeSet::from([(
            vec!["2025-11-22".to_string(), "09".to_string()],
            format!("s3://{}/curated/page_views/dt=2025-11-22/hr=09/", w.bucket)
        )])
    );
    // The partition inherits the table's storage descriptor.
    let p = w
        .aws
        .glue
        .get_partition()
        .database_name(w.db())
        .table_name("page_views")
        .set_partition_values(Some(vec!["2025-11-22".into(), "09".into()]))
        .send()
        .await
        .expect("get partition")
        .partition
        .expect("partition");
    let psd = p.storage_descriptor().expect("partition storage");
    assert_eq!(psd.input_format(), sd.input_format());
    assert_eq!(
        psd.serde_info().and_then(|s| s.serialization_library()),
        sd.serde_info().and_then(|s| s.serialization_library())
    );
    assert_eq!(psd.columns().len(), sd.columns().len());

    // A new partition of the same table, warm container: one footer read + one partition call.
    let e2 = w
        .put_curated(
            &curated_key("page_views", "2025-11-22", "10", "b"),
            "page_views",
        )
        .await;
    let started = Instant::now();
    let out2 = w.run(e2).await.expect("second partition");
    let warm = started.elapsed();
    assert_eq!(out2.partitions_created, 1);
    // Another new table + partition, cold container, moto already warm.
    let mut w = w;
    w.cold();
    let e3 = w
        .put_parquet(
            &curated_key("signups", "2025-11-22", "09", "c"),
            &[("event_id", DataType::Utf8)],
        )
        .await;
    let started = Instant::now();
    let out3 = w.run(e3).await.expect("another table");
    let cold_again = started.elapsed();
    assert!(out3.objects[0].table_created);
    assert_eq!(out3.partitions_created, 1);
    println!(
        "glue-catalog registration latency against moto: new table + partition {:.1} ms (first \
         Glue call of the process), {:.1} ms (cold container, moto warm); new partition of a \
         known table {:.1} ms (warm container)",
        cold.as_secs_f64() * 1000.0,
        cold_again.as_secs_f64() * 1000.0,
        warm.as_secs_f64() * 1000.0
    );
}

#[tokio::test]
async fn second_object_in_the_same_partition_adds_nothing() {
    let mut w = World::new().await;
    let first = w
        .put_curated(
            &curated_key("page_views", "2025-11-22", "09", "a"),
            "page_views",
        )
        .await;
    w.run(first).await.expect("first");
    let table_before = w.table("page_views").await;
    assert_eq!(w.versions("page_views").await, 1);

    let second = w
        .put_curated(
            &curated_key("page_views", "2025-11-22", "09", "b"),
            "page_views",
        )
        .await;
    let out = w.run(second.clone()).await.expect("second");
    assert_eq!(out.partitions_created, 0);
    assert_eq!(
        out.partitions_cached, 1,
        "the container already knows the partition"
    );
    assert!(!out.objects[0].table_created);
    assert!(out.objects[0].columns_added.is_empty());

    // A cold container sees the partition as AlreadyExists, which is success.
    w.cold();
    let out = w.run(second).await.expect("replayed in a new container");
    assert_eq!(out.partitions_created, 0);
    assert_eq!(out.partitions_existing, 1);
    assert_eq!(w.versions("page_views").await, 1, "no table update");
    let table_after = w.table("page_views").await;
    assert_eq!(columns(&table_after), columns(&table_before));
    assert_eq!(table_after.version_id(), table_before.version_id());
    assert_eq!(w.partitions("page_views").await.len(), 1);
}

#[tokio::test]
async fn new_column_is_appended_and_types_widened_in_place() {
    let w = World::new().await;
    let v1 = [
        ("order_id", DataType::Utf8),
        ("items", DataType::Int32),
        ("amount", DataType::Float32),
    ];
    let e1 = w
        .put_parquet(&curated_key("purchases", "2025-11-22", "08", "a"), &v1)
        .await;
    w.run(e1).await.expect("v1");
    assert_eq!(
        columns(&w.table("purchases").await),
        pairs(&[
            ("order_id", "string"),
            ("items", "int"),
            ("amount", "float")
        ])
    );

    // The new column comes first in the file: it is still appended after the existing ones.
    let v2 = [
        ("coupon", DataType::Utf8),
        ("order_id", DataType::Utf8),
        ("items", DataType::Int64),
        ("amount", DataType::Float64),
    ];
    let e2 = w
        .put_parquet(&curated_key("purchases", "2025-11-22", "09", "b"), &v2)
        .await;
    let out = w.run(e2).await.expect("v2");
    assert_eq!(out.objects[0].columns_added, vec!["coupon"]);
    assert_eq!(
        out.objects[0].columns_widened,
        vec!["items:int->bigint", "amount:float->double"]
    );
    let t = w.table("purchases").await;
    assert_eq!(
        columns(&t),
        pairs(&[
            ("order_id", "string"),
            ("items", "bigint"),
            ("amount", "double"),
            ("coupon", "string"),
        ])
    );
    assert_eq!(w.versions("purchases").await, 2);
    // Everything else about the table is kept.
    assert_eq!(param(&t, "classification"), Some("parquet"));
    assert_eq!(t.partition_keys().len(), 2);

    // An old-shaped file (narrower types, fewer columns) changes nothing.
    let e3 = w
        .put_parquet(&curated_key("purchases", "2025-11-22", "10", "c"), &v1)
        .await;
    let out = w.run(e3).await.expect("v1 again");
    assert!(out.objects[0].columns_added.is_empty() && out.objects[0].columns_widened.is_empty());
    assert_eq!(w.versions("purchases").await, 2);
    assert_eq!(w.partitions("purchases").await.len(), 3);
}

#[tokio::test]
async fn conflicting_type_leaves_the_table_unchanged_with_a_clear_error() {
    let mut w = World::new().await;
    let e1 = w
        .put_parquet(
            &curated_key("purchases", "2025-11-22", "08", "a"),
            &[("order_id", DataType::Utf8), ("amount", DataType::Float64)],
        )
        .await;
    w.run(e1).await.expect("v1");
    let before = w.table("purchases").await;

    let bad_key = curated_key("purchases", "2025-11-22", "09", "bad");
    let e2 = w
        .put_parquet(
            &bad_key,
            &[
                ("order_id", DataType::Utf8),
                ("amount", DataType::Utf8),
                ("coupon", DataType::Utf8),
            ],
        )
        .await;
    w.cold();
    let err = w
        .run(e2)
        .await
        .expect_err("incompatible change fails the invocation");
    assert!(!err.is_retryable());
    assert_eq!(err.kind(), "incompatible_schema");
    let msg = err.to_string();
    for part in [
        format!("{}.purchases", w.db()),
        "\"amount\"".to_string(),
        "double".to_string(),
        "string".to_string(),
        bad_key.clone(),
    ] {
        assert!(msg.contains(&part), "{msg:?} names {part:?}");
    }
    let after = w.table("purchases").await;
    assert_eq!(columns(&after), columns(&before));
    assert_eq!(after.version_id(), before.version_id());
    assert_eq!(w.versions("purchases").await, 1);
    // Its partition is not registered either.
    let parts = w.partitions("purchases").await;
    assert_eq!(parts.len(), 1);
    assert!(parts.iter().all(|(v, _)| v[1] == "08"));
}

#[tokio::test]
async fn partitions_listed_by_get_partitions_match_the_objects_written() {
    let w = World::new().await;
    let fields = [("order_id", DataType::Utf8), ("amount", DataType::Float64)];
    // 105 hours over five days (more than one BatchCreatePartition call), plus duplicates.
    let mut keys = Vec::new();
    for i in 0..105usize {
        let dt = format!("2025-11-{:02}", 18 + i / 24);
        let hr = format!("{:02}", i % 24);
        keys.push(curated_key("purchases", &dt, &hr, &format!("obj-{i}")));
    }
    keys.push(curated_key("purchases", "2025-11-18", "00", "dup-1"));
    keys.push(curated_key("purchases", "2025-11-22", "08", "dup-2"));
    let mut events = Vec::new();
    for k in &keys {
        events.push(w.put_parquet(k, &fields).await);
    }
    let out = w.run(merge(events)).await.expect("catalogued");
    assert_eq!(out.objects.len(), keys.len());
    assert_eq!(out.partitions_created, 105);

    let expected: BTreeSet<(Vec<String>, String)> = keys
        .iter()
        .map(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            let dt = parts[2].trim_start_matches("dt=").to_string();
            let hr = parts[3].trim_start_matches("hr=").to_string();
            let loc = format!("s3://{}/curated/purchases/dt={dt}/hr={hr}/", w.bucket);
            (vec![dt, hr], loc)
        })
        .collect();
    assert_eq!(expected.len(), 105);
    assert_eq!(w.partitions("purchases").await, expected);

    // A filtered listing agrees too.
    let filtered = w
        .aws
        .glue
        .get_partitions()
        .database_name(w.db())
        .table_name("purchases")
        .expression("dt = '2025-11-22'")
        .send()
        .await
        .expect("filtered partitions");
    assert_eq!(filtered.partitions().len(), 9, "hours 00-08 of the 22nd");
}

#[tokio::test]
async fn raw_object_creates_the_json_table_from_the_config() {
    let w = World::new().await;
    let key = format!("raw/page_views/dt=2025-11-22/hr=09/{STEM}.json.gz");
    w.aws
        .put(&w.bucket, &key, b"not read by glue-catalog".to_vec())
        .await;
    let event = retarget(sample("glue-raw.json"), &w.bucket, None, None);
    let out = w.run(event).await.expect("catalogued");
    assert_eq!(out.objects[0].table, "page_views_raw");
    let t = w.table("page_views_raw").await;
    let sd = t.storage_descriptor().expect("sd");
    assert_eq!(
        sd.location(),
        Some(format!("s3://{}/raw/page_views/", w.bucket).as_str())
    );
    assert_eq!(
        sd.serde_info().and_then(|s| s.serialization_library()),
        Some("org.openx.data.jsonserde.JsonSerDe")
    );
    assert_eq!(
        sd.input_format(),
        Some("org.apache.hadoop.mapred.TextInputFormat")
    );
    assert_eq!(param(&t, "classification"), Some("json"));
    assert_eq!(param(&t, "compressionType"), Some("gzip"));
    assert_eq!(
        columns(&t),
        pairs(&[
            (
                "_sluice",
                "struct<shard:string,seq:string,sub:int,pk:string,arrival:string>"
            ),
            ("event_id", "string"),
            ("ts", "string"),
            ("session_id", "string"),
            ("user_id", "string"),
            ("url", "string"),
            ("referrer", "string"),
            ("duration_ms", "bigint"),
            ("ip", "string"),
        ])
    );
    assert_eq!(
        w.partitions("page_views_raw").await,
        BTreeSet::from([(
            vec!["2025-11-22".to_string(), "09".to_string()],
            format!("s3://{}/raw/page_views/dt=2025-11-22/hr=09/", w.bucket)
        )])
    );
}

#[tokio::test]
async fn test_events_and_foreign_objects_are_skipped_without_touching_glue() {
    let w = World::new().await;
    let out = w
        .run(sample("glue-test-event.json"))
        .await
        .expect("test event is skipped");
    assert_eq!(out.skipped.get("test_event"), Some(&1));

    let mut delete = retarget(sample("glue-curated.json"), &w.bucket, None, None);
    delete["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
    let others = merge(vec![
        delete,
        retarget(sample("glue-curated.json"), "another-bucket", None, None),
        event_for(
            &w.bucket,
            "quarantine/page_views/dt=2025-11-22/hr=09/a.json.gz",
            10,
        ),
        event_for(
            &w.bucket,
            "curated/page_views/dt=2025-11-22/hr=09/_SUCCESS",
            0,
        ),
        event_for(&w.bucket, "curated/page_views/latest.parquet", 10),
        event_for(
            &w.bucket,
            "curated/page_views/dt=2025-11-22/hr=09/gone.parquet",
            100,
        ),
    ]);
    let out = w.run(others).await.expect("all skipped");
    assert!(out.objects.is_empty());
    let skipped: Vec<(&str, usize)> = out.skipped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        skipped,
        vec![
            ("not_a_create", 1),
            ("not_found", 1),
            ("not_in_layout", 1),
            ("other_bucket", 1),
            ("other_format", 1),
            ("outside_prefix", 1),
        ]
    );
    let db = w.aws.glue.get_database().name(w.db()).send().await;
    assert!(db.is_err(), "nothing was catalogued, not even the database");
}

#[tokio::test]
async fn unknown_dataset_fails_with_its_name() {
    let w = World::new().await;
    let key = curated_key("inventory", "2025-11-22", "09", "a");
    let e = w.put_parquet(&key, &[("sku", DataType::Utf8)]).await;
    let err = w.run(e).await.expect_err("unknown dataset");
    assert_eq!(err.kind(), "unknown_dataset");
    assert!(err.to_string().contains("\"inventory\""), "{err}");
}

#[tokio::test]
async fn partition_projection_writes_properties_instead_of_partitions() {
    let mut cfg = demo_config();
    cfg.catalog.partition_projection = true;
    let w = World::with_config(cfg).await;
    let e = w
        .put_curated(
            &curated_key("page_views", "2025-11-22", "09", "a"),
            "page_views",
        )
        .await;
    let out = w.run(e).await.expect("catalogued");
    assert_eq!(out.partitions_projected, 1);
    assert_eq!(out.partitions_created, 0);
    let t = w.table("page_views").await;
    assert_eq!(param(&t, "projection.enabled"), Some("true"));
    assert_eq!(param(&t, "projection.dt.type"), Some("date"));
    assert_eq!(param(&t, "projection.dt.format"), Some("yyyy-MM-dd"));
    assert_eq!(
        param(&t, "projection.dt.range"),
        Some("2000-01-01,NOW+1DAYS")
    );
    assert_eq!(param(&t, "projection.hr.type"), Some("integer"));
    assert_eq!(param(&t, "projection.hr.range"), Some("0,23"));
    assert_eq!(param(&t, "projection.hr.digits"), Some("2"));
    let template = format!(
        "s3://{}/curated/page_views/dt=${{dt}}/hr=${{hr}}/",
        w.bucket
    );
    assert_eq!(
        param(&t, "storage.location.template"),
        Some(template.as_str())
    );
    assert!(w.partitions("page_views").await.is_empty());
}

#[tokio::test]
async fn turning_projection_on_updates_an_existing_table() {
    let mut w = World::new().await;
    let e = w
        .put_curated(
            &curated_key("page_views", "2025-11-22", "09", "a"),
            "page_views",
        )
        .await;
    w.run(e.clone()).await.expect("registered");
    w.cfg.catalog.partition_projection = true;
    w.cold();
    w.run(e).await.expect("projection on");
    let t = w.table("page_views").await;
    assert_eq!(param(&t, "projection.enabled"), Some("true"));
    assert_eq!(w.versions("page_views").await, 2);
    assert_eq!(columns(&t).len(), PAGE_VIEWS_COLUMNS);
}

#[tokio::test]
async fn a_stale_size_in_the_notification_falls_back_to_the_real_size() {
    let w = World::new().await;
    let key = curated_key("page_views", "2025-11-22", "09", STEM);
    w.aws
        .put(&w.bucket, &key, curated_parquet(&w.cfg, "page_views"))
        .await;
    // The sample's own size (3187) is not this object's.
    for size in [Some(3187), Some(40)] {
        let event = retarget(sample("glue-curated.json"), &w.bucket, None, size);
        w.run(event)
            .await
            .expect("catalogued despite the stale size");
    }
    assert_eq!(
        columns(&w.table("page_views").await).len(),
        PAGE_VIEWS_COLUMNS
    );
}
