//! One HTTP request: route, authenticate, decode, split, write, answer.
//!
//! `POST /v1/events` takes JSON or NDJSON events and answers
//! `{"accepted": n, "rejected": [{"index", "reason"}], "failed": [index, …]}`:
//! - 200 when every record is in the stream;
//! - 400 when some records were refused (`rejected`: not JSON objects, too large, not UTF-8…)
//!   and every other record is in the stream: sending them again cannot help;
//! - 503 with `Retry-After` when some records could not be written before the deadline
//!   (`failed`: send exactly those again), 500 when the stream refuses writes outright.
//!
//! Whole-request problems answer `{"error": …}`: 400 (empty, bad gzip, bad array), 401 (no key),
//! 403 (unknown key), 404, 405, 413 (body or record count), 415 (content type or encoding).
//! An unauthenticated request never reaches the stream. `POST /v1/firehose` speaks Firehose's
//! HTTP endpoint protocol ([`crate::firehose`]).

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_core::telemetry::Metrics;
use tokio::time::Instant;

use crate::auth::{Keys, Verdict};
use crate::body::{decode, framing, split, BodyError, Item, MAX_PARTITION_KEY};
use crate::config::Config;
use crate::firehose::{self, Answer};
use crate::put::{put_all, Entry, Policy, Stream};

/// The events route.
pub const EVENTS_PATH: &str = "/v1/events";
/// The Firehose route.
pub const FIREHOSE_PATH: &str = "/v1/firehose";
/// Time kept free before the Lambda deadline to answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// An HTTP request as the function sees it (from the API Gateway event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `POST`, `GET`…
    pub method: String,
    /// The path without the stage (`/v1/events`).
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body's bytes (base64 already undone).
    pub body: Vec<u8>,
    /// API Gateway's request id.
    pub request_id: String,
}

impl Request {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (`Content-Type` is always `application/json`).
    pub headers: Vec<(String, String)>,
    /// JSON text.
    pub body: String,
}

impl Response {
    fn json(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: impl std::fmt::Display) -> Response {
        Response::json(status, json!({ "error": message.to_string() }))
    }

