//! The EMF documents kinesis-ingest, s3-transform and glue-catalog print for real runs (moto,
//! PostgreSQL, Glue), checked against CloudWatch's embedded metric format specification and for
//! what on-call needs: every per-dataset metric carries a `dataset` dimension naming a
//! configured dataset, the freshness metrics are in milliseconds and as old as the data, totals
//! add up across documents, and no document carries a payload value. Its own test binary: the
//! EMF capture is process-wide.

use std::collections::BTreeSet;

use s3_transform::event::S3Input;
use s3_transform::input::Limits;
use s3_transform::pii::HashKey;
use s3_transform::warehouse::Postgres;
use serde_json::{json, Map, Value};
use sluice_core::aws::S3Store;
use sluice_core::env::Zones;
use sluice_core::lake::stream::StreamRecord;
use sluice_core::schema::format_micros;
use sluice_core::telemetry::{capture_emf, now_micros, take_emf};
use sluice_local::events::{kinesis_event, record, s3_event_json};
use sluice_local::{demo_config, shared_postgres, unique, Aws};

/// CloudWatch's units (`MetricDatum.Unit`), the only values EMF's `Unit` may take.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn only_members(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what} has a member the specification does not define: {k}"
        )),
        None => Ok(()),
    }
}

fn name_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && s.is_ascii()
}

