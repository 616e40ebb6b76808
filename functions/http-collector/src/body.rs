//! Request bodies: one JSON object, a JSON array of objects, or NDJSON, optionally gzip.
//!
//! [`decode`] undoes `Content-Encoding: gzip` under a cap on the decoded size; [`split`] cuts
//! the decoded body into records, each either accepted as it was sent (its exact text) or
//! rejected with a reason. A record is accepted when it is one JSON object, valid UTF-8, at most
//! [`Limits::max_record`] bytes, and passes the pipeline's one validity rule
//! ([`sluice_core::jsontext::check_document`]); so a record the door accepts is never refused
//! by kinesis-ingest for its syntax. Reasons name positions and rules, never payload bytes.
//!
//! Record indexes count what the client sent: the element of a JSON array, or the non-blank
//! line of NDJSON, from 0.

use std::io::Read;

use serde_json::value::RawValue;
use sluice_core::jsontext::check_document;
use sluice_core::object::{parse_slice, Doc};

/// The largest Kinesis record: data and partition key together (1 MiB).
pub const KINESIS_MAX_RECORD: usize = 1024 * 1024;
/// The longest partition key Kinesis accepts (256 characters; bytes here, which is stricter).
pub const MAX_PARTITION_KEY: usize = 256;

/// Bounds on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body as received (after API Gateway's base64, before gzip).
    pub max_body: usize,
    /// Largest body after gzip decoding.
    pub max_decoded: usize,
    /// Largest record: room for the longest partition key within Kinesis' 1 MiB.
    pub max_record: usize,
    /// Most records in one request.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 6 * 1024 * 1024,
            max_decoded: 64 * 1024 * 1024,
            max_record: KINESIS_MAX_RECORD - MAX_PARTITION_KEY,
            max_records: 10_000,
        }
    }
}

/// How the body is framed, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`, `text/plain` or none: a JSON document (object or array), or NDJSON
    /// when the body is more than one document.
    Json,
    /// `application/x-ndjson`, `application/jsonl` and their aliases: one object per line.
    Lines,
}

/// A request the collector cannot read at all (the whole request is answered with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// No body, or only whitespace.
    #[error("the request body is empty")]
    Empty,
    /// Larger than a limit (before or after decoding).
    #[error("the request body is larger than {limit} bytes{what}")]
    TooLarge { limit: usize, what: &'static str },
    /// More records than [`Limits::max_records`].
    #[error("the request has more than {0} records")]
    TooManyRecords(usize),
    /// A `Content-Type` that is not JSON or NDJSON.
    #[error("unsupported content type {0:?} (send application/json or application/x-ndjson)")]
    ContentType(String),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported content encoding {0:?} (send gzip or no encoding)")]
    ContentEncoding(String),
    /// The gzip stream is not valid.
    #[error("the body is not valid gzip: {0}")]
    Gzip(String),
    /// API Gateway's base64 body is not valid base64.
    #[error("the body is not valid base64")]
    Base64,
    /// A JSON array body that does not parse as an array.
    #[error("the body is not a valid JSON array: {0}")]
    Array(String),
    /// A body with no record in it (e.g. `[]`).
    #[error("the request has no records")]
    NoRecords,
}

impl BodyError {
    /// The HTTP status that answers it.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge { .. } | BodyError::TooManyRecords(_) => 413,
            BodyError::ContentType(_) | BodyError::ContentEncoding(_) => 415,
            _ => 400,
        }
    }
}

/// One record of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    /// The record's bytes as sent (an array element's text, or a line without its `\r`).
    pub bytes: &'a [u8],
    /// Why it is refused, or `None` when it is accepted.
    pub problem: Option<String>,
    /// The JSON text of the partition-key field's value, found while the record was checked
    /// (accepted records that have the field only).
    pub key: Option<&'a str>,
}

impl Item<'_> {
    /// Whether the record is accepted.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The framing a `Content-Type` asks for (parameters such as `charset` are ignored).
