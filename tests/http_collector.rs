//! http-collector over real HTTP, served the way API Gateway runs it (`sluice_local::collector`),
//! writing to moto's Kinesis, its keys in moto's Secrets Manager; the fault proxy fails
//! PutRecords entries the way Kinesis does under load.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use http_collector::Config;
use serde_json::{json, Value};
use sluice_local::collector::{create_keys_secret, handler, local_config, post, request, LocalApi};
use sluice_local::faults::{FaultProxy, Rates};
use sluice_local::stream::read_stream;
use sluice_local::{moto, unique, Aws};

const KEY: &str = "test-key-0123456789abcdef";
const PARTNER_KEY: &str = "partner-key-fedcba9876543210";

struct Stack {
    direct: Aws,
    stream: String,
    secret: String,
    api: LocalApi,
    proxy: Option<FaultProxy>,
}

impl Stack {
    fn addr(&self) -> SocketAddr {
        self.api.addr
    }

    /// Every record in the stream: data text -> partition keys.
    async fn records(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in read_stream(&self.direct.kinesis, &self.stream)
            .await
            .expect("read stream")
        {
            out.entry(String::from_utf8_lossy(&r.data).into_owned())
                .or_default()
                .push(r.partition_key);
        }
        out
    }

    async fn count(&self) -> usize {
        self.records().await.values().map(Vec::len).sum()
    }
}

/// A stream of `shards` shards and a keys secret holding `keys`.
async fn stream_and_secret(direct: &Aws, shards: i32, keys: Value) -> (String, String) {
    let stream = unique("collector");
    direct
        .kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    let secret = create_keys_secret(direct, &unique("collector-keys"), &keys)
        .await
        .expect("secret");
    (stream, secret)
}

/// A stream of two shards, a keys secret, the collector on loopback (behind a fault proxy in
/// front of moto when `rates` is given).
async fn stack(rates: Option<Rates>, tweak: impl FnOnce(&mut Config)) -> Stack {
    let direct = Aws::local().await;
    let (stream, secret) = stream_and_secret(
        &direct,
        2,
        json!({ "api_key": KEY, "partner-a": PARTNER_KEY }),
    )
    .await;
    let proxy = match rates {
        Some(r) => Some(
            FaultProxy::http(&moto().endpoint, r, 16)
                .await
                .expect("proxy"),
        ),
        None => None,
    };
    let aws = match &proxy {
        Some(p) => Aws::at(&p.endpoint).await,
        None => direct.clone(),
    };
    let mut cfg = local_config(&stream, &secret, Some("session.id"));
    tweak(&mut cfg);
    let h = handler(&aws, cfg).await.expect("handler");
    let api = sluice_local::collector::serve(h).await.expect("serve");
    Stack {
        direct,
        stream,
        secret,
        api,
        proxy,
    }
}

fn event(i: usize) -> String {
    json!({
        "type": "page_view",
        "event_id": format!("e-{i:05}"),
        "ts": "2026-12-02T19:00:00Z",
        "session": {"id": format!("s-{}", i % 37)},
        "url": "/",
    })
    .to_string()
}

fn ndjson(range: std::ops::Range<usize>) -> Vec<u8> {
    range
        .map(|i| event(i) + "\n")
        .collect::<String>()
        .into_bytes()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    sluice_core::ndjson::gzip(b, 6).expect("gzip")
}

const AUTH: (&str, &str) = ("x-api-key", KEY);

