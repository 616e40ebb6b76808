//! failure-notifier and `sluice replay` against real Kinesis, S3, SNS and SQS APIs (moto).
//!
//! Each test creates its own bucket, stream, topic and queue (subscribed to the topic, raw
//! message delivery off), runs the handler on an SQS event exactly as Lambda delivers it (read
//! by the function's edge type, `QueueBatch`), and checks the dead-letter archive, the messages
//! reported for redelivery and the alert received through SQS.
//!
//! moto keeps every record of a stream (no retention trimming), so a trimmed range is simulated
//! by a failure record whose range starts below the shard's first sequence number and whose
//! batch size is larger than what is left, and by a failure record for a stream that no longer
//! exists (the committed sample).

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::kinesis::KinesisEvent;
use failure_notifier::archive::{
    parse_dead_letter, ArchivedRecord, AsyncArchive, DeadLetter, KinesisHeader,
};
use failure_notifier::kinesis::KinesisReader;
use failure_notifier::sns::SnsAlerter;
use failure_notifier::{handle, Handler, QueueBatch};
use serde_json::{json, Value};
use sluice_cli::ports::{KinesisWriter, LambdaInvoker};
use sluice_cli::{replay, ReplayOptions};
use sluice_core::aws::S3Store;
use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_local::events::sample;
use sluice_local::{unique, workspace_root, Aws};

const DL: &str = "dead-letter/";

/// One test's resources.
struct Stack {
    aws: Aws,
    bucket: String,
    topic_arn: String,
    queue_url: String,
}

async fn stack() -> Stack {
    let aws = Aws::local().await;
    let bucket = aws.bucket().await;
    let topic_arn = aws
        .sns
        .create_topic()
        .name(unique("sluice-alerts"))
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = aws
        .sqs
        .create_queue()
        .queue_name(unique("sluice-alerts-inbox"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    aws.sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe queue");
    Stack {
        aws,
        bucket,
        topic_arn,
        queue_url,
    }
}

/// Runs the handler; returns the message ids reported as batch item failures.
async fn notify(st: &Stack, bucket: &str, event: QueueBatch) -> Vec<String> {
    let zones = Zones::default();
    let store = S3Store::new(st.aws.s3.clone(), bucket);
    let reader = KinesisReader::new(st.aws.kinesis.clone());
    let alerter = SnsAlerter::new(st.aws.sns.clone(), &st.topic_arn);
    let ctx = Handler {
        zones: &zones,
        store: &store,
        reader: &reader,
        alerter: &alerter,
    };
    handle(&ctx, event)
        .await
        .expect("every message has an id")
        .failed
}

/// The SNS notifications (envelopes) that reached the subscribed queue.
async fn alerts(st: &Stack) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = st
            .aws
            .sqs
            .receive_message()
            .queue_url(&st.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(serde_json::from_str(m.body().unwrap_or("")).expect("SNS envelope JSON"));
            st.aws
                .sqs
                .delete_message()
                .queue_url(&st.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await
                .expect("delete");
        }
    }
}

fn attr<'a>(envelope: &'a Value, name: &str) -> (&'a str, &'a str) {
    let a = &envelope["MessageAttributes"][name];
    (
        a["Type"].as_str().unwrap_or("<none>"),
        a["Value"].as_str().unwrap_or("<none>"),
    )
}

/// An SQS event holding `bodies`, shaped as Lambda delivers it.
fn sqs_event(bodies: &[(&str, String)]) -> QueueBatch {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763806806100"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sluice-on-failure",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("QueueBatch")
}

fn sample_event(name: &str) -> QueueBatch {
    serde_json::from_value(sample(name)).expect("sample is an QueueBatch")
}

/// A Kinesis on-failure record in AWS's documented shape.
fn kinesis_failure(stream_arn: &str, start: &str, end: &str, batch: u64) -> String {
    json!({
        "requestContext": {
            "requestId": "9d1e6c3a-0b7e-4c55-8f4e-0123456789ab",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:kinesis-ingest",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2025-11-22T10:20:06.021Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": start,
            "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2025-11-22T10:00:00.124Z",
            "approximateArrivalOfLastRecord": "2025-11-22T10:00:00.580Z",
            "batchSize": batch,
            "streamArn": stream_arn
        }
    })
    .to_string()
}

