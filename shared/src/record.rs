//! Decoding and validation of stream records, independent of the Lambda event types.
//!
//! A stream record (one Kinesis record) holds either a KPL aggregate or JSON text: one object,
//! or several objects separated by whitespace/newlines (NDJSON). [`split_user_records`] turns it
//! into user records, each either a parsed JSON object with its exact source text or a
//! [`Reject`] that says why not. [`validate`] then routes an object to its dataset, checks it
//! against the schema and finds its event time. Nothing here echoes payload values into reasons.

use crate::config::{Dataset, FieldType, PipelineConfig, RESERVED_PREFIX};
use crate::jsontext;
use crate::kpl;
use crate::lake::quarantine::RejectKind;
use crate::object::{self, coerce_raw, raw_type_name, Doc, Object};
use crate::schema::{CoerceError, Typed, MIN_EVENT_TIME_MICROS};

/// A classified rejection with a readable reason (no payload values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The classification, written to the quarantine line as `error_kind`.
    pub kind: RejectKind,
    /// Why, in words; written to the quarantine line as `reason`.
    pub reason: String,
    /// The dataset the record was routed to, when routing succeeded.
    pub dataset: Option<String>,
}

impl Reject {
    fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Reject {
            kind,
            reason: reason.into(),
            dataset: None,
        }
    }
}

/// One user record decoded from a stream record.
#[derive(Debug)]
pub struct UserRecord<'a> {
    /// Position inside the stream record (KPL sub-record index, or NDJSON line index).
    pub sub: u32,
    /// Partition key (a KPL sub-record's own, else the stream record's).
    pub partition_key: &'a str,
    /// The bytes this user record came from (kept for the quarantine).
    pub payload: &'a [u8],
    /// The parsed object and its exact JSON text, or why it is not one.
    pub decoded: Result<(Object<'a>, &'a str), Reject>,
}

/// Owned sub-records of a KPL aggregate; [`split_user_records`] borrows from it.
#[derive(Debug, Default)]
pub struct Deaggregated {
    records: Vec<kpl::UserRecord>,
}

/// Expands a stream record into KPL sub-records when it is an aggregate.
///
/// Returns `Ok(None)` for a plain record, `Ok(Some(..))` for an aggregate, or the reason a
/// record that starts with the KPL magic is not a valid aggregate.
pub fn deaggregate(data: &[u8]) -> Result<Option<Deaggregated>, Reject> {
    if !kpl::is_aggregate(data) {
        return Ok(None);
    }
    kpl::deaggregate(data)
        .map(|records| Some(Deaggregated { records }))
        .map_err(|e| Reject::new(RejectKind::CorruptAggregate, e.to_string()))
}

/// Splits one stream record (already de-aggregated) into user records.
///
/// `agg` is the result of [`deaggregate`] for `data`; each KPL sub-record may itself hold
/// several JSON objects, numbered consecutively in `sub`.
pub fn split_user_records<'a>(
    data: &'a [u8],
    partition_key: &'a str,
    agg: Option<&'a Deaggregated>,
    max_record_bytes: usize,
    out: &mut Vec<UserRecord<'a>>,
) {
    let mut sub = 0u32;
    match agg {
        None => split_json(data, partition_key, max_record_bytes, &mut sub, out),
        Some(d) => {
            for r in &d.records {
                split_json(&r.data, &r.partition_key, max_record_bytes, &mut sub, out);
            }
        }
    }
}