#[tokio::test]
async fn every_accepted_record_is_in_the_stream_once_and_only_failed_entries_are_sent_again() {
    let s = stack(
        Some(Rates {
            entry_fail: 0.3,
            error_500: 0.05,
            throttle: 0.05,
            ..Rates::NONE
        }),
        |_| {},
    )
    .await;
    let a = s.addr();
    let mut sent: Vec<String> = Vec::new();

    // NDJSON, gzip.
    let r = post(
        a,
        "/v1/events",
        &[
            AUTH,
            ("content-type", "application/x-ndjson"),
            ("content-encoding", "gzip"),
        ],
        gzip(&ndjson(0..700)),
    )
    .await
    .expect("post");
    assert_eq!((r.status, r.json()), (200, json!({ "accepted": 700 })));
    sent.extend((0..700).map(event));

    // A JSON array, with the partner's key as a bearer token.
    let arr: Vec<Value> = (700..1100)
        .map(|i| serde_json::from_str(&event(i)).unwrap())
        .collect();
    let bearer = format!("Bearer {PARTNER_KEY}");
    let r = post(
        a,
        "/v1/events",
        &[
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ],
        serde_json::to_vec(&arr).unwrap(),
    )
    .await
    .expect("post");
    assert_eq!((r.status, r.json()), (200, json!({ "accepted": 400 })));
    sent.extend(arr.iter().map(Value::to_string));

    // One pretty-printed object with no content type.
    let one: Value = serde_json::from_str(&event(1100)).unwrap();
    let pretty = serde_json::to_string_pretty(&one).unwrap();
    let r = post(a, "/v1/events", &[AUTH], pretty.clone().into_bytes())
        .await
        .expect("post");
    assert_eq!((r.status, r.json()), (200, json!({ "accepted": 1 })));
    sent.push(pretty);

    // The stream holds exactly what was sent, each record once, keyed by session.id.
    let got = s.records().await;
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), sent.len());
    for text in &sent {
        let keys = got.get(text).unwrap_or_else(|| panic!("missing {text}"));
        assert_eq!(keys.len(), 1, "duplicated: {text}");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(keys[0], v["session"]["id"].as_str().unwrap());
    }
    // Only the failed entries were sent again: entries the stream saw = records + failures.
    let c = s.proxy.as_ref().unwrap().counts();
    eprintln!("fault proxy: {c}");
    assert!(c.entry_failures > 100, "{c}");
    assert!(c.error_500 + c.throttle > 0, "{c}");
    assert_eq!(c.put_entries, sent.len() as u64 + c.entry_failures, "{c}");
}

#[tokio::test]
async fn records_that_cannot_be_written_in_time_are_named_for_the_client_to_retry() {
    let s = stack(
        Some(Rates {
            entry_fail: 1.0,
            ..Rates::NONE
        }),
        |c| c.deadline = Duration::from_millis(300),
    )
    .await;
    let mut body = ndjson(0..3);
    body.extend_from_slice(b"not json\n");
    body.extend(ndjson(3..5));
    let r = post(s.addr(), "/v1/events", &[AUTH], body)
        .await
        .expect("post");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    let v = r.json();
    assert_eq!(v["accepted"], 0);
    assert_eq!(v["failed"], json!([0, 1, 2, 4, 5]));
    assert_eq!(v["rejected"][0]["index"], 3);
    assert_eq!(s.count().await, 0);

    // Once the stream takes writes again, the client resends exactly the failed ones.
    s.proxy.as_ref().unwrap().set_rates(Rates::NONE);
    let resend: Vec<u8> = [0, 1, 2, 3, 4]
        .iter()
        .flat_map(|i| (event(*i) + "\n").into_bytes())
        .collect();
    let r = post(s.addr(), "/v1/events", &[AUTH], resend)
        .await
        .expect("post");
    assert_eq!((r.status, r.json()), (200, json!({ "accepted": 5 })));
    assert_eq!(s.count().await, 5);
}