/// Creates a one-shard stream and returns its name and ARN.
async fn stream(aws: &Aws) -> (String, String) {
    let name = unique("sluice-events");
    aws.kinesis
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");
    let arn = aws
        .kinesis
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .expect("describe stream")
        .stream_description_summary()
        .expect("summary")
        .stream_arn()
        .to_string();
    (name, arn)
}

/// Puts records one by one (so their order is known) and returns their sequence numbers.
async fn put(aws: &Aws, stream: &str, records: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut seqs = Vec::new();
    for (pk, data) in records {
        let out = aws
            .kinesis
            .put_record()
            .stream_name(stream)
            .partition_key(pk)
            .data(aws_sdk_kinesis::primitives::Blob::new(data.clone()))
            .send()
            .await
            .expect("put record");
        seqs.push(out.sequence_number().to_string());
    }
    seqs
}

/// Every record of the stream's first shard: (sequence number, partition key, data).
async fn stream_records(aws: &Aws, stream: &str) -> Vec<(String, String, Vec<u8>)> {
    let mut it = aws
        .kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let mut out = Vec::new();
    loop {
        let page = aws
            .kinesis
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .expect("get records");
        if page.records().is_empty() {
            return out;
        }
        out.extend(page.records().iter().map(|r| {
            (
                r.sequence_number().to_string(),
                r.partition_key().unwrap_or_default().to_string(),
                r.data().as_ref().to_vec(),
            )
        }));
        match page.next_shard_iterator() {
            Some(n) => it = n.to_string(),
            None => return out,
        }
    }
}

async fn dead_letter(st: &Stack, key: &str) -> DeadLetter {
    let bytes = st.aws.get(&st.bucket, key).await;
    parse_dead_letter(DL, key, &bytes).expect("a dead letter sluice wrote")
}

fn records_of(dl: DeadLetter) -> (Box<KinesisHeader>, Vec<ArchivedRecord>) {
    match dl {
        DeadLetter::Kinesis { header, records } => (header, records),
        other => panic!("not a Kinesis dead letter: {other:?}"),
    }
}

fn click(i: usize) -> (String, Vec<u8>) {
    (
        format!("user-{i}"),
        json!({"type": "page_view", "event_id": format!("pv-{i}"), "ts": "2025-11-22T09:30:00Z",
               "session_id": "s-1", "url": "https://shop.example.com/"})
        .to_string()
        .into_bytes(),
    )
}

#[tokio::test]
async fn kinesis_failure_archives_exactly_the_range_and_alerts() {
    let st = stack().await;
    let (name, arn) = stream(&st.aws).await;
    let records: Vec<(String, Vec<u8>)> = (0..8).map(click).collect();
    let seqs = put(&st.aws, &name, &records).await;
    let body = kinesis_failure(&arn, &seqs[2], &seqs[5], 4);
    let failures = notify(&st, &st.bucket, sqs_event(&[("m-1", body.clone())])).await;
    assert!(failures.is_empty(), "{failures:?}");

    let key = format!(
        "dead-letter/kinesis/{name}/shardId-000000000000/{}-{}.json.gz",
        seqs[2], seqs[5]
    );
    assert_eq!(st.aws.keys(&st.bucket, "").await, vec![key.clone()]);
    let first_bytes = st.aws.get(&st.bucket, &key).await;
    let (header, archived) = records_of(dead_letter(&st, &key).await);
    assert_eq!(header.stream_arn, arn);
    assert_eq!(header.condition, "RetryAttemptsExhausted");
    assert_eq!(header.failed_at, "2025-11-22T10:20:06.021Z");
    assert_eq!(
        (header.records_archived, header.records_missing),
        (4, Some(0))
    );
    assert_eq!(header.missing_reason, None);
    assert_eq!(archived.len(), 4);
    for (a, i) in archived.iter().zip(2..6) {
        assert_eq!(a.seq, seqs[i]);
        assert_eq!(a.partition_key, records[i].0);
        assert_eq!(a.data().expect("base64"), records[i].1);
        assert!(
            a.arrival.ends_with('Z') && a.arrival.len() == 24,
            "{}",
            a.arrival
        );
    }

    let got = alerts(&st).await;
    assert_eq!(got.len(), 1, "one alert per failure");
    let alert = &got[0];
    let subject = alert["Subject"].as_str().unwrap_or("");
    assert!(
        subject.contains("4 records") && subject.contains(&name),
        "{subject}"
    );
    assert!(subject.len() <= 100);
    let text = alert["Message"].as_str().unwrap_or("");
    let uri = format!("s3://{}/{key}", st.bucket);
    assert!(text.contains(&format!("sluice replay {uri}")), "{text}");
    assert!(text.contains("2025-11-22T10:20:06.021Z"), "{text}");
    assert!(text.contains("4 in the batch, 4 archived"), "{text}");
    assert!(!text.contains("page_view"), "no payloads in alerts");
    assert_eq!(attr(alert, "kind"), ("String", "kinesis"));
    assert_eq!(
        attr(alert, "condition"),
        ("String", "RetryAttemptsExhausted")
    );
    assert_eq!(attr(alert, "stream"), ("String", name.as_str()));
    assert_eq!(attr(alert, "function"), ("String", "kinesis-ingest"));
    assert_eq!(attr(alert, "records"), ("Number", "4"));

    // Redelivery of the same message rewrites the same key with the same bytes.
    let failures = notify(&st, &st.bucket, sqs_event(&[("m-1", body)])).await;
    assert!(failures.is_empty());
    assert_eq!(st.aws.keys(&st.bucket, "").await, vec![key.clone()]);
    assert_eq!(st.aws.get(&st.bucket, &key).await, first_bytes);
}

