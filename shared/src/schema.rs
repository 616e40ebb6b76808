//! Coercion of record values to the schema's types, shared by validation (kinesis-ingest) and
//! typing (s3-transform) so both stages agree on what a valid value is.
//!
//! Accepted inputs per type:
//! - `string`: a JSON string.
//! - `int`: a JSON integer in the i64 range (or a float with no fraction below 2^53 in
//!   magnitude, where every float is an exact integer), or a string of one.
//! - `float`: a JSON number, or a string of one.
//! - `bool`: `true`/`false`, or the strings `"true"`/`"false"`.
//! - `timestamp`: an RFC 3339 string (`2026-11-22T10:15:00.123Z`, any offset), a naive
//!   `YYYY-MM-DD[T ]HH:MM:SS[.f]` taken as UTC, or a number of epoch seconds (|n| < 1e11) or
//!   epoch milliseconds (otherwise).
//! - `date`: a `YYYY-MM-DD` string.
//! - `json`: any JSON value, kept as the producer's JSON text without insignificant whitespace
//!   (numbers, escapes, key order and duplicate keys exactly as sent; see
//!   [`compact_json`]).
//!
//! Values every sink must be able to store (PostgreSQL `text`/`jsonb`/`timestamptz`/`date`,
//! Parquet, Athena) are checked here, so both stages reject them alike
//! ([`CoerceError::Unstorable`]): text or JSON containing U+0000 (PostgreSQL cannot store NUL),
//! and timestamps or dates outside the years 0001–9999.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::config::FieldType;
use crate::jsontext::{self, TextProblem, NUL_REASON};

/// Microseconds since the Unix epoch at 2000-01-01T00:00:00Z: the earliest accepted event time.
pub const MIN_EVENT_TIME_MICROS: i64 = 946_684_800_000_000;
/// Numbers at or above this magnitude are epoch milliseconds, below it epoch seconds.
const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;
/// Unix epoch as a date, for day counts.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A value coerced to its schema type.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    /// Absent or JSON null.
    Null,
    /// A `string` value, without U+0000; borrowed from the input where possible.
    Str(Cow<'a, str>),
    /// An `int` value.
    Int(i64),
    /// A `float` value; coercion only produces finite ones.
    Float(f64),
    /// A `bool` value.
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Compact JSON text.
    Json(Cow<'a, str>),
    /// A `decimal(p,s)` value: its unscaled integer at the field's scale (`12.50` is 1250 at
    /// scale 2).
    Decimal {
        /// The value times 10^scale.
        unscaled: i128,
        /// Digits after the point.
        scale: u8,
    },
}

impl Typed<'_> {
    /// An owned copy, independent of the input it was coerced from.
    pub fn into_owned(self) -> Typed<'static> {
        match self {
            Typed::Null => Typed::Null,
            Typed::Str(s) => Typed::Str(Cow::Owned(s.into_owned())),
            Typed::Int(i) => Typed::Int(i),
            Typed::Float(f) => Typed::Float(f),
            Typed::Bool(b) => Typed::Bool(b),
            Typed::Timestamp(t) => Typed::Timestamp(t),
            Typed::Date(d) => Typed::Date(d),
            Typed::Json(s) => Typed::Json(Cow::Owned(s.into_owned())),
            Typed::Decimal { unscaled, scale } => Typed::Decimal { unscaled, scale },
        }
    }

    /// Text form used for hashing and keys: strings as is, numbers in decimal, timestamps in
    /// RFC 3339, dates as `YYYY-MM-DD`, JSON as compact text; `None` for null.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Typed::Null => None,
            Typed::Str(s) | Typed::Json(s) => Some(s.to_string()),
            Typed::Int(i) => Some(i.to_string()),
            Typed::Float(f) => Some(f.to_string()),
            Typed::Bool(b) => Some(b.to_string()),
            Typed::Timestamp(t) => Some(format_micros(*t)),
            Typed::Decimal { unscaled, scale } => Some(crate::decimal::format(*unscaled, *scale)),
            Typed::Date(d) => Some(
                chrono::NaiveDate::from_num_days_from_ce_opt(d + EPOCH_DAYS_FROM_CE)
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| d.to_string()),
            ),
        }
    }
}

/// Why a value does not fit its declared type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoerceError {
    /// The JSON type cannot represent the declared type.
    WrongType {
        /// The field's declared type.
        expected: FieldType,
        /// The JSON type of the value ([`json_type_name`]), never the value itself.
        found: &'static str,
    },
    /// The text has the right JSON type but does not parse (bad timestamp, out-of-range int...).
    Unparseable {
        /// The field's declared type.
        expected: FieldType,
        /// Why it does not parse, without quoting the value.
        reason: String,
    },
    /// The value is valid JSON of the right type, but a sink cannot store it (NUL in text,
    /// a year outside 0001–9999).
    Unstorable {
        /// The field's declared type.
        expected: FieldType,
        /// What no sink can store, without quoting the value.
        reason: String,
    },
}