#[tokio::test]
async fn bad_requests_get_a_clear_answer_and_only_good_records_reach_the_stream() {
    let s = stack(None, |c| c.limits.max_records = 1000).await;
    let a = s.addr();
    let nd = ("content-type", "application/x-ndjson");
    let status = |r: &sluice_local::collector::Reply| (r.status, r.json());

    // Authentication first: nothing else is looked at without a valid key.
    let r = post(a, "/v1/events", &[nd], ndjson(0..1)).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = post(
        a,
        "/v1/events",
        &[("x-api-key", "wrong-key-0000000000"), nd],
        ndjson(0..1),
    )
    .await
    .unwrap();
    assert_eq!(
        status(&r),
        (403, json!({ "error": "the API key is not valid" }))
    );
    let r = post(
        a,
        "/v1/events",
        &[("authorization", "Basic dXNlcjpwYXNz")],
        ndjson(0..1),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);

    // Whole-request refusals.
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![AUTH], b"".to_vec(), 400, "empty"),
        (
            vec![AUTH, ("content-type", "application/json")],
            b" \n ".to_vec(),
            400,
            "empty",
        ),
        (
            vec![AUTH, ("content-encoding", "gzip")],
            b"not gzip at all".to_vec(),
            400,
            "gzip",
        ),
        (
            vec![AUTH, ("content-type", "text/html")],
            ndjson(0..1),
            415,
            "content type",
        ),
        (
            vec![AUTH, ("content-encoding", "br")],
            ndjson(0..1),
            415,
            "content encoding",
        ),
        (vec![AUTH], b"[{\"a\":1},".to_vec(), 400, "JSON array"),
        (vec![AUTH], b"[]".to_vec(), 400, "no records"),
        (
            vec![AUTH, nd],
            ndjson(0..1001),
            413,
            "more than 1000 records",
        ),
    ];
    for (headers, body, want, says) in cases {
        let r = post(a, "/v1/events", &headers, body).await.unwrap();
        let msg = r.json()["error"].as_str().unwrap_or("").to_string();
        assert_eq!(r.status, want, "{says}: {msg}");
        assert!(msg.contains(says), "{says}: {msg}");
    }
    // Over API Gateway's 10 MiB, and over Lambda's 6 MB payload.
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    assert_eq!(
        post(a, "/v1/events", &[AUTH], huge).await.unwrap().status,
        413
    );
    let big = vec![b' '; 5 * 1024 * 1024];
    assert_eq!(
        post(a, "/v1/events", &[AUTH, ("content-encoding", "gzip")], big)
            .await
            .unwrap()
            .status,
        413
    );
    // Routes and methods.
    assert_eq!(
        request(a, "GET", "/v1/events", &[AUTH], vec![])
            .await
            .unwrap()
            .status,
        405
    );
    assert_eq!(
        post(a, "/v2/events", &[AUTH], ndjson(0..1))
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(s.count().await, 0, "nothing refused reached the stream");

    // Per-record refusals: the good records are written, the others named with a reason.
    let mut body = Vec::new();
    body.extend(ndjson(0..1));
    body.extend(format!("{{\"pad\":\"{}\"}}\n", "x".repeat(2 * 1024 * 1024)).into_bytes());
    body.extend(b"{\"a\":\"\xff\xfe\"}\n");
    body.extend(b"[1,2]\n\"text\"\n{\"unclosed\": \n");
    body.extend(ndjson(1..2));
    let r = post(a, "/v1/events", &[AUTH, nd], body).await.unwrap();
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    assert!(v.get("failed").is_none());
    let reasons: Vec<(u64, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let idx: Vec<u64> = reasons.iter().map(|(i, _)| *i).collect();
    assert_eq!(idx, [1, 2, 3, 4, 5]);
    assert!(reasons[0].1.contains("more than 1048320"), "{reasons:?}");
    assert!(reasons[1].1.contains("UTF-8"), "{reasons:?}");
    assert!(
        reasons[2].1.contains("not a JSON object (a JSON array)"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].1.contains("not a JSON object (a JSON string)"),
        "{reasons:?}"
    );
    assert!(reasons[4].1.contains("not valid JSON"), "{reasons:?}");
    // No reason repeats the payload.
    assert!(!r.body.windows(3).any(|w| w == b"xxx"));
    assert!(!String::from_utf8_lossy(&r.body).contains("unclosed"));
    let got = s.records().await;
    assert_eq!(got.len(), 2);
    assert!(got.contains_key(&event(0)) && got.contains_key(&event(1)));
}

fn firehose_body(request_id: &str, records: &[&[u8]]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&json!({
        "requestId": request_id,
        "timestamp": 1_764_702_000_000i64,
        "records": records.iter().map(|r| json!({ "data": b64.encode(r) })).collect::<Vec<_>>(),
    }))
    .expect("firehose body")
}