#[tokio::test]
async fn trimmed_range_reports_the_missing_records() {
    let st = stack().await;
    let (name, arn) = stream(&st.aws).await;
    let records: Vec<(String, Vec<u8>)> = (0..3).map(click).collect();
    let seqs = put(&st.aws, &name, &records).await;
    // A batch of 5 whose first two records are gone: the range starts below the shard's
    // first sequence number (moto does not trim, so this is how trimming looks).
    let failures = notify(
        &st,
        &st.bucket,
        sqs_event(&[("m-trim", kinesis_failure(&arn, "0", &seqs[2], 5))]),
    )
    .await;
    assert!(failures.is_empty());
    let key = format!(
        "dead-letter/kinesis/{name}/shardId-000000000000/0-{}.json.gz",
        seqs[2]
    );
    let (header, archived) = records_of(dead_letter(&st, &key).await);
    assert_eq!(archived.len(), 3);
    assert_eq!(
        (header.records_archived, header.records_missing),
        (3, Some(2))
    );
    let reason = header.missing_reason.unwrap_or_default();
    assert!(
        reason.contains("2 of 5") && reason.contains("no longer in the stream"),
        "{reason}"
    );

    let got = alerts(&st).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attr(&got[0], "records_missing"), ("Number", "2"));
    let text = got[0]["Message"].as_str().unwrap_or("");
    assert!(text.contains("missing: 2 (2 of 5 records"), "{text}");
}

#[tokio::test]
async fn sample_kinesis_failure_of_a_deleted_stream_is_archived_as_unreadable() {
    let st = stack().await;
    // events/failure-kinesis.json names stream sluice-events, which does not exist here.
    let failures = notify(&st, &st.bucket, sample_event("failure-kinesis.json")).await;
    assert!(
        failures.is_empty(),
        "a stream that is gone is not retried forever"
    );
    let key = "dead-letter/kinesis/sluice-events/shardId-000000000000/49590000000000000000000000000000000000000000000000000001-49590000000000000000000000000000000000000000000000000005.json.gz";
    assert_eq!(st.aws.keys(&st.bucket, "").await, vec![key.to_string()]);
    let (header, archived) = records_of(dead_letter(&st, key).await);
    assert!(archived.is_empty());
    assert_eq!(header.records_missing, Some(5));
    assert_eq!(header.request_id, "c9b8fa9f-5a7f-4d2b-af9c-0c604cde93a5");
    let reason = header.missing_reason.unwrap_or_default();
    assert!(reason.contains("ResourceNotFoundException"), "{reason}");
    let got = alerts(&st).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attr(&got[0], "records"), ("Number", "0"));
    assert_eq!(attr(&got[0], "records_missing"), ("Number", "5"));
}