fn split_json<'a>(
    data: &'a [u8],
    partition_key: &'a str,
    max_record_bytes: usize,
    sub: &mut u32,
    out: &mut Vec<UserRecord<'a>>,
) {
    let mut push = |decoded, payload: &'a [u8], sub: &mut u32| {
        out.push(UserRecord {
            sub: *sub,
            partition_key,
            payload,
            decoded,
        });
        *sub += 1;
    };
    if data.len() > max_record_bytes {
        let r = Reject::new(
            RejectKind::Oversized,
            format!(
                "record is {} bytes, the limit is {max_record_bytes}",
                data.len()
            ),
        );
        return push(Err(r), data, sub);
    }
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            let r = Reject::new(
                RejectKind::InvalidUtf8,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            );
            return push(Err(r), data, sub);
        }
    };
    if text.trim().is_empty() {
        let r = Reject::new(RejectKind::InvalidJson, "record is empty");
        return push(Err(r), data, sub);
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Doc<'a>>();
    let mut start = 0usize;
    loop {
        let item = stream.next();
        let end = stream.byte_offset();
        let leading = text[start..].len() - text[start..].trim_start().len();
        let begin = (start + leading).min(end);
        match item {
            None => break,
            Some(Ok(Doc::Object(obj))) => {
                let decoded = check_text(&text[begin..end]).map(|()| (obj, &text[begin..end]));
                push(decoded, &data[begin..end], sub);
            }
            Some(Ok(Doc::Other(found))) => {
                let r = Reject::new(
                    RejectKind::NotAnObject,
                    format!("expected a JSON object, found {found}"),
                );
                push(Err(r), &data[begin..end], sub);
            }
            Some(Err(e)) => {
                // The rest of the record cannot be resynchronised: quarantine it as one.
                let r = Reject::new(
                    RejectKind::InvalidJson,
                    format!(
                        "invalid JSON at line {} column {}: {}",
                        e.line(),
                        e.column(),
                        classify_json_error(&e)
                    ),
                );
                push(Err(r), &data[begin..], sub);
                break;
            }
        }
        start = end;
    }
}

/// The whole-record rule of both stages: a record every raw-zone reader can read
/// ([`jsontext::check_document`]).
pub fn check_text(text: &str) -> Result<(), Reject> {
    jsontext::check_document(text).map_err(|p| {
        let kind = match p {
            jsontext::TextProblem::TooDeep => RejectKind::TooDeep,
            jsontext::TextProblem::LoneSurrogate | jsontext::TextProblem::NumberOutOfRange => {
                RejectKind::InvalidJson
            }
            jsontext::TextProblem::Nul => RejectKind::UnstorableValue,
        };
        Reject::new(kind, format!("record {p}"))
    })
}

fn classify_json_error(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data => "unrepresentable value",
        Category::Io => "read error",
    }
}

/// A record that passed validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Valid<'c> {
    /// The dataset the record was routed to.
    pub dataset: &'c Dataset,
    /// Event time in UTC epoch microseconds (arrival time when the dataset has no event time).
    pub event_micros: i64,
}