#[tokio::test]
async fn firehose_deliveries_get_the_answer_firehose_expects() {
    let s = stack(Some(Rates::NONE), |c| {
        c.deadline = Duration::from_millis(300)
    })
    .await;
    let a = s.addr();
    let id = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";
    let e0 = event(0) + "\n";
    let e12 = event(1) + "\n" + &event(2) + "\n";
    let body = firehose_body(
        id,
        &[e0.as_bytes(), e12.as_bytes(), b"plain text, not JSON"],
    );
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
        ("x-amz-firehose-protocol-version", "1.0"),
        ("x-amz-firehose-request-id", id),
        ("x-amz-firehose-access-key", KEY),
        (
            "x-amz-firehose-source-arn",
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/web",
        ),
    ];
    let before = chrono::Utc::now().timestamp_millis();
    let r = post(a, "/v1/firehose", &headers, gzip(&body))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["requestId", "timestamp"]);
    assert_eq!(v["requestId"], id);
    let ts = v["timestamp"].as_i64().unwrap();
    assert!(ts >= before && ts <= chrono::Utc::now().timestamp_millis());
    // Every record is forwarded, the one that is not JSON too (ingest quarantines it).
    let got = s.records().await;
    let mut texts: Vec<&str> = got.keys().map(String::as_str).collect();
    texts.sort_unstable();
    let mut want = vec![
        event(0),
        event(1),
        event(2),
        "plain text, not JSON".to_string(),
    ];
    want.sort_unstable();
    assert_eq!(texts, want);

    // Refusals in Firehose's own format, with the request id.
    let mut wrong = headers;
    wrong[4] = ("x-amz-firehose-access-key", "not-the-key-00000000");
    let r = post(a, "/v1/firehose", &wrong, gzip(&body)).await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["requestId"], id);
    assert!(r.json()["errorMessage"]
        .as_str()
        .unwrap()
        .contains("not valid"));
    let r = post(a, "/v1/firehose", &headers, gzip(b"{\"records\": 5}"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["requestId"], id);
    assert!(r.json()["timestamp"].is_i64());

    // A delivery the stream cannot take is an error Firehose retries (same id).
    s.proxy.as_ref().unwrap().set_rates(Rates {
        entry_fail: 1.0,
        ..Rates::NONE
    });
    let r = post(a, "/v1/firehose", &headers, gzip(&body))
        .await
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["requestId"], id);
    assert!(r.json()["errorMessage"]
        .as_str()
        .unwrap()
        .contains("4 of 4 records were not written"));
    assert_eq!(s.count().await, 4);
}

#[tokio::test]
async fn a_rotated_key_takes_effect_without_a_cold_start() {
    let s = stack(None, |c| c.keys_ttl = Duration::ZERO).await;
    let a = s.addr();
    assert_eq!(
        post(a, "/v1/events", &[AUTH], ndjson(0..1))
            .await
            .unwrap()
            .status,
        200
    );
    let new_key = "rotated-key-00000000000000";
    s.direct
        .secrets
        .put_secret_value()
        .secret_id(&s.secret)
        .secret_string(json!({ "api_key": new_key }).to_string())
        .send()
        .await
        .expect("rotate");
    assert_eq!(
        post(a, "/v1/events", &[AUTH], ndjson(1..2))
            .await
            .unwrap()
            .status,
        403
    );
    let r = post(a, "/v1/events", &[("x-api-key", new_key)], ndjson(1..2))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.count().await, 2);
}

#[tokio::test]
async fn the_sample_events_are_what_api_gateway_sends_and_are_written() {
    let direct = Aws::local().await;
    let (stream, secret) = stream_and_secret(
        &direct,
        1,
        json!({ "api_key": "sluice-local-api-key-0001" }),
    )
    .await;
    let h = handler(&direct, local_config(&stream, &secret, None))
        .await
        .expect("handler");
    for (name, status, written) in [("http-events.json", 200, 2), ("http-firehose.json", 200, 4)] {
        let event: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(sluice_local::events::sample(name)).expect(name);
        let req = http_collector::event::request_of(event).expect(name);
        let resp = h.handle(&req, None).await;
        assert_eq!(resp.status, status, "{name}: {}", resp.body);
        let n = read_stream(&direct.kinesis, &stream)
            .await
            .expect("read")
            .len();
        assert_eq!(n, written, "{name}");
    }
}