impl fmt::Display for CoerceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoerceError::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            CoerceError::Unparseable { expected, reason } => {
                write!(f, "not a valid {expected}: {reason}")
            }
            CoerceError::Unstorable { expected, reason } => {
                write!(f, "a {expected} that cannot be stored: {reason}")
            }
        }
    }
}

/// The JSON type name of a value, for messages (never the value itself: it may be PII).
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn unparseable(expected: FieldType, reason: impl Into<String>) -> CoerceError {
    CoerceError::Unparseable {
        expected,
        reason: reason.into(),
    }
}

fn unstorable(expected: FieldType, reason: impl Into<String>) -> CoerceError {
    CoerceError::Unstorable {
        expected,
        reason: reason.into(),
    }
}

/// Microseconds since the epoch of 0001-01-01T00:00:00Z, the earliest storable timestamp.
pub const MIN_TIMESTAMP_MICROS: i64 = -62_135_596_800_000_000;
/// Microseconds since the epoch of 9999-12-31T23:59:59.999999Z, the latest storable timestamp.
pub const MAX_TIMESTAMP_MICROS: i64 = 253_402_300_799_999_999;
/// Days since the epoch of 0001-01-01 and of 9999-12-31, the storable dates.
const MIN_DATE_DAYS: i32 = -719_162;
const MAX_DATE_DAYS: i32 = 2_932_896;
/// Floats at or beyond this magnitude are not all exact integers (2^53).
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

fn storable_timestamp(micros: i64) -> Result<i64, CoerceError> {
    if (MIN_TIMESTAMP_MICROS..=MAX_TIMESTAMP_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err(unstorable(
            FieldType::Timestamp,
            "outside the years 0001-9999 that every sink can store",
        ))
    }
}

fn storable_date(days: i32) -> Result<Typed<'static>, CoerceError> {
    if (MIN_DATE_DAYS..=MAX_DATE_DAYS).contains(&days) {
        Ok(Typed::Date(days))
    } else {
        Err(unstorable(
            FieldType::Date,
            "outside the years 0001-9999 that every sink can store",
        ))
    }
}

fn storable_str(s: &str) -> Result<Typed<'_>, CoerceError> {
    if s.contains('\0') {
        Err(unstorable(FieldType::String, NUL_REASON))
    } else {
        Ok(Typed::Str(Cow::Borrowed(s)))
    }
}

/// Coerces a JSON value to `ty`. `Null` stays [`Typed::Null`]; requiredness is the caller's.
pub fn coerce(ty: FieldType, v: &Value) -> Result<Typed<'_>, CoerceError> {
    let wrong = || CoerceError::WrongType {
        expected: ty,
        found: json_type_name(v),
    };
    match (ty, v) {
        (_, Value::Null) => Ok(Typed::Null),
        (FieldType::Json, v) => {
            let text = v.to_string();
            if text.contains("\\u0000") {
                Err(unstorable(ty, NUL_REASON))
            } else {
                Ok(Typed::Json(Cow::Owned(text)))
            }
        }
        (FieldType::String, Value::String(s)) => storable_str(s),
        (FieldType::Int, Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Typed::Int(i))
            } else if n.is_u64() {
                Err(unparseable(ty, "out of the 64-bit signed range"))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                float_to_int(f).ok_or_else(|| {
                    unparseable(
                        ty,
                        "has a fractional part, or is a float of 2^53 or more, which cannot be read exactly",
                    )
                })
            }
        }
        (FieldType::Float, Value::Number(n)) => n
            .as_f64()
            .map(Typed::Float)
            .ok_or_else(|| unparseable(ty, "out of range")),
        (FieldType::Bool, Value::Bool(b)) => Ok(Typed::Bool(*b)),
        // serde_json keeps integers exactly; a float here has already been through f64, so
        // the exact path is `object::coerce_raw`, which reads the number's own text.
        (FieldType::Decimal { .. }, Value::Number(n)) => {
            coerce_str(ty, &n.to_string()).map(Typed::into_owned)
        }
        (FieldType::Timestamp, Value::Number(n)) => n
            .as_f64()
            .and_then(epoch_number_to_micros)
            .ok_or_else(|| unparseable(ty, "epoch number out of range"))
            .and_then(storable_timestamp)
            .map(Typed::Timestamp),
        (
            FieldType::Int
            | FieldType::Float
            | FieldType::Bool
            | FieldType::Timestamp
            | FieldType::Date
            | FieldType::Decimal { .. },
            Value::String(s),
        ) => coerce_str(ty, s),
        _ => Err(wrong()),
    }
}

