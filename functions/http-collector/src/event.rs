//! The edge: API Gateway HTTP API (payload format 2.0) events in, proxy responses out.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;

use crate::handler::{Request, Response};

/// The request the handler sees. The stage prefix is removed from the path; a base64 body
/// (API Gateway encodes every body it does not consider text) is decoded.
pub fn request_of(e: ApiGatewayV2httpRequest) -> Result<Request, Response> {
    let ctx = &e.request_context;
    let mut path = e
        .raw_path
        .clone()
        .or_else(|| ctx.http.path.clone())
        .unwrap_or_default();
    if let Some(stage) = ctx.stage.as_deref().filter(|s| *s != "$default") {
        if let Some(rest) = path.strip_prefix(&format!("/{stage}")) {
            path = rest.to_string();
        }
    }
    let headers = e
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match e.body {
        None => Vec::new(),
        Some(b) if e.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map_err(|_| Response {
                status: 400,
                headers: vec![],
                body: r#"{"error":"the body is not valid base64"}"#.into(),
            })?,
        Some(b) => b.into_bytes(),
    };
    Ok(Request {
        method: ctx.http.method.as_str().to_string(),
        path,
        headers,
        body,
        request_id: ctx.request_id.clone().unwrap_or_default(),
    })
}

/// The invocation's deadline as an [`Instant`] (the runtime gives ms since the epoch).
pub fn deadline_of(ctx: &lambda_runtime::Context) -> Option<Instant> {
    let now = chrono::Utc::now().timestamp_millis();
    let left = i64::try_from(ctx.deadline).ok()? - now;
    (left > 0).then(|| Instant::now() + Duration::from_millis(left as u64))
}

/// The proxy response API Gateway turns into HTTP.
pub fn response_of(r: Response) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.insert(k, v);
        }
    }
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(r.status);
    out.headers = headers;
    out.body = Some(Body::Text(r.body));
    out.is_base64_encoded = false;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_in_and_out() {
        let e: ApiGatewayV2httpRequest = serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /v1/events",
            "rawPath": "/prod/v1/events",
            "rawQueryString": "",
            "headers": {"content-type": "application/x-ndjson", "content-encoding": "gzip"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "stage": "prod",
                "requestId": "req-1", "time": "02/Dec/2026:19:00:00 +0000", "timeEpoch": 0,
                "domainName": "x", "domainPrefix": "x", "routeKey": "POST /v1/events",
                "http": {"method": "POST", "path": "/prod/v1/events", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "t"}
            },
            "body": "e30=",
            "isBase64Encoded": true
        }))
        .unwrap();
        let r = request_of(e).unwrap();
        assert_eq!(r.path, "/v1/events");
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, b"{}");
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert_eq!(r.request_id, "req-1");

        let out = response_of(Response {
            status: 503,
            headers: vec![("retry-after".into(), "1".into())],
            body: "{}".into(),
        });
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["statusCode"], 503);
        assert_eq!(v["headers"]["retry-after"], "1");
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(v["body"], "{}");
    }
}