/// Routes and validates one JSON object against the pipeline config.
pub fn validate<'c>(
    cfg: &'c PipelineConfig,
    obj: &Object<'_>,
    arrival_micros: i64,
) -> Result<Valid<'c>, Reject> {
    let missing = || {
        Reject::new(
            RejectKind::Unrouted,
            format!("routing field {:?} is missing", cfg.routing_field),
        )
    };
    let raw_route = obj.get(&cfg.routing_field).ok_or_else(missing)?;
    let route = match coerce_raw(FieldType::String, raw_route) {
        Ok(Typed::Str(s)) => s,
        Ok(Typed::Null) => return Err(missing()),
        _ => {
            return Err(Reject::new(
                RejectKind::Unrouted,
                format!(
                    "routing field {:?} is {}, expected a string",
                    cfg.routing_field,
                    raw_type_name(raw_route)
                ),
            ))
        }
    };
    let route: &str = &route;
    let Some(dataset) = cfg.route(route) else {
        let shown = if route.len() <= 64 && crate::lake::keys::is_safe_component(route) {
            format!(" {route:?}")
        } else {
            String::new()
        };
        return Err(Reject::new(
            RejectKind::UnknownDataset,
            format!("routing value{shown} matches no dataset"),
        ));
    };
    let fail = |kind, reason: String| Reject {
        kind,
        reason,
        dataset: Some(dataset.name.clone()),
    };
    if obj.keys().any(|k| k.starts_with(RESERVED_PREFIX)) {
        return Err(fail(
            RejectKind::ReservedField,
            format!("fields starting with {RESERVED_PREFIX} are reserved"),
        ));
    }
    let mut event_micros = arrival_micros;
    for (i, f) in dataset.fields.iter().enumerate() {
        let v = obj.get_path(&f.name).filter(|v| !object::is_null(v));
        let Some(v) = v else {
            if f.required {
                return Err(fail(
                    RejectKind::MissingField,
                    format!("required field {:?} is missing or null", f.name),
                ));
            }
            continue;
        };
        let is_event_time = dataset.event_time == Some(i);
        match coerce_raw(f.ty, v) {
            Ok(Typed::Timestamp(t)) if is_event_time => {
                let limit = arrival_micros.saturating_add(cfg.max_future_skew_secs * 1_000_000);
                if t < MIN_EVENT_TIME_MICROS || t > limit {
                    return Err(fail(
                        RejectKind::EventTimeOutOfRange,
                        format!(
                            "event time field {:?} is before 2000-01-01 or more than {} s after arrival",
                            f.name, cfg.max_future_skew_secs
                        ),
                    ));
                }
                event_micros = t;
            }
            // Empty text is null for non-string types: a required field must still be there.
            Ok(Typed::Null) if f.required => {
                return Err(fail(
                    RejectKind::MissingField,
                    format!("required field {:?} is missing or null", f.name),
                ))
            }
            Ok(_) => {}
            Err(e) if is_event_time => {
                return Err(fail(
                    RejectKind::BadEventTime,
                    format!("event time field {:?}: {e}", f.name),
                ))
            }
            Err(e @ CoerceError::Unstorable { .. }) => {
                return Err(fail(
                    RejectKind::UnstorableValue,
                    format!("field {:?}: {e}", f.name),
                ))
            }
            Err(e @ (CoerceError::WrongType { .. } | CoerceError::Unparseable { .. })) => {
                return Err(fail(
                    RejectKind::WrongType,
                    format!("field {:?}: {e}", f.name),
                ))
            }
        }
    }
    Ok(Valid {
        dataset,
        event_micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
        [pipeline]
        routing_field = "type"
        max_record_bytes = 200
        max_future_skew_secs = 60
        [[dataset]]
        name = "clicks"
        route = "click"
        key = "id"
        event_time = "ts"
        fields = [
          { name = "id", type = "string", required = true },
          { name = "ts", type = "timestamp", required = true },
          { name = "n", type = "int" },
          { name = "extra", type = "json" },
        ]
    "#;
    const ARRIVAL: i64 = 1_763_806_500_000_000; // 2025-11-22T10:15:00Z

    fn cfg() -> PipelineConfig {
        PipelineConfig::from_toml(CFG).expect("config")
    }

    fn obj(text: &str) -> Object<'_> {
        match object::parse(text).expect("json") {
            Doc::Object(o) => o,
            Doc::Other(t) => panic!("not an object: {t}"),
        }
    }

    fn split(data: &[u8]) -> Vec<UserRecord<'_>> {
        let mut out = Vec::new();
        split_user_records(data, "pk", None, 200, &mut out);
        out
    }

    fn kind_of(obj: &str) -> Result<i64, RejectKind> {
        let c = cfg();
        validate(&c, &self::obj(obj), ARRIVAL)
            .map(|v| v.event_micros)
            .map_err(|r| r.kind)
    }

    #[test]
    fn splits_single_pretty_and_ndjson() {
        let one = split(b"{\n  \"a\": 1\n}\n");
        assert_eq!(one.len(), 1);
        let (_, text) = one[0].decoded.as_ref().expect("ok");
        assert_eq!(*text, "{\n  \"a\": 1\n}");
        let many = split(b"{\"a\":1}\n{\"a\":2}\r\n  {\"a\":3}");
        assert_eq!(many.len(), 3);
        assert_eq!(many[2].sub, 2);
        assert_eq!(many[2].decoded.as_ref().expect("ok").1, "{\"a\":3}");
    }

    #[test]
    fn bad_records_are_classified() {
        let k = |d: &[u8]| split(d).remove(0).decoded.map(|_| ()).map_err(|r| r.kind);
        assert_eq!(k(b"\xff\xfe{}"), Err(RejectKind::InvalidUtf8));
        assert_eq!(k(b"{\"a\":"), Err(RejectKind::InvalidJson));
        assert_eq!(k(b"not json"), Err(RejectKind::InvalidJson));
        assert_eq!(k(b"   "), Err(RejectKind::InvalidJson));
        assert_eq!(k(b"[1,2]"), Err(RejectKind::NotAnObject));
        assert_eq!(k(b"\"s\""), Err(RejectKind::NotAnObject));
        assert_eq!(k(&[b' '; 201]), Err(RejectKind::Oversized));
        assert_eq!(k(br#"{"s":"\ud800"}"#), Err(RejectKind::InvalidJson));
        assert_eq!(k(br#"{"n":[1e400]}"#), Err(RejectKind::InvalidJson));
        let deep = format!(r#"{{"j":{}{}}}"#, "[".repeat(120), "]".repeat(120));
        let mut out = Vec::new();
        split_user_records(deep.as_bytes(), "pk", None, 10_000, &mut out);
        assert_eq!(
            out[0].decoded.as_ref().map(|_| ()).map_err(|r| r.kind),
            Err(RejectKind::TooDeep)
        );
        // A bad line after a good one: the good one is kept, the rest quarantined.
        let mixed = split(b"{\"a\":1}\n{oops\n{\"a\":3}");
        assert_eq!(mixed.len(), 2);
        assert!(mixed[0].decoded.is_ok());
        assert_eq!(mixed[1].payload, b"{oops\n{\"a\":3}");
    }

    #[test]
    fn kpl_sub_records_keep_their_partition_keys() {
        let agg = kpl::aggregate(&[
            kpl::UserRecord {
                partition_key: "p1".into(),
                data: b"{\"a\":1}".to_vec(),
            },
            kpl::UserRecord {
                partition_key: "p2".into(),
                data: b"{\"a\":2}\n{\"a\":3}".to_vec(),
            },
        ]);
        let d = deaggregate(&agg).expect("valid").expect("aggregate");
        let mut out = Vec::new();
        split_user_records(&agg, "outer", Some(&d), 200, &mut out);
        let got: Vec<(u32, &str)> = out.iter().map(|r| (r.sub, r.partition_key)).collect();
        assert_eq!(got, vec![(0, "p1"), (1, "p2"), (2, "p2")]);
        let mut bad = agg.clone();
        bad[6] ^= 1;
        assert_eq!(
            deaggregate(&bad).map(|_| ()).map_err(|r| r.kind),
            Err(RejectKind::CorruptAggregate)
        );
        assert!(deaggregate(b"{}").expect("plain").is_none());
    }

    #[test]
    fn validation_outcomes() {
        let ok = r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","n":3}"#;
        assert_eq!(kind_of(ok), Ok(1_763_805_600_000_000));
        assert_eq!(kind_of(r#"{"id":"a"}"#), Err(RejectKind::Unrouted));
        assert_eq!(kind_of(r#"{"type":7}"#), Err(RejectKind::Unrouted));
        assert_eq!(
            kind_of(r#"{"type":"view"}"#),
            Err(RejectKind::UnknownDataset)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","ts":"2025-11-22T10:00:00Z"}"#),
            Err(RejectKind::MissingField)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":null,"ts":"2025-11-22T10:00:00Z"}"#),
            Err(RejectKind::MissingField)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","n":"x"}"#),
            Err(RejectKind::WrongType)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"soon"}"#),
            Err(RejectKind::BadEventTime)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"1999-12-31T23:59:59Z"}"#),
            Err(RejectKind::EventTimeOutOfRange)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:16:01Z"}"#),
            Err(RejectKind::EventTimeOutOfRange)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:16:00Z"}"#),
            Ok(ARRIVAL + 60_000_000)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","_sluice":{}}"#),
            Err(RejectKind::ReservedField)
        );
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","extra":[1,{"b":2}]}"#),
            Ok(1_763_805_600_000_000)
        );
        // What transform would refuse is refused here too.
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a\u0000","ts":"2025-11-22T10:00:00Z"}"#),
            Err(RejectKind::UnstorableValue)
        );
        assert_eq!(
            kind_of(
                r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","extra":{"k":"\u0000"}}"#
            ),
            Err(RejectKind::UnstorableValue)
        );
        assert_eq!(
            kind_of(
                r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","n":9007199254740993.0}"#
            ),
            Err(RejectKind::WrongType)
        );
        // Empty text is null for a timestamp: a required one is missing, as s3-transform says.
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":""}"#),
            Err(RejectKind::MissingField)
        );
        // NUL outside the declared fields never reaches a sink: kept.
        assert_eq!(
            kind_of(r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","note":"\u0000"}"#),
            Ok(1_763_805_600_000_000)
        );
    }

    #[test]
    fn reasons_do_not_echo_values() {
        let c = cfg();
        let map =
            obj(r#"{"type":"click","id":"a","ts":"2025-11-22T10:00:00Z","n":"alice@example.com"}"#);
        let r = validate(&c, &map, ARRIVAL).expect_err("rejected");
        assert!(!r.reason.contains("alice"), "{}", r.reason);
        assert_eq!(r.dataset.as_deref(), Some("clicks"));
        let map = obj(r#"{"type":"alice@example.com"}"#);
        let r = validate(&c, &map, ARRIVAL).expect_err("rejected");
        assert!(!r.reason.contains("alice"), "{}", r.reason);
    }
}