/// Coerces text (a CSV cell, or a JSON string) to `ty`. Empty text is null for non-strings.
pub fn coerce_str(ty: FieldType, s: &str) -> Result<Typed<'_>, CoerceError> {
    if s.is_empty() && ty != FieldType::String {
        return Ok(Typed::Null);
    }
    match ty {
        FieldType::String => storable_str(s),
        FieldType::Int => s
            .trim()
            .parse::<i64>()
            .map(Typed::Int)
            .map_err(|e| unparseable(ty, e.to_string())),
        FieldType::Float => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Typed::Float(f)),
            Ok(_) => Err(unparseable(ty, "not finite")),
            Err(e) => Err(unparseable(ty, e.to_string())),
        },
        FieldType::Bool => match s.trim() {
            "true" | "TRUE" | "True" => Ok(Typed::Bool(true)),
            "false" | "FALSE" | "False" => Ok(Typed::Bool(false)),
            _ => Err(unparseable(ty, "expected true or false")),
        },
        FieldType::Timestamp => parse_timestamp(s)
            .and_then(storable_timestamp)
            .map(Typed::Timestamp),
        FieldType::Date => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|e| unparseable(ty, e.to_string()))
            .and_then(|d| storable_date(days_since_epoch(d))),
        FieldType::Json => json_text(s).map(Typed::Json),
        FieldType::Decimal { precision, scale } => crate::decimal::parse(s, precision, scale)
            .map(|unscaled| Typed::Decimal { unscaled, scale })
            .map_err(|e| unparseable(ty, e.to_string())),
    }
}

/// The producer's JSON text of a value without insignificant whitespace; numbers, string
/// escapes, key order and duplicate keys are kept exactly, so nothing is rounded or reordered.
/// `text` must already be valid JSON. NUL escapes are unstorable; lone surrogates and nesting
/// beyond [`jsontext::MAX_NESTING`] do not parse.
pub fn compact_json(text: &str) -> Result<String, CoerceError> {
    jsontext::compact(text).map_err(|p| match p {
        TextProblem::Nul => unstorable(FieldType::Json, NUL_REASON),
        other => unparseable(FieldType::Json, other.to_string()),
    })
}

/// Validates text (a CSV cell) as one JSON value and returns its [`compact_json`] form.
pub fn json_text(text: &str) -> Result<Cow<'static, str>, CoerceError> {
    let raw: &serde_json::value::RawValue = serde_json::from_str(text).map_err(|e| {
        unparseable(
            FieldType::Json,
            format!("invalid JSON at column {}", e.column()),
        )
    })?;
    compact_json(raw.get()).map(Cow::Owned)
}

fn float_to_int(f: f64) -> Option<Typed<'static>> {
    // Beyond 2^53 the float the text was read as may already be a different integer
    // (9007199254740993.0 reads as ...992): refuse rather than store another number.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < MAX_EXACT_FLOAT_INT {
        Some(Typed::Int(f as i64))
    } else {
        None
    }
}

fn epoch_number_to_micros(n: f64) -> Option<i64> {
    if !n.is_finite() {
        return None;
    }
    let micros = if n.abs() >= EPOCH_MILLIS_THRESHOLD {
        n * 1_000.0
    } else {
        n * 1_000_000.0
    };
    // Stay within the range chrono can represent and i64 can hold.
    if micros.abs() < 8.0e18 {
        let m = micros.round() as i64;
        micros_to_datetime(m).map(|_| m)
    } else {
        None
    }
}

/// Parses a timestamp string to UTC microseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Result<i64, CoerceError> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(naive.and_utc().timestamp_micros());
        }
    }
    Err(unparseable(
        FieldType::Timestamp,
        "expected RFC 3339 (e.g. 2026-11-22T10:15:00Z) or epoch seconds/milliseconds",
    ))
}

/// Days since 1970-01-01 of a date.
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// A UTC date-time from epoch microseconds, if representable.
pub fn micros_to_datetime(micros: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros(micros).single()
}

