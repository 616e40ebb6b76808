//! http-collector on a loopback HTTP port, the way API Gateway runs it.
//!
//! Each HTTP request is turned into the API Gateway HTTP API (payload format 2.0) event the
//! function receives — lower-case headers, `rawPath`, `requestContext` with a request id and the
//! source address, the body as text or base64 (always base64 when it is compressed or not UTF-8)
//! — deserialised as the function's event type, handled, and the proxy response it returns is
//! turned back into HTTP. API Gateway's own limits come first: a body over 10 MiB is answered
//! 413 by the API, an event over Lambda's 6 MB synchronous payload limit 413 as well.
//! [`post`] is a plain HTTP/1.1 client for tests and the demo.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use http_collector::auth::{Keys, SecretsManagerKeys};
use http_collector::event::{request_of, response_of};
use http_collector::kinesis::KinesisStream;
use http_collector::{Config, Handler};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Aws;

/// API Gateway HTTP API's largest request body.
pub const API_MAX_BODY: usize = 10 * 1024 * 1024;
/// Lambda's largest synchronous invocation payload.
pub const LAMBDA_MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// A running local API; stops when dropped.
pub struct LocalApi {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LocalApi {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The collector's configuration for a local stream and keys secret (defaults otherwise).
pub fn local_config(stream: &str, secret: &str, partition_key: Option<&str>) -> Config {
    Config {
        stream: stream.to_string(),
        keys_secret: secret.to_string(),
        keys_ttl: Duration::from_secs(300),
        partition_key: partition_key.map(str::to_string),
        limits: http_collector::body::Limits::default(),
        deadline: Duration::from_secs(10),
    }
}

/// Creates a keys secret in the local Secrets Manager; returns its ARN.
pub async fn create_keys_secret(aws: &Aws, name: &str, keys: &Value) -> Result<String> {
    let out = aws
        .secrets
        .create_secret()
        .name(name)
        .secret_string(keys.to_string())
        .send()
        .await
        .context("create keys secret")?;
    out.arn().map(str::to_string).context("secret without ARN")
}

/// A collector handler over `aws` (Kinesis and Secrets Manager), its keys read once.
pub async fn handler(aws: &Aws, cfg: Config) -> Result<Handler> {
    let keys = Keys::new(
        Box::new(SecretsManagerKeys::new(
            aws.secrets.clone(),
            &cfg.keys_secret,
        )),
        cfg.keys_ttl,
    );
    keys.load().await.context("load API keys")?;
    let stream = Box::new(KinesisStream::new(aws.kinesis.clone(), &cfg.stream));
    Ok(Handler { cfg, stream, keys })
}

/// Serves `handler` on a free loopback port.
pub async fn serve(handler: Handler) -> Result<LocalApi> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        while let Ok((sock, peer)) = listener.accept().await {
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&h, req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Ok(LocalApi { addr, task })
}

fn plain(status: u16, body: &str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn answer(
    h: &Handler,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, API_MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(413, r#"{"message":"Request Entity Too Large"}"#),
    };
    let event = api_event(&parts, &body, peer);
    let payload = serde_json::to_vec(&event).unwrap_or_default();
    if payload.len() > LAMBDA_MAX_PAYLOAD {
        return plain(413, r#"{"message":"Request Entity Too Large"}"#);
    }
    let Ok(event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(&payload) else {
        return plain(500, r#"{"message":"Internal Server Error"}"#);
    };
    let resp = match request_of(event) {
        Ok(r) => h.handle(&r, None).await,
        Err(resp) => resp,
    };
    let out = serde_json::to_value(response_of(resp)).unwrap_or_default();
    let status = out["statusCode"].as_u64().unwrap_or(502) as u16;
    let text = out["body"].as_str().unwrap_or("");
    let mut r = plain(status, text);
    if let Some(hs) = out["headers"].as_object() {
        for (k, v) in hs {
            if let (Ok(k), Some(Ok(v))) = (
                hyper::header::HeaderName::try_from(k.as_str()),
                v.as_str().map(hyper::header::HeaderValue::try_from),
            ) {
                r.headers_mut().insert(k, v);
            }
        }
    }
    r
}

/// The API Gateway v2 event of one request.
fn api_event(parts: &hyper::http::request::Parts, body: &[u8], peer: SocketAddr) -> Value {
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            // API Gateway joins repeated headers with commas.
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_string(), Value::String(v));
            }
        }
    }
    let encoded = parts.headers.contains_key(hyper::header::CONTENT_ENCODING);
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(t) if !encoded => (t.to_string(), false),
        _ => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let path = parts.uri.path().to_string();
    let route = match (parts.method.as_str(), path.as_str()) {
        ("POST", "/v1/events") => "POST /v1/events",
        ("POST", "/v1/firehose") => "POST /v1/firehose",
        _ => "$default",
    };
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": format!("local-{:016x}", fastrand::u64(..)),
            "routeKey": route,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": b64,
    });
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a new connection to `addr`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply> {
    let sock = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock)).await?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    driver.abort();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `POST path` with `headers` and `body`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply> {
    request(addr, "POST", path, headers, body).await
}
