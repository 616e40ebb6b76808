//! The whole pipeline on the local stack, driven the way AWS drives it: the demo and its test.
//!
//! Kinesis batches go to kinesis-ingest from every shard (batch item failures retried from the
//! lowest sequence number); the local S3 API delivers real ObjectCreated notifications to SQS
//! queues (`raw/` and `curated/`), whose message bodies are handed to s3-transform and
//! glue-catalog exactly as received; an invocation that still fails after Lambda's two async
//! retries becomes an on-failure record for failure-notifier, which archives it and alerts
//! through SNS. A final drill drops a curated file whose column type conflicts with the Glue
//! table, so the failure path runs end to end every time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use s3_transform::event::S3Input;
use serde_json::Value;
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{curated_key, Partition};

use crate::clickstream::generate;
use crate::events::{async_failure_json, sqs_event_json, SqsMessage};
use crate::invoke::invoke_async;
use crate::progress::Progress;
pub use crate::setup::Options;
use crate::setup::{
    put_records, queue_arn, setup, ACCOUNT, ALERT_QUEUE, ALERT_TOPIC, BUCKET, CURATED_QUEUE,
    FAILURE_QUEUE, RAW_QUEUE, STREAM,
};
use crate::summary::{count_ingest_quarantine, glue_tables, zone};
pub use crate::summary::{Summary, TableSummary, ZoneSummary};
use crate::{Aws, Pg};

const PUT_RECORDS_MAX: usize = 500;
/// The demo producers' API key for http-collector.
const DEMO_API_KEY: &str = "sluice-demo-api-key-000000";

/// The drill's deliberately conflicting curated file (its `amount` is a string), in the
/// partition of 2023-11-14T22.
fn drill_key(zones: &Zones) -> String {
    curated_key(
        &zones.curated,
        "purchases",
        &Partition::of_hour(472_222),
        "drill",
    )
}
/// Purchases compared by value in every run.
const VALUE_SAMPLE: usize = 200;

fn bar(opts: &Options, len: u64, what: &str) -> Progress {
    Progress::new(opts.progress, len, what)
}