pub fn framing(content_type: Option<&str>) -> Result<Framing, BodyError> {
    let Some(ct) = content_type else {
        return Ok(Framing::Json);
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "" | "application/json" | "text/json" | "text/plain" => Ok(Framing::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
        | "application/json-seq" => Ok(Framing::Lines),
        _ => Err(BodyError::ContentType(truncate(ct, 100))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Undoes `Content-Encoding` (gzip, several members allowed, or none), checking both sizes.
pub fn decode(
    body: Vec<u8>,
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Vec<u8>, BodyError> {
    if body.len() > limits.max_body {
        return Err(BodyError::TooLarge {
            limit: limits.max_body,
            what: "",
        });
    }
    let enc = content_encoding.unwrap_or("").trim().to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let cap = limits.max_decoded as u64;
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limits.max_decoded));
            let mut reader = flate2::read::MultiGzDecoder::new(&body[..]).take(cap + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Gzip(e.to_string()))?;
            if out.len() as u64 > cap {
                return Err(BodyError::TooLarge {
                    limit: limits.max_decoded,
                    what: " once decompressed",
                });
            }
            Ok(out)
        }
        _ => Err(BodyError::ContentEncoding(truncate(&enc, 40))),
    }
}

/// The records of a decoded body.
pub fn split<'a>(
    body: &'a [u8],
    framing: Framing,
    limits: &Limits,
    key_field: Option<&str>,
) -> Result<Vec<Item<'a>>, BodyError> {
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(BodyError::Empty);
    };
    let items = match (framing, body[first]) {
        (Framing::Json, b'[') => array(body, limits, key_field)?,
        (Framing::Json, _) => match serde_json::from_slice::<&RawValue>(body) {
            // One document spanning the whole body (perhaps pretty-printed).
            Ok(raw) => vec![record(raw.get().as_bytes(), limits, key_field)],
            Err(_) => lines(body, limits, key_field)?,
        },
        (Framing::Lines, _) => lines(body, limits, key_field)?,
    };
    if items.is_empty() {
        return Err(BodyError::NoRecords);
    }
    Ok(items)
}

fn array<'a>(
    body: &'a [u8],
    limits: &Limits,
    key_field: Option<&str>,
) -> Result<Vec<Item<'a>>, BodyError> {
    // Element texts are borrowed from the body, so it must be UTF-8 as a whole.
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError::Array(format!("not valid UTF-8 at byte {}", e.valid_up_to())))?;
    let elements: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| BodyError::Array(e.to_string()))?;
    if elements.len() > limits.max_records {
        return Err(BodyError::TooManyRecords(limits.max_records));
    }
    Ok(elements
        .into_iter()
        .map(|raw| record(raw.get().as_bytes(), limits, key_field))
        .collect())
}

fn lines<'a>(
    body: &'a [u8],
    limits: &Limits,
    key_field: Option<&str>,
) -> Result<Vec<Item<'a>>, BodyError> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let line = &body[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if out.len() == limits.max_records {
            return Err(BodyError::TooManyRecords(limits.max_records));
        }
        out.push(record(line, limits, key_field));
    }
    Ok(out)
}

/// Checks one record's bytes; with `key_field`, also finds that field's value (a dotted path).
pub fn record<'a>(bytes: &'a [u8], limits: &Limits, key_field: Option<&str>) -> Item<'a> {
    match check(bytes, limits, key_field) {
        Ok(key) => Item {
            bytes,
            problem: None,
            key,
        },
        Err(p) => Item {
            bytes,
            problem: Some(p),
            key: None,
        },
    }
}