    fn with(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Everything one request needs, built once per cold start.
pub struct Handler {
    /// Limits, partition key field, deadline.
    pub cfg: Config,
    /// The stream port.
    pub stream: Box<dyn Stream>,
    /// The API keys.
    pub keys: Keys,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The partition key of a record from its key field's JSON text (`Item::key`): the value
/// when it is a non-empty string (at most 256 bytes) or a number, else the first 128 bits of the
/// record's SHA-256 in hex (the same record always lands on the same shard).
pub fn partition_key(bytes: &[u8], key: Option<&str>) -> String {
    if let Some(text) = key {
        if text.starts_with('"') {
            if let Ok(s) = serde_json::from_str::<String>(text) {
                if !s.is_empty() && s.len() <= MAX_PARTITION_KEY {
                    return s;
                }
            }
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
            && text.len() <= MAX_PARTITION_KEY
        {
            return text.to_string();
        }
    }
    let d = Sha256::digest(bytes);
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn bearer(req: &Request) -> Option<&str> {
    if let Some(k) = req.header("x-api-key") {
        return Some(k.trim());
    }
    let auth = req.header("authorization")?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Handler {
    /// Answers one request; `lambda_deadline` is the invocation's own deadline, if known.
    pub async fn handle(&self, req: &Request, lambda_deadline: Option<Instant>) -> Response {
        let mut metrics = Metrics::new("http-collector");
        let path = req.path.trim_end_matches('/');
        let route = match path {
            EVENTS_PATH | FIREHOSE_PATH => path,
            _ => return Response::error(404, "no such route (POST /v1/events or /v1/firehose)"),
        };
        if !req.method.eq_ignore_ascii_case("POST") {
            return Response::error(405, "only POST is accepted").with("allow", "POST");
        }
        let started = Instant::now();
        let mut deadline = started + self.cfg.deadline;
        if let Some(d) = lambda_deadline {
            deadline = deadline.min(d.checked_sub(ANSWER_MARGIN).unwrap_or(d));
        }
        let resp = if route == FIREHOSE_PATH {
            self.firehose(req, deadline, &mut metrics).await
        } else {
            self.events(req, deadline, &mut metrics).await
        };
        metrics.count("requests", 1);
        metrics.count(&format!("status_{}xx", resp.status / 100), 1);
        metrics.set(
            "request_ms",
            started.elapsed().as_secs_f64() * 1000.0,
            sluice_core::telemetry::Unit::Milliseconds,
        );
        metrics.emit();
        resp
    }

    async fn authenticate(&self, presented: Option<&str>) -> Result<String, (u16, String)> {
        match self.keys.check(presented).await {
            Ok(Verdict::Producer(name)) => Ok(name),
            Ok(Verdict::Missing) => Err((401, "an API key is required".into())),
            Ok(Verdict::Denied) => Err((403, "the API key is not valid".into())),
            Err(e) => {
                tracing::error!(error = %e, kind = e.kind(), "cannot check API keys");
                let status = if e.is_retryable() { 503 } else { 500 };
                Err((status, "the API keys cannot be checked now".into()))
            }
        }
    }

    fn key_field(&self) -> Option<&str> {
        self.cfg.partition_key.as_deref()
    }

    fn decoded(&self, req: &Request) -> Result<Vec<u8>, BodyError> {
        decode(
            req.body.clone(),
            req.header("content-encoding"),
            &self.cfg.limits,
        )
    }

    fn entries<'a>(&self, items: &[Item<'a>]) -> (Vec<usize>, Vec<Entry<'a>>) {
        items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.bytes.len() <= self.cfg.limits.max_record)
            .map(|(i, it)| {
                let e = Entry {
                    data: it.bytes,
                    partition_key: partition_key(it.bytes, it.key),
                };
                (i, e)
            })
            .unzip()
    }

    async fn events(&self, req: &Request, deadline: Instant, m: &mut Metrics) -> Response {
        let producer = match self.authenticate(bearer(req)).await {
            Ok(p) => p,
            Err((401, msg)) => {
                return Response::error(401, msg).with("www-authenticate", "Bearer");
            }
            Err((status, msg)) => return Response::error(status, msg),
        };
        let fr = match framing(req.header("content-type")) {
            Ok(f) => f,
            Err(e) => return refuse(&producer, &req.request_id, &e),
        };
        let body = match self.decoded(req) {
            Ok(b) => b,
            Err(e) => return refuse(&producer, &req.request_id, &e),
        };
        let items = match split(&body, fr, &self.cfg.limits, self.key_field()) {
            Ok(i) => i,
            Err(e) => return refuse(&producer, &req.request_id, &e),
        };
        let rejected: Vec<serde_json::Value> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| {
                it.problem
                    .as_ref()
                    .map(|p| json!({ "index": i, "reason": p }))
            })
            .collect();
        let good: Vec<Item<'_>> = items.iter().filter(|i| i.is_ok()).cloned().collect();
        let good_index: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.is_ok())
            .map(|(i, _)| i)
            .collect();
        let (_, entries) = self.entries(&good);
        let out = put_all(self.stream.as_ref(), &entries, self.policy(deadline)).await;
        let failed: Vec<usize> = out.unwritten().map(|i| good_index[i]).collect();
        let accepted = entries.len() - failed.len();
        m.count("records_accepted", accepted);
        m.count("records_rejected", rejected.len());
        m.count("records_unwritten", failed.len());
        m.count("put_records_calls", out.calls as usize);
        m.count("put_records_retried", out.retried);
        tracing::info!(
            route = EVENTS_PATH,
            producer = %producer,
            request_id = %req.request_id,
            records = items.len(),
            accepted,
            rejected = rejected.len(),
            unwritten = failed.len(),
            rounds = out.rounds,
            retried = out.retried,
            entry_errors = ?out.entry_errors,
            call_error = out.call_error.as_deref().unwrap_or(""),
            "events"
        );
        let mut body = json!({ "accepted": accepted });
        if !rejected.is_empty() {
            body["rejected"] = rejected.into();
        }
        if failed.is_empty() {
            let status = if body.get("rejected").is_some() {
                400
            } else {
                200
            };
            return Response::json(status, body);
        }
        body["failed"] = failed.into();
        let status = if out.fatal { 500 } else { 503 };
        Response::json(status, body).with("retry-after", "1")
    }

    async fn firehose(&self, req: &Request, deadline: Instant, m: &mut Metrics) -> Response {
        let header_id = req.header("x-amz-firehose-request-id").unwrap_or("");
        let answer = |status: u16, id: &str, error: Option<String>| {
            let a = Answer {
                request_id: id.to_string(),
                timestamp: chrono::Utc::now().timestamp_millis(),
                error_message: error,
            };
            Response {
                status,
                headers: vec![],
                body: serde_json::to_string(&a).unwrap_or_default(),
            }
        };
        let producer = match self
            .authenticate(req.header("x-amz-firehose-access-key"))
            .await
        {
            Ok(p) => p,
            Err((status, msg)) => {
                tracing::warn!(route = FIREHOSE_PATH, firehose_request_id = %header_id, status, "refused");
                return answer(status, header_id, Some(msg));
            }
        };
        let body = match self.decoded(req) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(route = FIREHOSE_PATH, producer = %producer, firehose_request_id = %header_id, error = %e, "refused");
                return answer(e.status(), header_id, Some(e.to_string()));
            }
        };
        let (delivery, data) = match firehose::parse(&body) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(route = FIREHOSE_PATH, producer = %producer, firehose_request_id = %header_id, error = %e, "refused");
                return answer(400, header_id, Some(e));
            }
        };
        let id = if header_id.is_empty() {
            delivery.request_id.as_str()
        } else {
            header_id
        };
        let items = firehose::items(&data, &self.cfg.limits, self.key_field());
        if items.len() > self.cfg.limits.max_records {
            let e = BodyError::TooManyRecords(self.cfg.limits.max_records);
            return answer(e.status(), id, Some(e.to_string()));
        }
        let (kept, entries) = self.entries(&items);
        if kept.len() < items.len() {
            let msg = format!(
                "{} records are larger than {} bytes",
                items.len() - kept.len(),
                self.cfg.limits.max_record
            );
            return answer(413, id, Some(msg));
        }
        let not_objects = items.iter().filter(|i| !i.is_ok()).count();
        let out = put_all(self.stream.as_ref(), &entries, self.policy(deadline)).await;
        let unwritten = out.unwritten().count();
        m.count("records_accepted", entries.len() - unwritten);
        m.count("records_unwritten", unwritten);
        m.count("firehose_records_not_objects", not_objects);
        m.count("put_records_calls", out.calls as usize);
        m.count("put_records_retried", out.retried);
        tracing::info!(
            route = FIREHOSE_PATH,
            producer = %producer,
            firehose_request_id = %id,
            firehose_records = data.len(),
            records = entries.len(),
            not_objects,
            unwritten,
            rounds = out.rounds,
            retried = out.retried,
            entry_errors = ?out.entry_errors,
            call_error = out.call_error.as_deref().unwrap_or(""),
            "firehose delivery"
        );
        if unwritten == 0 {
            return answer(200, id, None);
        }
        let status = if out.fatal { 500 } else { 503 };
        let msg = format!(
            "{unwritten} of {} records were not written to the stream; retry",
            entries.len()
        );
        answer(status, id, Some(msg))
    }

    fn policy(&self, deadline: Instant) -> Policy {
        Policy {
            deadline,
            ..Policy::within(self.cfg.deadline)
        }
    }
}