/// RFC 3339 text with millisecond precision and `Z`, e.g. `2026-11-22T10:15:00.123Z`.
pub fn format_micros(micros: i64) -> String {
    match micros_to_datetime(micros) {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => micros.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_ints() {
        assert_eq!(
            coerce(FieldType::String, &json!("a")),
            Ok(Typed::Str("a".into()))
        );
        assert!(matches!(
            coerce(FieldType::String, &json!(1)),
            Err(CoerceError::WrongType {
                found: "integer",
                ..
            })
        ));
        assert_eq!(coerce(FieldType::Int, &json!(42)), Ok(Typed::Int(42)));
        assert_eq!(coerce(FieldType::Int, &json!("42")), Ok(Typed::Int(42)));
        assert_eq!(coerce(FieldType::Int, &json!(3.0)), Ok(Typed::Int(3)));
        assert!(coerce(FieldType::Int, &json!(3.5)).is_err());
        assert!(coerce(FieldType::Int, &json!(u64::MAX)).is_err());
        assert!(coerce(FieldType::Int, &json!("x")).is_err());
        assert!(coerce(FieldType::Int, &json!(true)).is_err());
        assert_eq!(coerce(FieldType::Int, &json!(null)), Ok(Typed::Null));
    }

    #[test]
    fn floats_bools_dates_json() {
        assert_eq!(coerce(FieldType::Float, &json!(1.5)), Ok(Typed::Float(1.5)));
        assert_eq!(coerce(FieldType::Float, &json!("2")), Ok(Typed::Float(2.0)));
        assert!(coerce(FieldType::Float, &json!("NaN")).is_err());
        assert_eq!(
            coerce(FieldType::Bool, &json!("true")),
            Ok(Typed::Bool(true))
        );
        assert!(coerce(FieldType::Bool, &json!(1)).is_err());
        assert_eq!(
            coerce(FieldType::Date, &json!("1970-01-02")),
            Ok(Typed::Date(1))
        );
        assert!(coerce(FieldType::Date, &json!("2026-02-30")).is_err());
        assert_eq!(
            coerce(FieldType::Json, &json!({"a": [1, 2]})),
            Ok(Typed::Json(r#"{"a":[1,2]}"#.into()))
        );
        assert_eq!(coerce_str(FieldType::Int, ""), Ok(Typed::Null));
        assert_eq!(
            coerce_str(FieldType::Json, "[1]"),
            Ok(Typed::Json("[1]".into()))
        );
    }

    #[test]
    fn timestamps() {
        let want = 1_763_806_500_123_000; // 2025-11-22T10:15:00.123Z
        for s in [
            "2025-11-22T10:15:00.123Z",
            "2025-11-22T11:15:00.123+01:00",
            "2025-11-22 10:15:00.123",
            "2025-11-22T10:15:00.123",
        ] {
            assert_eq!(
                coerce(FieldType::Timestamp, &json!(s)),
                Ok(Typed::Timestamp(want)),
                "{s}"
            );
        }
        assert_eq!(
            coerce(FieldType::Timestamp, &json!(1_763_806_500_123_i64)),
            Ok(Typed::Timestamp(want))
        );
        assert_eq!(
            coerce(FieldType::Timestamp, &json!(1_763_806_500.123)),
            Ok(Typed::Timestamp(want))
        );
        assert!(coerce(FieldType::Timestamp, &json!("yesterday")).is_err());
        assert!(coerce(FieldType::Timestamp, &json!(1e300)).is_err());
        assert_eq!(format_micros(want), "2025-11-22T10:15:00.123Z");
    }

    #[test]
    fn integers_written_as_floats_are_exact_or_refused() {
        assert_eq!(
            coerce(FieldType::Int, &json!(9_007_199_254_740_991.0)),
            Ok(Typed::Int(9_007_199_254_740_991))
        );
        let v: Value = serde_json::from_str("9007199254740993.0").expect("json");
        assert!(
            coerce(FieldType::Int, &v).is_err(),
            "would be stored as ...992"
        );
        let v: Value = serde_json::from_str("1e19").expect("json");
        assert!(coerce(FieldType::Int, &v).is_err());
        let v: Value = serde_json::from_str("9007199254740993").expect("json");
        assert_eq!(
            coerce(FieldType::Int, &v),
            Ok(Typed::Int(9_007_199_254_740_993))
        );
    }

    #[test]
    fn only_years_every_sink_stores_are_accepted() {
        let unstorable =
            |r: Result<Typed<'_>, CoerceError>| matches!(r, Err(CoerceError::Unstorable { .. }));
        assert!(unstorable(coerce(FieldType::Timestamp, &json!(-7e15))));
        assert!(unstorable(coerce(FieldType::Timestamp, &json!(2.6e14))));
        assert!(coerce_str(FieldType::Timestamp, "+10000-01-01T00:00:00Z").is_err());
        assert!(coerce_str(FieldType::Date, "+10000-01-01").is_err());
        assert_eq!(
            coerce_str(FieldType::Timestamp, "0001-01-01T00:00:00Z"),
            Ok(Typed::Timestamp(MIN_TIMESTAMP_MICROS))
        );
        assert_eq!(
            coerce_str(FieldType::Timestamp, "9999-12-31T23:59:59.999999Z"),
            Ok(Typed::Timestamp(MAX_TIMESTAMP_MICROS))
        );
        assert!(coerce_str(FieldType::Date, "9999-12-31").is_ok());
        assert!(coerce_str(FieldType::Date, "0001-01-01").is_ok());
        assert!(unstorable(coerce_str(FieldType::String, "a\0")));
    }

    #[test]
    fn errors_never_echo_the_value() {
        let e = coerce(FieldType::Int, &json!("secret@example.com"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        let e = parse_timestamp("secret-value").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