#[tokio::test]
async fn async_failure_sample_is_archived_by_function_and_date() {
    let st = stack().await;
    let event = sample_event("failure-async.json");
    let original: Value =
        serde_json::from_str(event.messages[0].body.as_deref().unwrap_or("")).expect("json body");
    let failures = notify(&st, &st.bucket, event).await;
    assert!(failures.is_empty());
    let key = "dead-letter/s3-transform/dt=2025-11-22/e4b46cbf-b738-4a8e-8880-a18cdf61200e.json";
    assert_eq!(st.aws.keys(&st.bucket, "").await, vec![key.to_string()]);
    let doc: AsyncArchive =
        serde_json::from_slice(&st.aws.get(&st.bucket, key).await).expect("async archive");
    assert_eq!(doc.record, original, "the failure record is kept whole");
    assert_eq!(doc.function, "s3-transform");
    assert_eq!(doc.condition, "RetriesExhausted");
    assert_eq!(doc.approximate_invoke_count, Some(3));

    let got = alerts(&st).await;
    assert_eq!(got.len(), 1);
    let text = got[0]["Message"].as_str().unwrap_or("");
    assert!(
        text.contains("s3-transform") && text.contains("sluice.storage"),
        "{text}"
    );
    assert!(text.contains(&format!("sluice replay s3://{}/{key}", st.bucket)));
    assert!(
        !text.contains("SlowDown"),
        "the error message stays in the archive"
    );
    assert_eq!(attr(&got[0], "kind"), ("String", "async"));
    assert_eq!(attr(&got[0], "function"), ("String", "s3-transform"));
    assert_eq!(attr(&got[0], "condition"), ("String", "RetriesExhausted"));
}

#[tokio::test]
async fn unknown_messages_are_archived_verbatim_and_are_not_failures() {
    let st = stack().await;
    let event = sample_event("failure-unknown.json");
    let bodies: Vec<(String, String)> = event
        .messages
        .iter()
        .map(|m| {
            (
                m.message_id.clone().unwrap_or_default(),
                m.body.clone().unwrap_or_default(),
            )
        })
        .collect();
    let failures = notify(&st, &st.bucket, event).await;
    assert!(failures.is_empty(), "unknown is archived, not retried");
    let keys = st.aws.keys(&st.bucket, "").await;
    assert_eq!(
        keys,
        vec![
            format!("dead-letter/unknown/{}.json", bodies[0].0),
            format!("dead-letter/unknown/{}.txt", bodies[1].0),
        ]
    );
    for (key, (_, body)) in keys.iter().zip(&bodies) {
        assert_eq!(
            &st.aws.get(&st.bucket, key).await,
            body.as_bytes(),
            "verbatim"
        );
        assert_eq!(dead_letter(&st, key).await, DeadLetter::Unknown);
    }
    let got = alerts(&st).await;
    assert_eq!(got.len(), 2);
    for a in &got {
        assert_eq!(attr(a, "kind"), ("String", "unknown"));
        let text = a["Message"].as_str().unwrap_or("");
        assert!(!text.contains("replay me please"), "no payloads in alerts");
    }
}

#[tokio::test]
async fn archive_write_failure_is_a_batch_item_failure() {
    let st = stack().await;
    let missing_bucket = unique("sluice-missing");
    let mut event = sample_event("failure-async.json");
    let unknown = sample_event("failure-unknown.json");
    event.messages.extend(unknown.messages);
    let ids: Vec<String> = event
        .messages
        .iter()
        .map(|m| m.message_id.clone().unwrap_or_default())
        .collect();
    let failures = notify(&st, &missing_bucket, event).await;
    assert_eq!(
        failures, ids,
        "every message whose archive failed is retried"
    );
    assert!(alerts(&st).await.is_empty(), "no alert without an archive");
}

fn opts(uri: &str, dry_run: bool) -> ReplayOptions {
    ReplayOptions {
        uri: uri.to_string(),
        dry_run,
        stream: None,
        function: None,
        dead_letter_prefix: DL.into(),
        force: false,
    }
}