/// Runs the pipeline on the local stack (moto must be reachable through `aws`, `pg` running).
pub async fn run(aws: &Aws, pg: &Pg, cfg: &PipelineConfig, opts: &Options) -> Result<Summary> {
    let started = Instant::now();
    let mut sum = Summary {
        produced: opts.events,
        ..Summary::default()
    };
    let zones = Zones::default();
    setup(aws, cfg, opts).await?;

    // Producers.
    let now = chrono::Utc::now().timestamp();
    let events = generate(opts.events, now, opts.bad_per_mille, opts.seed);
    sum.produced_valid = events.iter().filter(|e| e.valid).count();
    // In every chunk, the well-formed events of the first fifth go through http-collector
    // over real HTTP (gzip NDJSON), as apps and partners send them; the rest, the malformed
    // events included, are put with PutRecords by SDK producers.
    let secret = crate::collector::create_keys_secret(
        aws,
        &crate::unique("sluice-demo-keys"),
        &serde_json::json!({ "api_key": DEMO_API_KEY }),
    )
    .await?;
    let api = crate::collector::serve(
        crate::collector::handler(
            aws,
            crate::collector::local_config(STREAM, &secret, Some("user_id")),
        )
        .await?,
    )
    .await?;
    let pb = bar(opts, events.len() as u64, "PutRecords / HTTP");
    for chunk in events.chunks(PUT_RECORDS_MAX) {
        let fifth = chunk.len().div_ceil(5);
        let (http, sdk): (Vec<_>, Vec<_>) = chunk
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, e)| *i < fifth && e.valid);
        let http: Vec<_> = http.into_iter().map(|(_, e)| e).collect();
        let sdk: Vec<_> = sdk.into_iter().map(|(_, e)| e).collect();
        if !http.is_empty() {
            let mut body = Vec::new();
            for e in &http {
                body.extend_from_slice(&e.data);
                body.push(b'\n');
            }
            let gz = sluice_core::ndjson::gzip(&body, 6)?;
            let headers = [
                ("x-api-key", DEMO_API_KEY),
                ("content-type", "application/x-ndjson"),
                ("content-encoding", "gzip"),
            ];
            let r = crate::collector::post(api.addr, "/v1/events", &headers, gz).await?;
            let want = serde_json::json!({ "accepted": http.len() });
            if r.status != 200 || r.json() != want {
                bail!(
                    "http-collector answered {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
            }
            sum.via_http += http.len();
        }
        if !sdk.is_empty() {
            put_records(aws, &sdk).await?;
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish();
    drop(api);

    // kinesis-ingest, from every shard.
    let store = S3Store::new(aws.s3.clone(), BUCKET);
    let ingest = kinesis_ingest::Handler {
        cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 8,
    };
    let pb = bar(opts, events.len() as u64, "kinesis-ingest");
    let t = Instant::now();
    let stats = crate::stream::drain(&aws.kinesis, STREAM, opts.batch_size, 5, |event| {
        let n = event.records.len() as u64;
        let pb = pb.clone();
        let ingest = &ingest;
        async move {
            let r = kinesis_ingest::handle(ingest, event)
                .await
                .map_err(anyhow::Error::from);
            pb.inc(n);
            r
        }
    })
    .await?;
    pb.finish();
    sum.ingest_secs = t.elapsed().as_secs_f64();
    sum.ingest_batches = stats.batches;
    sum.ingest_retries = stats.retries;

    // s3-transform, from the raw/ notification queue.
    let mut dbcfg: tokio_postgres::Config = pg.url.parse().context("postgres url")?;
    dbcfg.application_name("sluice-demo");
    let warehouse = s3_transform::warehouse::Postgres::new(dbcfg, None, &cfg.warehouse.schema);
    let hash_key = s3_transform::pii::HashKey::new(b"sluice-demo-hmac-key-0001".to_vec())
        .context("hmac key")?;
    let transform = s3_transform::Handler {
        cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: s3_transform::input::Limits::default(),
        hash_key: Some(&hash_key),
    };
    let raw_objects = aws.keys(BUCKET, &zones.raw).await.len();
    let pb = bar(opts, raw_objects as u64, "s3-transform");
    drain_queue(
        aws,
        RAW_QUEUE,
        "s3-transform",
        &mut sum.notifications_skipped,
        |body| {
            let transform = &transform;
            let pb = pb.clone();
            async move {
                let input: S3Input = serde_json::from_str(&body)
                    .map_err(|e| ("parse".to_string(), e.to_string()))?;
                let out = s3_transform::handle(transform, input).await;
                if let Ok(o) = &out {
                    pb.inc(o.objects.len() as u64);
                }
                out.map(|o| Invocation::Transform(Box::new(o)))
                    .map_err(|e| (e.kind().to_string(), e.to_string()))
            }
        },
        &mut |inv| {
            if let Invocation::Transform(o) = inv {
                for obj in &o.objects {
                    sum.curated_rows += obj.rows;
                    sum.transform_rejected += obj.rejected;
                    sum.transform_duplicates += obj.duplicates;
                    for (name, n) in &obj.filtered {
                        *sum.transform_filtered.entry(name.clone()).or_default() += n;
                    }
                }
            }
        },
    )
    .await?;
    pb.finish();

    // glue-catalog, from the curated/ notification queue.
    let catalog = glue_catalog::GlueCatalog::new(aws.glue.clone());
    let cache = glue_catalog::CatalogCache::new();
    let glue = glue_catalog::Handler {
        cfg,
        zones: &zones,
        store: &store,
        catalog: &catalog,
        cache: &cache,
        retry: glue_catalog::RetryPolicy::default(),
    };
    let curated_objects = aws.keys(BUCKET, &zones.curated).await.len();
    let pb = bar(opts, curated_objects as u64, "glue-catalog");
    catalog_queue(aws, &glue, &pb, &mut sum).await?;
    pb.finish();

    // The drill: a curated file whose `amount` is a string conflicts with the Glue table.
    drill(aws, cfg, &zones).await?;
    catalog_queue(aws, &glue, &Progress::Hidden, &mut sum).await?;

    // failure-notifier, from the on-failure queue.
    let reader = failure_notifier::kinesis::KinesisReader::new(aws.kinesis.clone());
    let topic_arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:{ALERT_TOPIC}");
    let alerter = failure_notifier::sns::SnsAlerter::new(aws.sns.clone(), topic_arn);
    let notifier = failure_notifier::Handler {
        zones: &zones,
        store: &store,
        reader: &reader,
        alerter: &alerter,
    };
    sum.failures_archived = notify_failures(aws, &notifier).await?;
    sum.dead_letters = aws.keys(BUCKET, &zones.dead_letter).await;
    sum.alerts_received = count_messages(aws, ALERT_QUEUE).await?;

    // What landed.
    sum.raw = zone(aws, BUCKET, &zones.raw, true).await;
    sum.quarantine = zone(aws, BUCKET, &zones.quarantine, true).await;
    sum.quarantine_ingest = count_ingest_quarantine(aws, BUCKET, &zones.quarantine).await;
    sum.curated = zone(aws, BUCKET, &zones.curated, false).await;
    sum.curated.records = sum.curated_rows;
    let client = pg.client().await?;
    for ds in &cfg.datasets {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\".\"{}\"",
                    cfg.warehouse.schema, ds.name
                ),
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        sum.pg_rows.insert(ds.name.clone(), n);
    }
    // From the declared rollup (`purchases.per_hour` in pipeline.toml), summed over currencies.
    for r in client
        .query(
            &format!(
                "SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00'), sum(orders)::int8, sum(revenue)::float8 \
                 FROM \"{}\".purchases_per_hour GROUP BY bucket ORDER BY bucket",
                cfg.warehouse.schema
            ),
            &[],
        )
        .await
        .unwrap_or_default()
    {
        sum.purchases_per_hour.push((r.get(0), r.get(1), r.get(2)));
    }
    sum.rollup_mismatches =
        crate::values::purchases_rollup_mismatches(&client, &cfg.warehouse.schema).await?;
    let sent: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.valid)
        .filter_map(|e| serde_json::from_slice::<serde_json::Value>(&e.data).ok())
        .filter(|v| v["type"] == "purchase")
        .collect();
    sum.values = crate::values::check_purchases(
        aws,
        BUCKET,
        &format!("{}purchases/", zones.curated),
        &[drill_key(&zones).as_str()],
        pg,
        &cfg.warehouse.schema,
        &sent,
        VALUE_SAMPLE,
    )
    .await?;
    sum.tables = glue_tables(aws, &cfg.catalog.database).await?;
    sum.total_secs = started.elapsed().as_secs_f64();
    Ok(sum)
}