/// One log line checked against the embedded metric format specification: a JSON object with
/// nothing around it, an `_aws` metadata object (integer `Timestamp` in ms, `CloudWatchMetrics`
/// directives), each directive with a valid namespace, dimension sets of at most 30 keys that
/// name string members, at most 100 metric definitions naming numeric members (at most 100
/// values each) with a CloudWatch unit, no extra members in the objects the specification
/// defines, and the whole event within CloudWatch Logs' 256 KiB.
fn check_emf(line: &str) -> Result<Map<String, Value>, String> {
    if line.len() > 256 * 1024 {
        return Err(format!("{} bytes: larger than a log event", line.len()));
    }
    let root: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not one JSON object: {e}"))?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws metadata object")?;
    only_members(
        aws,
        &["Timestamp", "CloudWatchMetrics", "LogGroupName"],
        "_aws",
    )?;
    let ts = aws
        .get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("Timestamp is not an integer")?;
    let now_ms = now_micros() / 1000;
    if (now_ms - ts).abs() > 3_600_000 {
        return Err(format!(
            "Timestamp {ts} is not milliseconds near now ({now_ms})"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("CloudWatchMetrics is not a non-empty array")?;
    for d in directives {
        let d = d.as_object().ok_or("a MetricDirective is not an object")?;
        only_members(
            d,
            &["Namespace", "Dimensions", "Metrics"],
            "MetricDirective",
        )?;
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("Namespace is not a string")?;
        if !name_ok(ns, 255)
            || !ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/#:".contains(c))
        {
            return Err(format!("invalid Namespace {ns:?}"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        let mut dimension_names = BTreeSet::new();
        for set in sets {
            let set = set.as_array().ok_or("a DimensionSet is not an array")?;
            if set.len() > 30 {
                return Err(format!(
                    "a DimensionSet has {} keys (at most 30)",
                    set.len()
                ));
            }
            for k in set {
                let k = k.as_str().ok_or("a dimension key is not a string")?;
                if !name_ok(k, 255) || k.starts_with(':') {
                    return Err(format!("invalid dimension name {k:?}"));
                }
                let v = root
                    .get(k)
                    .and_then(Value::as_str)
                    .ok_or(format!("dimension {k} names no string member"))?;
                if !name_ok(v, 1024) {
                    return Err(format!("invalid value for dimension {k}: {v:?}"));
                }
                dimension_names.insert(k.to_string());
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if metrics.len() > 100 {
            return Err(format!(
                "{} metric definitions (at most 100)",
                metrics.len()
            ));
        }
        for m in metrics {
            let m = m.as_object().ok_or("a MetricDefinition is not an object")?;
            only_members(
                m,
                &["Name", "Unit", "StorageResolution"],
                "MetricDefinition",
            )?;
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric Name is not a string")?;
            if !name_ok(name, 255) || dimension_names.contains(name) {
                return Err(format!("invalid metric name {name:?}"));
            }
            if let Some(u) = m.get("Unit") {
                let u = u.as_str().ok_or("a Unit is not a string")?;
                if !UNITS.contains(&u) {
                    return Err(format!("{name}: {u:?} is not a CloudWatch unit"));
                }
            }
            if let Some(r) = m.get("StorageResolution") {
                if r != 1 && r != 60 {
                    return Err(format!("{name}: StorageResolution {r}"));
                }
            }
            let values = match root.get(name) {
                Some(Value::Array(a)) if a.len() <= 100 => a.clone(),
                Some(v @ Value::Number(_)) => vec![v.clone()],
                _ => return Err(format!("metric {name} names no number member")),
            };
            if !values
                .iter()
                .all(|v| v.as_f64().is_some_and(f64::is_finite))
            {
                return Err(format!(
                    "metric {name} has a value that is not a finite number"
                ));
            }
        }
    }
    Ok(root)
}

fn unit_of(doc: &Map<String, Value>, metric: &str) -> Option<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()?
        .iter()
        .find(|m| m["Name"] == metric)
        .and_then(|m| m["Unit"].as_str().map(String::from))
}

/// The documents of `function`, parsed and checked.
fn documents(lines: &[String], function: &str) -> Vec<Map<String, Value>> {
    lines
        .iter()
        .map(|l| check_emf(l).unwrap_or_else(|e| panic!("EMF line {l}: {e}")))
        .filter(|d| d["function"] == function)
        .collect()
}

fn of_dataset<'a>(docs: &'a [Map<String, Value>], dataset: &str) -> Vec<&'a Map<String, Value>> {
    docs.iter()
        .filter(|d| d.get("dataset").and_then(Value::as_str) == Some(dataset))
        .collect()
}

fn total(docs: &[Map<String, Value>], metric: &str) -> f64 {
    docs.iter().filter_map(|d| d.get(metric)?.as_f64()).sum()
}

/// Checks the dimension sets of every document: `function` alone without a dataset; with a
/// dataset, `function`+`dataset` and `function` (so function-wide alarms include it), the
/// dataset one of the config's.
fn check_dimensions(docs: &[Map<String, Value>], datasets: &[&str]) {
    for d in docs {
        let dims = &d["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        match d.get("dataset").and_then(Value::as_str) {
            Some(ds) => {
                assert!(datasets.contains(&ds), "dataset {ds} is configured");
                assert_eq!(
                    dims,
                    &json!([["function", "dataset"], ["function"]]),
                    "{d:?}"
                );
            }
            None => assert_eq!(dims, &json!([["function"]]), "{d:?}"),
        }
    }
}

#[tokio::test]
async fn emf_documents_follow_the_specification_and_carry_the_dataset() {
    const EMAIL: &str = "emf-marker@example.com";
    let mut cfg = demo_config();
    cfg.catalog.database = unique("emf_db").replace('-', "_");
    let datasets: Vec<&str> = cfg.datasets.iter().map(|d| d.name.as_str()).collect();
    let zones = Zones::default();
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let store = S3Store::new(aws.s3.clone(), &bucket);

    capture_emf();

    // kinesis-ingest: events two minutes old, for two datasets, plus records quarantined for a
    // dataset (a signup without its e-mail) and for none (malformed JSON, an unknown type).
    let now = now_micros();
    // Whole milliseconds: the text form carries no more.
    let event_micros = now / 1000 * 1000 - 120_000_000;
    let ts = format_micros(event_micros);
    let lines = [
        json!({"type":"page_view","event_id":"pv-1","ts":ts,"user_id":"u1","session_id":"s","url":"/a"}),
        json!({"type":"page_view","event_id":"pv-2","ts":ts,"session_id":"s","url":"/b"}),
        json!({"type":"signup","event_id":"su-1","ts":ts,"user_id":"u1","email":EMAIL}),
        json!({"type":"signup","event_id":"su-2","ts":ts,"user_id":"u2"}),
        json!({"type":"no_such_type","email":EMAIL}),
    ]
    .iter()
    .map(Value::to_string)
    .chain([format!("{{\"type\":\"signup\",\"email\":\"{EMAIL}\"")])
    .collect::<Vec<_>>();
    let records: Vec<StreamRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 + 1, l.clone().into_bytes(), now as f64 / 1e6))
        .collect();
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 2,
    };
    let before_ingest = now_micros();
    let resp = kinesis_ingest::handle(&ingest, kinesis_event(&records))
        .await
        .expect("kinesis-ingest");
    assert!(resp.failed.is_empty());
    let after_ingest = now_micros();

    // s3-transform over what landed in raw: PostgreSQL unreachable first (a refused port), then
    // the real cluster.
    let hmac = HashKey::new(b"emf-test-hmac-key-0123456789abcdef".to_vec()).expect("key");
    let schema = unique("emf").replace('-', "_");
    let down = Postgres::new(
        "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"
            .parse()
            .expect("url"),
        None,
        &schema,
    );
    let up = Postgres::new(shared_postgres().url.parse().expect("url"), None, &schema);
    let raw = aws.keys(&bucket, "raw/").await;
    assert_eq!(raw.len(), 2, "one raw object per dataset: {raw:?}");
    let page_views = raw
        .iter()
        .find(|k| k.starts_with("raw/page_views/"))
        .expect("page_views object");
    let limits = Limits {
        max_decompressed: 1 << 20,
        max_line: 1 << 16,
    };
    let unreachable = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &down,
        limits,
        hash_key: Some(&hmac),
    };
    let input: S3Input =
        serde_json::from_value(s3_event_json(&bucket, page_views, 0)).expect("event");
    let failed = s3_transform::handle(&unreachable, input).await;
    assert!(failed.is_err(), "PostgreSQL is unreachable");
    let transform = s3_transform::Handler {
        warehouse: &up,
        ..unreachable
    };
    let before_transform = now_micros();
    for k in &raw {
        let input: S3Input = serde_json::from_value(s3_event_json(&bucket, k, 0)).expect("event");
        s3_transform::handle(&transform, input).await.expect(k);
    }
    let after_transform = now_micros();

    // glue-catalog over the curated objects.
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
    let curated = aws.keys(&bucket, "curated/").await;
    assert_eq!(curated.len(), 2, "{curated:?}");
    for k in &curated {
        let input = serde_json::from_value(s3_event_json(&bucket, k, 0)).expect("event");
        glue_catalog::handle(&glue, input).await.expect(k);
    }

    let lines = take_emf();
    for l in &lines {
        assert!(
            !l.contains("emf-marker"),
            "a payload value in an EMF line: {l}"
        );
    }

    // kinesis-ingest: batch counts function-wide, what landed per dataset; the two unrouted
    // records counted function-wide; the freshness of raw is the data's age when it landed.
    let docs = documents(&lines, "kinesis-ingest");
    check_dimensions(&docs, &datasets);
    assert_eq!(docs.len(), 3, "{docs:?}");
    let wide = docs
        .iter()
        .find(|d| !d.contains_key("dataset"))
        .expect("function-wide document");
    assert_eq!(wide["RecordsIn"], 6.0);
    assert_eq!(wide["RecordsQuarantined"], 2.0);
    assert_eq!(total(&docs, "RecordsWritten"), 3.0);
    assert_eq!(total(&docs, "RecordsQuarantined"), 3.0);
    let pv = of_dataset(&docs, "page_views");
    assert_eq!(pv.len(), 1);
    assert_eq!(pv[0]["RecordsWritten"], 2.0);
    let fresh = pv[0]["FreshnessRaw"].as_f64().expect("FreshnessRaw");
    let lo = (before_ingest - event_micros) as f64 / 1000.0;
    let hi = (after_ingest - event_micros) as f64 / 1000.0;
    assert!(
        lo <= fresh && fresh <= hi,
        "FreshnessRaw {fresh} in [{lo}, {hi}] ms"
    );
    assert_eq!(
        unit_of(pv[0], "FreshnessRaw").as_deref(),
        Some("Milliseconds")
    );
    assert_eq!(unit_of(pv[0], "BytesCompressed").as_deref(), Some("Bytes"));
    let su = of_dataset(&docs, "signups");
    assert_eq!(su[0]["RecordsWritten"], 1.0);
    assert_eq!(su[0]["RecordsQuarantined"], 1.0);
    assert_eq!(su[0]["Rejected_missing_field"], 1.0);
    assert_eq!(
        unit_of(su[0], "Rejected_missing_field").as_deref(),
        Some("Count")
    );

    // s3-transform: the refused connection counted function-wide, the failed object under its
    // dataset; rows and both freshness metrics per dataset.
    let docs = documents(&lines, "s3-transform");
    check_dimensions(&docs, &datasets);
    assert_eq!(total(&docs, "DatabaseConnectionErrors"), 1.0, "{docs:?}");
    let pv = of_dataset(&docs, "page_views");
    assert_eq!(total(&docs, "ObjectsFailed"), 1.0);
    assert!(pv
        .iter()
        .any(|d| d.get("ObjectsFailed") == Some(&json!(1.0))));
    assert_eq!(total(&docs, "RowsCurated"), 3.0);
    assert_eq!(total(&docs, "RowsInserted"), 3.0);
    let loaded = pv
        .iter()
        .find(|d| d.contains_key("RowsCurated"))
        .expect("the loaded page_views object");
    assert_eq!(loaded["RowsCurated"], 2.0);
    let lo = (before_transform - event_micros) as f64 / 1000.0;
    let hi = (after_transform - event_micros) as f64 / 1000.0;
    for m in ["FreshnessCurated", "FreshnessWarehouse"] {
        let v = loaded[m]
            .as_f64()
            .unwrap_or_else(|| panic!("{m} in {loaded:?}"));
        assert!(lo <= v && v <= hi, "{m} {v} in [{lo}, {hi}] ms");
        assert_eq!(unit_of(loaded, m).as_deref(), Some("Milliseconds"));
    }
    assert!(
        loaded["FreshnessCurated"].as_f64() <= loaded["FreshnessWarehouse"].as_f64(),
        "curated is written before the load commits"
    );
    assert_eq!(of_dataset(&docs, "signups")[0]["RowsCurated"], 1.0);

    // glue-catalog: partitions registered per dataset.
    let docs = documents(&lines, "glue-catalog");
    check_dimensions(&docs, &datasets);
    for ds in ["page_views", "signups"] {
        let d = of_dataset(&docs, ds);
        assert_eq!(d.len(), 1, "{ds}: {docs:?}");
        assert_eq!(d[0]["ObjectsCatalogued"], 1.0);
        assert_eq!(d[0]["PartitionsRegistered"], 1.0);
    }
    let wide = docs
        .iter()
        .find(|d| !d.contains_key("dataset"))
        .expect("function-wide document");
    assert_eq!(
        unit_of(wide, "CatalogMillis").as_deref(),
        Some("Milliseconds")
    );
}