#[tokio::test]
async fn replay_puts_records_back_and_kinesis_ingest_lands_them() {
    let st = stack().await;
    let (name, arn) = stream(&st.aws).await;
    // The clean sample's records: valid events of the demo pipeline's datasets.
    let clean: KinesisEvent =
        serde_json::from_value(sample("kinesis-clean.json")).expect("kinesis sample");
    let records: Vec<(String, Vec<u8>)> = clean
        .records
        .iter()
        .map(|r| (r.kinesis.partition_key.clone(), r.kinesis.data.0.clone()))
        .collect();
    let seqs = put(&st.aws, &name, &records).await;
    let body = kinesis_failure(&arn, &seqs[1], &seqs[3], 3);
    assert!(notify(&st, &st.bucket, sqs_event(&[("m-r", body)]))
        .await
        .is_empty());
    let key = format!(
        "dead-letter/kinesis/{name}/shardId-000000000000/{}-{}.json.gz",
        seqs[1], seqs[3]
    );
    let uri = format!("s3://{}/{key}", st.bucket);

    // A dry run shows the plan and sends nothing (tests in cli/ run the binary itself).
    let writer = KinesisWriter(st.aws.kinesis.clone());
    let invoker = LambdaInvoker(aws_sdk_lambda::Client::new(&st.aws.sdk));
    let dry = replay(&st.aws.s3, &writer, &invoker, &opts(&uri, true))
        .await
        .expect("dry run");
    assert_eq!((dry.sent, dry.calls), (0, 0));
    assert!(
        dry.text
            .contains(&format!("put 3 records into stream {arn}")),
        "{}",
        dry.text
    );
    assert!(
        dry.text
            .contains(&format!("seq {}  partition key {}", seqs[1], records[1].0)),
        "{}",
        dry.text
    );
    assert_eq!(stream_records(&st.aws, &name).await.len(), records.len());

    // Replay; a second replay sends nothing unless forced, and the note says when and where.
    let mut forced = opts(&uri, false);
    forced.force = true;
    for (o, sent) in [(opts(&uri, false), 3), (opts(&uri, false), 0), (forced, 3)] {
        let report = replay(&st.aws.s3, &writer, &invoker, &o)
            .await
            .expect("replay");
        assert_eq!(
            (report.sent, report.calls),
            (sent, sent / 3),
            "{}",
            report.text
        );
        if sent == 0 {
            assert!(
                report.text.contains("already replayed: 1 time(s)")
                    && report.text.contains(&format!("into {arn} (3 sent)")),
                "{}",
                report.text
            );
        }
    }
    let note: sluice_core::lake::dead_letter::ReplayNote = serde_json::from_slice(
        &st.aws
            .get(
                &st.bucket,
                &sluice_core::lake::dead_letter::replayed_key(&key),
            )
            .await,
    )
    .expect("replay note");
    assert_eq!(note.runs.len(), 2);
    assert!(note.runs.iter().all(|r| r.target == arn && r.sent == 3));
    let in_stream = stream_records(&st.aws, &name).await;
    assert_eq!(in_stream.len(), records.len() + 6);
    let replayed: Vec<(String, Vec<u8>)> = in_stream[records.len()..]
        .iter()
        .map(|(_, pk, data)| (pk.clone(), data.clone()))
        .collect();
    let want: Vec<(String, Vec<u8>)> = records[1..4]
        .iter()
        .chain(&records[1..4])
        .cloned()
        .collect();
    assert_eq!(replayed, want, "same bytes, same partition keys");

    // kinesis-ingest drains the stream into the raw zone.
    let cfg = PipelineConfig::from_path(&workspace_root().join("pipeline.toml").to_string_lossy())
        .expect("pipeline.toml");
    let zones = Zones::default();
    let lake = st.aws.bucket().await;
    let store = S3Store::new(st.aws.s3.clone(), &lake);
    let ingest = kinesis_ingest::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        max_concurrency: 4,
    };
    let stats = sluice_local::stream::drain(&st.aws.kinesis, &name, 100, 3, |event| {
        let ingest = &ingest;
        async move { Ok(kinesis_ingest::handle(ingest, event).await?) }
    })
    .await
    .expect("drain");
    assert_eq!(stats.records, records.len() + 6);
    assert!(st.aws.keys(&lake, "quarantine/").await.is_empty());
    let raw = st.aws.json_lines(&lake, "raw/").await;
    assert_eq!(raw.len(), records.len() + 6);
    // Downstream de-duplicates on the record: every original appears, the replayed ones
    // three times (original + two replays) under new sequence numbers, with their keys.
    let mut copies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, line) in &raw {
        let mut v = line.clone();
        let meta = v
            .as_object_mut()
            .and_then(|m| m.remove("_sluice"))
            .unwrap_or_default();
        copies.entry(v.to_string()).or_default().insert(format!(
            "{}|{}",
            meta["seq"].as_str().unwrap_or(""),
            meta["pk"].as_str().unwrap_or("")
        ));
    }
    assert_eq!(copies.len(), records.len(), "no record is lost or altered");
    for (i, (pk, data)) in records.iter().enumerate() {
        let v: Value = serde_json::from_slice(data).expect("json");
        let seen = copies.get(&v.to_string()).expect("record landed");
        let want = if (1..4).contains(&i) { 3 } else { 1 };
        assert_eq!(seen.len(), want, "record {i}");
        assert!(seen.iter().all(|s| s.ends_with(&format!("|{pk}"))));
    }
}