/// What one successful invocation returned.
enum Invocation {
    Transform(Box<s3_transform::handler::Outcome>),
    Catalog(Box<glue_catalog::Outcome>),
}

async fn queue_url(aws: &Aws, name: &str) -> Result<String> {
    Ok(aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("queue {name}"))?
        .queue_url()
        .unwrap_or_default()
        .to_string())
}

/// Delivers every message of `queue` to `invoke` as an asynchronous Lambda invocation would:
/// up to three attempts, then an on-failure record to the failure queue.
async fn drain_queue<F, Fut>(
    aws: &Aws,
    queue: &str,
    function: &str,
    skipped: &mut BTreeMap<String, usize>,
    invoke: F,
    on_success: &mut dyn FnMut(&Invocation),
) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Invocation, (String, String)>>,
{
    let url = queue_url(aws, queue).await?;
    let failure_url = queue_url(aws, FAILURE_QUEUE).await?;
    let mut empty = 0;
    while empty < 2 {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(if empty == 0 { 0 } else { 1 })
            .send()
            .await?;
        let msgs = out.messages();
        if msgs.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for m in msgs {
            let body = m.body().unwrap_or_default().to_string();
            let invoked = invoke_async(Duration::ZERO, || invoke(body.clone())).await;
            let last_err = match invoked.result {
                Ok(inv) => {
                    if let Invocation::Transform(o) = &inv {
                        for (k, v) in &o.skipped {
                            *skipped.entry(k.clone()).or_default() += v;
                        }
                    }
                    if let Invocation::Catalog(o) = &inv {
                        for (k, v) in &o.skipped {
                            *skipped.entry(k.clone()).or_default() += v;
                        }
                    }
                    on_success(&inv);
                    None
                }
                Err(e) => Some(e),
            };
            if let Some((kind, message)) = last_err {
                let payload: Value =
                    serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
                let record = async_failure_json(
                    function,
                    m.message_id().unwrap_or("unknown"),
                    &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    &payload,
                    &kind,
                    &message,
                );
                aws.sqs
                    .send_message()
                    .queue_url(&failure_url)
                    .message_body(record.to_string())
                    .send()
                    .await?;
            }
            if let Some(h) = m.receipt_handle() {
                aws.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(h)
                    .send()
                    .await?;
            }
        }
    }
    Ok(())
}

