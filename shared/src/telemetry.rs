//! Telemetry: JSON logs and CloudWatch Embedded Metric Format (EMF) metrics.
//!
//! Logs are JSON lines on stdout carrying the Lambda request id from the runtime's span; they
//! never carry payloads. Metrics are collected per invocation in [`Metrics`] and printed as one
//! EMF document, which CloudWatch turns into metrics without any API call.

use std::sync::atomic::{AtomicBool, Ordering};

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

/// The metrics of one invocation, emitted together as one EMF document.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    function: String,
    values: Vec<(String, f64, Unit)>,
}

impl Metrics {
    /// New metrics for `function`, dimensioned by it.
    pub fn new(function: &str) -> Self {
        Metrics {
            namespace: std::env::var(crate::env::METRICS_NAMESPACE)
                .unwrap_or_else(|_| DEFAULT_NAMESPACE.to_string()),
            function: function.to_string(),
            values: Vec::new(),
        }
    }

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

    /// The current value of a metric.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _, _)| n == name).map(|v| v.1)
    }

    /// The EMF document for these metrics at `timestamp_ms`.
    pub fn to_emf(&self, timestamp_ms: i64) -> Value {
        let defs: Vec<Value> = self
            .values
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["function"]],
                    "Metrics": defs,
                }],
            }),
        );
        doc.insert("function".into(), json!(self.function));
        for (n, v, _) in &self.values {
            doc.insert(n.clone(), json!(v));
        }
        Value::Object(doc)
    }

    /// Prints the EMF document to stdout (metrics time is wall-clock; data never is).
    pub fn emit(&self) {
        if self.values.is_empty() || !EMF_ENABLED.load(Ordering::Relaxed) {
            return;
        }
        println!("{}", self.to_emf(chrono::Utc::now().timestamp_millis()));
    }
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
        let d = m.to_emf(1);
        assert_eq!(d["RecordsIn"], 5.0);
        assert_eq!(d["function"], "kinesis-ingest");
        let defs = &d["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(defs[1]["Unit"], "Bytes");
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "function"
        );
    }
}