/// Switches moto's Lambda to its Docker-less backend (it stores functions and answers
/// `Invoke` without running them) and creates a function there.
fn create_function(st: &Stack, name: &str) {
    sluice_local::services::moto_function(&st.aws.endpoint, name);
}

#[tokio::test]
async fn async_dead_letter_replay_plans_and_invokes() {
    let st = stack().await;
    let event = sample_event("failure-async.json");
    let original: Value =
        serde_json::from_str(event.messages[0].body.as_deref().unwrap_or("")).expect("json body");
    assert!(notify(&st, &st.bucket, event).await.is_empty());
    let key = "dead-letter/s3-transform/dt=2025-11-22/e4b46cbf-b738-4a8e-8880-a18cdf61200e.json";
    let uri = format!("s3://{}/{key}", st.bucket);

    // The plan: the original event, to the function that failed.
    let bytes = st.aws.get(&st.bucket, key).await;
    let dl = parse_dead_letter(DL, key, &bytes).expect("dead letter");
    match sluice_cli::replay::plan(key, dl, &opts(&uri, true)).expect("plan") {
        sluice_cli::Plan::Async {
            function, payload, ..
        } => {
            assert_eq!(
                function,
                "arn:aws:lambda:us-east-1:123456789012:function:s3-transform:$LATEST"
            );
            let sent: Value = serde_json::from_slice(&payload).expect("payload json");
            assert_eq!(sent, original["requestPayload"], "the original event");
        }
        other => panic!("{other:?}"),
    }

    let writer = KinesisWriter(st.aws.kinesis.clone());
    let invoker = LambdaInvoker(aws_sdk_lambda::Client::new(&st.aws.sdk));
    let dry = replay(&st.aws.s3, &writer, &invoker, &opts(&uri, true))
        .await
        .expect("dry run");
    assert_eq!((dry.sent, dry.calls), (0, 0));
    assert!(
        dry.text.contains("asynchronously (InvocationType=Event)"),
        "{}",
        dry.text
    );

    // The real Invoke call: moto answers 202 for a function it knows, 404 for one it does not.
    // (The 404 comes from moto's default Lambda backend; its Docker-less one, switched to by
    // create_function, answers 202 for any name.)
    let function = unique("s3-transform");
    let mut o = opts(&uri, false);
    o.function = Some(format!("{function}-missing"));
    match replay(&st.aws.s3, &writer, &invoker, &o).await {
        Err(sluice_cli::Error::Invoke {
            code, retryable, ..
        }) => {
            assert_eq!(code, "ResourceNotFoundException");
            assert!(!retryable);
        }
        other => panic!("expected ResourceNotFound: {other:?}"),
    }
    create_function(&st, &function);
    o.function = Some(function.clone());
    let done = replay(&st.aws.s3, &writer, &invoker, &o)
        .await
        .expect("invoke");
    assert_eq!((done.sent, done.calls), (1, 1));
    assert!(done
        .text
        .contains(&format!("invocation of {function} queued")));

    // Unknown dead letters are refused.
    assert!(
        notify(&st, &st.bucket, sample_event("failure-unknown.json"))
            .await
            .is_empty()
    );
    let unknown = st.aws.keys(&st.bucket, "dead-letter/unknown/").await;
    let u = opts(&format!("s3://{}/{}", st.bucket, unknown[0]), true);
    assert!(matches!(
        replay(&st.aws.s3, &writer, &invoker, &u).await,
        Err(sluice_cli::Error::NotReplayable { .. })
    ));
}