async fn catalog_queue(
    aws: &Aws,
    glue: &glue_catalog::Handler<'_>,
    pb: &Progress,
    sum: &mut Summary,
) -> Result<()> {
    let mut skipped = std::mem::take(&mut sum.notifications_skipped);
    drain_queue(
        aws,
        CURATED_QUEUE,
        "glue-catalog",
        &mut skipped,
        |body| {
            let pb = pb.clone();
            async move {
                let input: glue_catalog::event::S3Input = serde_json::from_str(&body)
                    .map_err(|e| ("parse".to_string(), e.to_string()))?;
                let out = glue_catalog::handle(glue, input).await;
                if let Ok(o) = &out {
                    pb.inc(o.objects.len() as u64);
                }
                out.map(|o| Invocation::Catalog(Box::new(o)))
                    .map_err(|e| ("catalog".to_string(), e.to_string()))
            }
        },
        &mut |_| {},
    )
    .await?;
    sum.notifications_skipped = skipped;
    Ok(())
}

async fn drill(aws: &Aws, cfg: &PipelineConfig, zones: &Zones) -> Result<()> {
    let Some(ds) = cfg.dataset("purchases") else {
        return Ok(());
    };
    let mut cols = s3_transform::transform::columns(ds);
    for c in &mut cols {
        if c.name == "amount" {
            c.ty = sluice_core::config::FieldType::String;
        }
    }
    let row = s3_transform::transform::Row {
        key: "drill-1".into(),
        version: s3_transform::transform::version(1_700_000_000_000_000, None, "", 1),
        event_micros: 1_700_000_000_000_000,
        values: cols
            .iter()
            .map(|c| match c.name.as_str() {
                "amount" => sluice_core::schema::Typed::Str("twelve euros".into()),
                "ts" => sluice_core::schema::Typed::Timestamp(1_700_000_000_000_000),
                _ if c.nullable => sluice_core::schema::Typed::Null,
                _ => sluice_core::schema::Typed::Str("drill".into()),
            })
            .collect(),
    };
    let bytes =
        s3_transform::parquet_out::encode(&cols, &[row], "drill").map_err(anyhow::Error::msg)?;
    aws.put(BUCKET, &drill_key(zones), bytes).await;
    Ok(())
}

async fn notify_failures(aws: &Aws, notifier: &failure_notifier::Handler<'_>) -> Result<usize> {
    let url = queue_url(aws, FAILURE_QUEUE).await?;
    let mut archived = 0;
    loop {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await?;
        if out.messages().is_empty() {
            return Ok(archived);
        }
        let msgs: Vec<SqsMessage> = out
            .messages()
            .iter()
            .map(|m| SqsMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
            })
            .collect();
        let event: failure_notifier::QueueBatch =
            serde_json::from_value(sqs_event_json(&queue_arn(FAILURE_QUEUE), &msgs))?;
        let resp = failure_notifier::handle(notifier, event)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let failed = resp.failed;
        for m in &msgs {
            if !failed.contains(&m.message_id) {
                archived += 1;
                aws.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(&m.receipt_handle)
                    .send()
                    .await?;
            }
        }
        if !failed.is_empty() {
            bail!(
                "failure-notifier could not archive {} message(s)",
                failed.len()
            );
        }
    }
}

async fn count_messages(aws: &Aws, queue: &str) -> Result<usize> {
    let url = queue_url(aws, queue).await?;
    let mut n = 0;
    for _ in 0..3 {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        n += out.messages().len();
        if n > 0 && out.messages().is_empty() {
            break;
        }
    }
    Ok(n)
}
