//! Telemetry: JSON logs and CloudWatch Embedded Metric Format (EMF) metrics.
//!
//! Logs are JSON lines on stdout carrying the Lambda request id from the runtime's span; they
//! never carry payloads. Metrics are collected per invocation in [`Metrics`] and printed as one
//! EMF document, which CloudWatch turns into metrics without any API call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

static EMF_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns EMF printing on or off process-wide (local drivers print their own summaries).
pub fn set_emf_enabled(on: bool) {
    EMF_ENABLED.store(on, Ordering::Relaxed);
}

/// Metric namespace unless `SLUICE_METRICS_NAMESPACE` overrides it.
pub const DEFAULT_NAMESPACE: &str = "sluice";

/// Initialises JSON logging (level from `RUST_LOG`, default `info`). Safe to call twice.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .try_init();
}

/// EMF units used by sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (records, objects...); what [`Metrics::count`] records.
    Count,
    /// A size in bytes.
    Bytes,
    /// A duration in milliseconds.
    Milliseconds,
    /// No unit, for ratios (`None` in EMF).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// Named values with units: the metrics of one invocation at one level (the function, or one
/// dataset within it).
#[derive(Debug, Clone, Default)]
pub struct MetricSet {
    values: Vec<(String, f64, Unit)>,
}

impl MetricSet {
    /// Adds to a metric (creating it at zero).
    pub fn add(&mut self, name: &str, value: f64, unit: Unit) {
        match self.values.iter_mut().find(|(n, _, _)| n == name) {
            Some(v) => v.1 += value,
            None => self.values.push((name.to_string(), value, unit)),
        }
    }

    /// Adds a count.
    pub fn count(&mut self, name: &str, n: usize) {
        self.add(name, n as f64, Unit::Count);
    }

    /// Sets a metric to a value.
    pub fn set(&mut self, name: &str, value: f64, unit: Unit) {
        self.values.retain(|(n, _, _)| n != name);
        self.values.push((name.to_string(), value, unit));
    }

    /// Keeps the smallest value given for a metric (a freshness: the newest data's age).
    pub fn least(&mut self, name: &str, value: f64, unit: Unit) {
        match self.values.iter_mut().find(|(n, _, _)| n == name) {
            Some(v) => v.1 = v.1.min(value),
            None => self.values.push((name.to_string(), value, unit)),
        }
    }

    /// The current value of a metric.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _, _)| n == name).map(|v| v.1)
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The metrics of one invocation: function-wide values, dimensioned by `function`, and
/// per-dataset values, dimensioned by `function` + `dataset` and also published under
/// `function` alone (so function-wide sums and alarms include them). Emitted as one EMF
/// document for the function and one per dataset.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    function: String,
    values: MetricSet,
    datasets: BTreeMap<String, MetricSet>,
}

impl Metrics {
    /// New metrics for `function`, dimensioned by it.
    pub fn new(function: &str) -> Self {
        Metrics {
            namespace: std::env::var(crate::env::METRICS_NAMESPACE)
                .unwrap_or_else(|_| DEFAULT_NAMESPACE.to_string()),
            function: function.to_string(),
            values: MetricSet::default(),
            datasets: BTreeMap::new(),
        }
    }

    /// The metrics of one dataset. Only configured dataset names belong here: each name is a
    /// CloudWatch dimension value (a metric series of its own).
    pub fn dataset(&mut self, name: &str) -> &mut MetricSet {
        self.datasets.entry(name.to_string()).or_default()
    }

    /// The function-wide metrics (what [`Metrics::add`] and [`Metrics::count`] write to).
    pub fn function(&mut self) -> &mut MetricSet {
        &mut self.values
    }

    /// Adds to a function-wide metric (creating it at zero).
    pub fn add(&mut self, name: &str, value: f64, unit: Unit) {
        self.values.add(name, value, unit);
    }

    /// Adds a function-wide count.
    pub fn count(&mut self, name: &str, n: usize) {
        self.values.count(name, n);
    }

    /// Sets a function-wide metric to a value.
    pub fn set(&mut self, name: &str, value: f64, unit: Unit) {
        self.values.set(name, value, unit);
    }