/// A PostgreSQL column of another type fails s3-transform loudly (schema_conflict, not
/// retryable, nothing loaded) on every one of Lambda's asynchronous attempts; the on-failure
/// record Lambda then sends reaches failure-notifier, which archives the original event with
/// the error naming table, column and both types, and alerts with the error type and the
/// replay command (error messages stay in the archive, as for every async failure).
#[tokio::test]
async fn a_postgres_schema_conflict_reaches_the_dead_letter_zone_and_an_alert() {
    use s3_transform::warehouse::Postgres;
    use sluice_local::events::{async_failure_json, s3_event_json};
    use sluice_local::invoke::{invoke_async, ATTEMPTS};

    let st = stack().await;
    let pg = sluice_local::shared_postgres();
    let schema = unique("conflict").replace('-', "_");
    let client = pg.client().await.expect("pg client");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".purchases (_sluice_key text PRIMARY KEY, \
             order_id text, amount text, _sluice_source text NOT NULL)"
        ))
        .await
        .expect("create a table of another version");
    let text = std::fs::read_to_string(workspace_root().join("pipeline.toml"))
        .expect("pipeline.toml")
        .replace("schema = \"sluice\"", &format!("schema = \"{schema}\""));
    let cfg = PipelineConfig::from_toml(&text).expect("config");
    let zones = Zones::default();
    let store = S3Store::new(st.aws.s3.clone(), &st.bucket);
    let raw = "raw/purchases/dt=2025-11-22/hr=10/conflict.json";
    let line = r#"{"type":"purchase","order_id":"o-1","ts":"2025-11-22T10:00:00Z","user_id":"u-1","amount":"12.50","currency":"EUR","payment":{"method":"card"}}"#;
    st.aws
        .put(&st.bucket, raw, format!("{line}\n").into_bytes())
        .await;
    let warehouse = Postgres::new(pg.url.parse().expect("url"), None, &schema);
    let hmac = s3_transform::pii::HashKey::new(b"conflict-test-hmac-key-0123456789".to_vec())
        .expect("key");
    let transform = s3_transform::Handler {
        cfg: &cfg,
        zones: &zones,
        store: &store,
        warehouse: &warehouse,
        limits: s3_transform::input::Limits::default(),
        hash_key: Some(&hmac),
    };
    let event = s3_event_json(&st.bucket, raw, line.len() + 1);
    let invoked = invoke_async(std::time::Duration::ZERO, || {
        let input = serde_json::from_value(event.clone()).expect("event");
        let transform = &transform;
        async move { s3_transform::handle(transform, input).await }
    })
    .await;
    assert_eq!(invoked.attempts, ATTEMPTS, "Lambda tries it three times");
    let e = invoked.result.expect_err("amount text vs numeric");
    assert_eq!(e.kind(), "schema_conflict");
    assert!(!e.is_retryable(), "{e}");
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".purchases"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "nothing was loaded into the table of another type");

    let request_id = unique("req");
    let record = async_failure_json(
        "s3-transform",
        &request_id,
        "2025-11-22T10:05:00.000Z",
        &event,
        e.kind(),
        &e.to_string(),
    );
    assert!(
        notify(&st, &st.bucket, sqs_event(&[("m-1", record.to_string())]))
            .await
            .is_empty(),
        "archived and alerted"
    );
    let key = format!("dead-letter/s3-transform/dt=2025-11-22/{request_id}.json");
    let archived: Value = serde_json::from_slice(&st.aws.get(&st.bucket, &key).await)
        .expect("the async archive is JSON");
    assert_eq!(
        archived["record"]["requestPayload"], event,
        "the original event, whole"
    );
    let error = archived["record"]["responsePayload"]["errorMessage"]
        .as_str()
        .unwrap_or("");
    for part in [
        format!("table {schema}.purchases"),
        "column amount".into(),
        "is text in PostgreSQL".into(),
        "numeric(12,2)".into(),
    ] {
        assert!(error.contains(&part), "{part:?} in {error}");
    }
    let got = alerts(&st).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let message = got[0]["Message"].as_str().unwrap_or("");
    let subject = got[0]["Subject"].as_str().unwrap_or("");
    assert!(subject.contains("s3-transform"), "{subject}");
    for part in [
        "Error type:  schema_conflict".to_string(),
        format!("sluice replay s3://{}/{key}", st.bucket),
    ] {
        assert!(message.contains(&part), "{part:?} in {message}");
    }
    assert!(
        !message.contains("12.50"),
        "no payload in the alert: {message}"
    );
}
