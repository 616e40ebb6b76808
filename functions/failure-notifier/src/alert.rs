//! Composing the alert for one failure (pure): subject, human-readable body, attributes.
//!
//! The body says what failed, when (the failure record's time, never the wall clock), how many
//! records, where the archive is and the exact replay command. It never contains payloads:
//! for async failures only the error type is quoted; the full response is in the archive.

use crate::archive::Archive;
use crate::failure::{function_name_of_arn, Failure};
use crate::sns::{Alert, AttrValue};

/// SNS's limit on subject length.
pub const MAX_SUBJECT: usize = 100;

/// The replay command for an archive.
pub fn replay_command(uri: &str) -> String {
    format!("sluice replay {uri}")
}

/// A subject SNS accepts: printable ASCII, one line, at most [`MAX_SUBJECT`] characters.
fn subject(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect();
    if clean.len() <= MAX_SUBJECT {
        clean
    } else {
        format!("{}...", &clean[..MAX_SUBJECT - 3])
    }
}

fn s(v: &str) -> AttrValue {
    AttrValue::String(v.to_string())
}

/// The alert for a failure whose archive was written to `s3://<bucket>/<archive.key>`.
pub fn compose(failure: &Failure, archive: &Archive, bucket: &str) -> Alert {
    let uri = format!("s3://{bucket}/{}", archive.key);
    match failure {
        Failure::Kinesis(k) => {
            let function = function_name_of_arn(&k.context.function_arn).unwrap_or("unknown");
            let batch = k
                .batch_size
                .map_or_else(|| "unknown".to_string(), |n| n.to_string());
            let missing = match (archive.missing, &archive.missing_reason) {
                (Some(0), None) => "none".to_string(),
                (Some(n), Some(why)) => format!("{n} ({why})"),
                (None, Some(why)) => format!("unknown count ({why})"),
                (n, None) => n.map_or_else(|| "unknown".into(), |n| n.to_string()),
            };
            let body = format!(
                "A Kinesis batch was discarded by Lambda and archived by sluice.\n\n\
                 What failed: {function} gave up on a batch from stream {stream}, shard {shard}\n\
                 Condition:   {condition} (after ~{attempts} invocations)\n\
                 When:        {when} (records arrived {first} .. {last})\n\
                 Records:     {batch} in the batch, {archived} archived, missing: {missing}\n\
                 Sequence:    {start} .. {end}\n\
                 Archive:     {uri}\n\n\
                 Replay (puts the archived records back into {stream} with their partition keys):\n  \
                 {cmd} --dry-run\n  {cmd}\n",
                stream = k.stream,
                shard = k.shard_id,
                condition = k.context.condition,
                attempts = k
                    .context
                    .approximate_invoke_count
                    .map_or_else(|| "?".into(), |n| n.to_string()),
                when = k.timestamp,
                first = k.first_arrival.as_deref().unwrap_or("?"),
                last = k.last_arrival.as_deref().unwrap_or("?"),
                archived = archive.records,
                start = k.start_sequence_number,
                end = k.end_sequence_number,
                cmd = replay_command(&uri),
            );
            let mut attributes = vec![
                ("kind".to_string(), s("kinesis")),
                ("condition".to_string(), s(&k.context.condition)),
                ("function".to_string(), s(function)),
                ("stream".to_string(), s(&k.stream)),
                ("shard".to_string(), s(&k.shard_id)),
                ("records".to_string(), AttrValue::Number(archive.records)),
            ];
            if let Some(n) = archive.missing {
                attributes.push(("records_missing".to_string(), AttrValue::Number(n)));
            }
            Alert {
                subject: subject(&format!(
                    "sluice: {} records of {} dead-lettered ({})",
                    archive.records, k.stream, k.context.condition
                )),
                body,
                attributes,
            }
        }
        Failure::Async(a) => {
            let response = &a.record["responseContext"];
            let error_type = a.record["responsePayload"]["errorType"]
                .as_str()
                .or_else(|| response["functionError"].as_str())
                .unwrap_or("unknown");
            let body = format!(
                "An asynchronous invocation failed every attempt and was archived by sluice.\n\n\
                 What failed: {function} ({arn}), request {request}\n\
                 Condition:   {condition} (after ~{attempts} attempts)\n\
                 When:        {when}\n\
                 Error type:  {error_type} (full response in the archive)\n\
                 Records:     1 event\n\
                 Archive:     {uri}\n\n\
                 Replay (re-invokes {function} asynchronously with the original event):\n  \
                 {cmd} --dry-run\n  {cmd}\n",
                function = a.function,
                arn = a.context.function_arn,
                request = a.context.request_id,
                condition = a.context.condition,
                attempts = a
                    .context
                    .approximate_invoke_count
                    .map_or_else(|| "?".into(), |n| n.to_string()),
                when = a.timestamp,
                cmd = replay_command(&uri),
            );
            Alert {
                subject: subject(&format!(
                    "sluice: {} invocation failed ({})",
                    a.function, a.context.condition
                )),
                body,
                attributes: vec![
                    ("kind".to_string(), s("async")),
                    ("condition".to_string(), s(&a.context.condition)),
                    ("function".to_string(), s(&a.function)),
                    ("records".to_string(), AttrValue::Number(1)),
                ],
            }
        }
        Failure::Unknown { reason } => Alert {
            subject: subject("sluice: unrecognised message on the on-failure queue"),
            body: format!(
                "A message on the on-failure queue was not recognised and was archived verbatim.\n\n\
                 Why:     {reason}\n\
                 Archive: {uri}\n\n\
                 It cannot be replayed automatically; inspect it with:\n  aws s3 cp {uri} -\n"
            ),
            attributes: vec![
                ("kind".to_string(), s("unknown")),
                ("condition".to_string(), s("Unrecognised")),
                ("records".to_string(), AttrValue::Number(1)),
            ],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::unknown_archive;

    #[test]
    fn subjects_are_short_single_line_ascii() {
        let long = "x".repeat(300);
        let s = subject(&format!("a\nb é {long}"));
        assert!(s.len() <= MAX_SUBJECT);
        assert!(s.starts_with("a b   x"));
        assert!(!s.contains('\n'));
    }

    #[test]
    fn unknown_alert() {
        let f = Failure::Unknown {
            reason: "the message body is not JSON".into(),
        };
        let a = unknown_archive("dead-letter/", Some("m-1"), "secret payload");
        let alert = compose(&f, &a, "bucket");
        assert!(alert
            .body
            .contains("s3://bucket/dead-letter/unknown/m-1.txt"));
        assert!(!alert.body.contains("secret"), "never the payload");
        assert_eq!(
            alert.attribute("kind"),
            Some(&AttrValue::String("unknown".into()))
        );
    }
}