fn check<'a>(
    bytes: &'a [u8],
    limits: &Limits,
    key_field: Option<&str>,
) -> Result<Option<&'a str>, String> {
    if bytes.len() > limits.max_record {
        return Err(format!(
            "record is {} bytes, more than {}",
            bytes.len(),
            limits.max_record
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not valid UTF-8 at byte {}", e.valid_up_to()))?;
    let key = match parse_slice(bytes) {
        Ok(Doc::Object(o)) => key_field.and_then(|f| o.get_path(f)).map(RawValue::get),
        Ok(Doc::Other(kind)) => return Err(format!("not a JSON object (a JSON {kind})")),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    check_document(text).map_err(|p| p.to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match &i.problem {
                None => String::from_utf8_lossy(i.bytes).into_owned(),
                Some(p) => format!("ERR {p}"),
            })
            .collect()
    }

    #[test]
    fn object_array_and_lines() {
        let l = Limits::default();
        let one = split(b" {\n \"a\": 1\n}\n", Framing::Json, &l, None).unwrap();
        assert_eq!(ok(&one), ["{\n \"a\": 1\n}"]);
        let arr = split(br#"[{"a":1}, {"b":[2]} ,3]"#, Framing::Json, &l, None).unwrap();
        assert_eq!(
            ok(&arr),
            [
                r#"{"a":1}"#,
                r#"{"b":[2]}"#,
                "ERR not a JSON object (a JSON integer)"
            ]
        );
        let nd = split(
            b"{\"a\":1}\r\n\n  \n{\"b\":2}\nnope\n",
            Framing::Json,
            &l,
            None,
        )
        .unwrap();
        assert_eq!(ok(&nd)[..2], [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert!(ok(&nd)[2].starts_with("ERR not valid JSON: expected ident at line 1"));
        // Explicit NDJSON never reads a multi-line document.
        let nd = split(b"{\n\"a\":1}", Framing::Lines, &l, None).unwrap();
        assert_eq!(nd.len(), 2);
        assert!(nd.iter().all(|i| !i.is_ok()));
    }

    #[test]
    fn refusals() {
        let l = Limits {
            max_record: 20,
            max_records: 2,
            ..Limits::default()
        };
        assert_eq!(
            split(b"  \n", Framing::Json, &l, None),
            Err(BodyError::Empty)
        );
        assert_eq!(
            split(b"[]", Framing::Json, &l, None),
            Err(BodyError::NoRecords)
        );
        assert_eq!(
            split(b"{}\n{}\n{}", Framing::Lines, &l, None),
            Err(BodyError::TooManyRecords(2))
        );
        assert!(matches!(
            split(b"[{}, ", Framing::Json, &l, None),
            Err(BodyError::Array(_))
        ));
        let items = split(
            b"{\"a\":\"0123456789012345\"}\n{\"a\":\"\xff\"}",
            Framing::Lines,
            &l,
            None,
        )
        .unwrap();
        assert_eq!(
            ok(&items),
            [
                "ERR record is 24 bytes, more than 20",
                "ERR not valid UTF-8 at byte 6"
            ]
        );
        let deep = format!("{}1{}", "{\"a\":".repeat(101), "}".repeat(101));
        let items = split(deep.as_bytes(), Framing::Lines, &Limits::default(), None).unwrap();
        assert_eq!(ok(&items), ["ERR nested deeper than 100 levels"]);
        let lone = split(
            br#"{"a":"\ud800"}"#,
            Framing::Lines,
            &Limits::default(),
            None,
        )
        .unwrap();
        assert!(!lone[0].is_ok());
        // fuzz/regressions/collector/crash-8d82aec2...: a number beyond f64 in an array.
        let huge = split(
            b"{}\n{\"b\":[1111111E111111112,3]}",
            Framing::Lines,
            &Limits::default(),
            None,
        )
        .unwrap();
        assert_eq!(
            ok(&huge),
            [
                "{}",
                "ERR contains a number beyond the range of a 64-bit float"
            ]
        );
    }

    #[test]
    fn content_headers() {
        assert_eq!(framing(None), Ok(Framing::Json));
        assert_eq!(
            framing(Some("application/json; charset=utf-8")),
            Ok(Framing::Json)
        );
        assert_eq!(framing(Some("Application/X-NDJSON")), Ok(Framing::Lines));
        assert_eq!(framing(Some("text/html")).unwrap_err().status(), 415);
        let l = Limits {
            max_body: 10,
            max_decoded: 100,
            ..Limits::default()
        };
        assert_eq!(decode(vec![b' '; 11], None, &l).unwrap_err().status(), 413);
        assert_eq!(
            decode(b"x".to_vec(), Some("br"), &l).unwrap_err().status(),
            415
        );
        assert!(matches!(
            decode(b"not gzip".to_vec(), Some("gzip"), &l),
            Err(BodyError::Gzip(_))
        ));
        let gz = sluice_core::ndjson::gzip(&[b'{'; 101], 6).unwrap();
        let l = Limits {
            max_body: 1000,
            ..l
        };
        assert_eq!(decode(gz, Some("gzip"), &l).unwrap_err().status(), 413);
        let gz = sluice_core::ndjson::gzip(b"{}", 6).unwrap();
        assert_eq!(decode(gz, Some("GZIP"), &l).unwrap(), b"{}");
    }
}