/// The checker refuses what the specification forbids (so the test above can fail).
#[test]
fn the_checker_refuses_documents_cloudwatch_would_drop() {
    let ok = |extra: Value| {
        let mut d = json!({
            "_aws": {"Timestamp": now_micros() / 1000, "CloudWatchMetrics": [{
                "Namespace": "sluice", "Dimensions": [["function"]],
                "Metrics": [{"Name": "RowsCurated", "Unit": "Count"}]}]},
            "function": "s3-transform", "RowsCurated": 3.0
        });
        for (k, v) in extra.as_object().expect("object") {
            match k.as_str() {
                "directive" => {
                    for (dk, dv) in v.as_object().expect("object") {
                        d["_aws"]["CloudWatchMetrics"][0][dk] = dv.clone();
                    }
                }
                _ => d[k] = v.clone(),
            }
        }
        check_emf(&d.to_string())
    };
    assert!(ok(json!({})).is_ok());
    for (bad, why) in [
        (json!({"function": 3}), "dimension value not a string"),
        (json!({"RowsCurated": "3"}), "metric value not a number"),
        (
            json!({"directive": {"Metrics": [{"Name": "RowsCurated", "Unit": "Rows"}]}}),
            "unit",
        ),
        (
            json!({"directive": {"Dimensions": [["dataset"]]}}),
            "missing dimension member",
        ),
        (
            json!({"directive": {"Namespace": "a b"}}),
            "namespace characters",
        ),
        (json!({"directive": {"Extra": 1}}), "extra directive member"),
        (
            json!({"_aws": {"Timestamp": now_micros(), "CloudWatchMetrics": []}}),
            "µs timestamp",
        ),
    ] {
        assert!(ok(bad).is_err(), "{why}");
    }
}