    /// The current value of a function-wide metric.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name)
    }

    /// A function-wide metric plus the same metric over every dataset.
    pub fn total(&self, name: &str) -> Option<f64> {
        std::iter::once(&self.values)
            .chain(self.datasets.values())
            .filter_map(|s| s.get(name))
            .reduce(|a, b| a + b)
    }

    /// The EMF documents for these metrics at `timestamp_ms`: the function's (if it has
    /// values), then one per dataset with values, by dataset name.
    pub fn to_emf(&self, timestamp_ms: i64) -> Vec<Value> {
        let mut docs = Vec::new();
        if !self.values.is_empty() {
            docs.push(self.document(timestamp_ms, None, &self.values));
        }
        for (name, set) in &self.datasets {
            if !set.is_empty() {
                docs.push(self.document(timestamp_ms, Some(name), set));
            }
        }
        docs
    }

    fn document(&self, timestamp_ms: i64, dataset: Option<&str>, set: &MetricSet) -> Value {
        let defs: Vec<Value> = set
            .values
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        let dimensions = match dataset {
            Some(_) => json!([["function", "dataset"], ["function"]]),
            None => json!([["function"]]),
        };
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimensions,
                    "Metrics": defs,
                }],
            }),
        );
        doc.insert("function".into(), json!(self.function));
        if let Some(d) = dataset {
            doc.insert("dataset".into(), json!(d));
        }
        for (n, v, _) in &set.values {
            doc.insert(n.clone(), json!(v));
        }
        Value::Object(doc)
    }

    /// Prints the EMF documents to stdout, one line each (metrics time is wall-clock; data
    /// never is), or into the capture installed by [`capture_emf`].
    pub fn emit(&self) {
        if !EMF_ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let lines: Vec<String> = self
            .to_emf(chrono::Utc::now().timestamp_millis())
            .iter()
            .map(Value::to_string)
            .collect();
        let mut capture = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
        match capture.as_mut() {
            Some(c) => c.extend(lines),
            None => {
                for l in lines {
                    println!("{l}");
                }
            }
        }
    }
}

/// Wall-clock time in µs since the epoch (when something became visible).
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A freshness in milliseconds: how long after `event_micros` the data became visible at
/// `visible_micros`; 0 for event times in the future (a producer's clock ahead of ours).
pub fn freshness_ms(visible_micros: i64, event_micros: i64) -> f64 {
    (visible_micros.saturating_sub(event_micros)).max(0) as f64 / 1000.0
}

static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Sends every EMF line this process emits into memory instead of stdout, until
/// [`take_emf`] is called (for tests that read the documents the handlers print).
pub fn capture_emf() {
    *CAPTURE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// The EMF lines captured since [`capture_emf`]; printing to stdout resumes.
pub fn take_emf() -> Vec<String> {
    CAPTURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let mut m = Metrics::new("kinesis-ingest");
        m.count("RecordsIn", 3);
        m.count("RecordsIn", 2);
        m.add("BytesRaw", 10.0, Unit::Bytes);
        let docs = m.to_emf(1);
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d["RecordsIn"], 5.0);
        assert_eq!(d["function"], "kinesis-ingest");
        assert!(d.get("dataset").is_none());
        let defs = &d["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(defs[1]["Unit"], "Bytes");
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function"]])
        );
    }

    #[test]
    fn dataset_metrics_are_documents_of_their_own() {
        let mut m = Metrics::new("s3-transform");
        m.dataset("orders").count("RowsCurated", 4);
        m.dataset("clicks").count("RowsCurated", 1);
        m.dataset("orders").count("RowsCurated", 2);
        m.dataset("orders")
            .least("FreshnessCurated", 900.0, Unit::Milliseconds);
        m.dataset("orders")
            .least("FreshnessCurated", 300.0, Unit::Milliseconds);
        m.dataset("orders")
            .least("FreshnessCurated", 600.0, Unit::Milliseconds);
        assert_eq!(m.total("RowsCurated"), Some(7.0));
        assert_eq!(m.total("RowsRejected"), None);
        let docs = m.to_emf(7);
        // No function-wide values: only the two dataset documents, by name.
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["dataset"], "clicks");
        assert_eq!(docs[1]["dataset"], "orders");
        assert_eq!(docs[1]["function"], "s3-transform");
        assert_eq!(docs[1]["RowsCurated"], 6.0);
        assert_eq!(docs[1]["FreshnessCurated"], 300.0);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "dataset"], ["function"]])
        );
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "FreshnessCurated", "Unit": "Milliseconds"})
        );
        assert!(Metrics::new("x").to_emf(1).is_empty());
        assert_eq!(freshness_ms(5_000_000, 2_000_000), 3000.0);
        assert_eq!(freshness_ms(2_000_000, 5_000_000), 0.0);
    }
}