fn refuse(producer: &str, request_id: &str, e: &BodyError) -> Response {
    tracing::warn!(route = EVENTS_PATH, producer = %producer, request_id = %request_id, error = %e, "refused");
    Response::error(e.status(), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys() {
        let rec = br#"{"s":{"id":"sess-1"},"n":42,"e":"","o":{}}"#;
        let pk = |rec: &[u8], field: Option<&str>| {
            let it = crate::body::record(rec, &crate::body::Limits::default(), field);
            assert!(it.is_ok());
            partition_key(it.bytes, it.key)
        };
        assert_eq!(pk(rec, Some("s.id")), "sess-1");
        assert_eq!(pk(rec, Some("n")), "42");
        let h = pk(rec, None);
        assert_eq!(h.len(), 32);
        for f in ["e", "o", "missing", "s.missing", "n.x"] {
            assert_eq!(pk(rec, Some(f)), h, "{f}");
        }
        assert_ne!(pk(b"{}", None), h);
        let long = format!(r#"{{"k":"{}"}}"#, "x".repeat(257));
        assert_eq!(pk(long.as_bytes(), Some("k")).len(), 32);
        // Duplicate keys: the last one wins, as everywhere in the pipeline.
        assert_eq!(pk(br#"{"k":"a","k":"b"}"#, Some("k")), "b");
    }

    #[test]
    fn keys_from_headers() {
        let req = |h: &[(&str, &str)]| Request {
            headers: h
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Request::default()
        };
        assert_eq!(bearer(&req(&[("x-api-key", " k ")])), Some("k"));
        assert_eq!(bearer(&req(&[("authorization", "Bearer  k")])), Some("k"));
        assert_eq!(bearer(&req(&[("authorization", "Basic k")])), None);
        assert_eq!(bearer(&req(&[])), None);
    }
}
