//! Borrowed JSON objects: a record's top-level keys, each with the raw text of its value.
//!
//! Records are wider than their schemas (context, device, tags...), and the pipeline only
//! reads the declared fields. Building a full `serde_json::Value` of every record allocates for
//! every key and value; [`Doc`] instead validates the whole text (serde_json still checks every
//! byte) and keeps `(key, &RawValue)` pairs borrowed from it. Declared fields are then coerced
//! from their raw text with [`coerce_raw`], which follows [`crate::schema::coerce`] exactly.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::FieldType;
use crate::schema::{coerce, coerce_str, compact_json, json_type_name, CoerceError, Typed};

/// One parsed JSON document: an object, or the type name of what it is instead.
#[derive(Debug)]
pub enum Doc<'a> {
    /// A JSON object, its top-level members borrowed from the text.
    Object(Object<'a>),
    /// `null`, `bool`, `integer`, `number`, `string` or `array`.
    Other(&'static str),
}

/// The top-level members of a JSON object, in document order, values as raw JSON text.
#[derive(Debug, Default, Clone)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Object<'a> {
    /// The value of `key`; with duplicate keys the last one wins, as in `serde_json::Map`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// Every value of `key`, in document order (duplicate keys included).
    pub fn get_all<'k>(&'k self, key: &'k str) -> impl Iterator<Item = &'a RawValue> + 'k {
        self.members
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// The value at a dotted path (`payment.method`): each segment a member of the object
    /// before it. A segment whose value is not an object, or is missing, gives `None`. A name
    /// without dots is [`Object::get`].
    pub fn get_path(&self, path: &str) -> Option<&'a RawValue> {
        let mut segments = path.split('.');
        let mut v = self.get(segments.next()?)?;
        for seg in segments {
            let inner: &'a str = v.get();
            match serde_json::from_str::<Doc<'a>>(inner).ok()? {
                Doc::Object(o) => v = o.get(seg)?,
                Doc::Other(_) => return None,
            }
        }
        Some(v)
    }

    /// Member names, in document order (duplicates included).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }

    /// Number of members, duplicate keys included.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members (`{}`).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("bool"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("integer"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("integer"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Doc<'de>, E> {
        Ok(Doc::Other("string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Doc::Other("array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            members.push((k, v));
        }
        Ok(Doc::Object(Object { members }))
    }
}

/// A member name, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Parses one JSON document borrowed from `text`.
pub fn parse(text: &str) -> serde_json::Result<Doc<'_>> {
    serde_json::from_str(text)
}

/// Parses one JSON document borrowed from `bytes` (which must be UTF-8 where it matters:
/// serde_json rejects invalid UTF-8 inside strings).
pub fn parse_slice(bytes: &[u8]) -> serde_json::Result<Doc<'_>> {
    serde_json::from_slice(bytes)
}

/// The JSON type name of a raw value, as [`json_type_name`] names it.
pub fn raw_type_name(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "bool",
        Some(b'"') => "string",
        Some(b'[') => "array",
        Some(b'{') => "object",
        _ => serde_json::from_str::<Value>(raw.get())
            .map(|v| json_type_name(&v))
            .unwrap_or("number"),
    }
}

/// Whether the raw value is `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The contents of a JSON string without escapes, borrowed; `None` if `raw` is not a string or
/// needs unescaping.
fn plain_str(raw: &RawValue) -> Option<&str> {
    let s = raw.get();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// Coerces a raw JSON value to `ty`, with the same result as [`coerce`] on its parsed value,
/// except that `json` keeps the raw text ([`compact_json`]) where `coerce` re-serialises.
pub fn coerce_raw(ty: FieldType, raw: &RawValue) -> Result<Typed<'_>, CoerceError> {
    if ty == FieldType::Json {
        if is_null(raw) {
            return Ok(Typed::Null);
        }
        return compact_json(raw.get()).map(|t| Typed::Json(Cow::Owned(t)));
    }
    {
        if let Some(s) = plain_str(raw) {
            return coerce_str(ty, s);
        }
        if is_null(raw) {
            return Ok(Typed::Null);
        }
    }
    // A decimal is read from the number's own text, never through f64.
    if let FieldType::Decimal { .. } = ty {
        let text = raw.get();
        if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return coerce_str(ty, text);
        }
    }
    let v: Value = serde_json::from_str(raw.get()).map_err(|e| CoerceError::Unparseable {
        expected: ty,
        reason: e.to_string(),
    })?;
    coerce(ty, &v).map(Typed::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsontext::{check_document, TextProblem, MAX_NESTING};
    use crate::schema::json_text;

    fn object(text: &str) -> Object<'_> {
        match parse(text).expect("json") {
            Doc::Object(o) => o,
            Doc::Other(t) => panic!("not an object: {t}"),
        }
    }

    #[test]
    fn decimals_are_read_from_the_number_text_not_through_f64() {
        let ty = FieldType::Decimal {
            precision: 38,
            scale: 10,
        };
        let o = object(
            r#"{"a":123456789012345678901234567.0123456789,"b":1e-10,"c":"-0.5","d":true,"e":0.1}"#,
        );
        let dec = |k: &str| coerce_raw(ty, o.get(k).expect("member")).map(|v| v.to_text());
        assert_eq!(
            dec("a"),
            Ok(Some("123456789012345678901234567.0123456789".into()))
        );
        assert_eq!(dec("b"), Ok(Some("0.0000000001".into())));
        assert_eq!(dec("c"), Ok(Some("-0.5000000000".into())));
        assert_eq!(dec("e"), Ok(Some("0.1000000000".into())));
        assert!(dec("d").is_err(), "a bool is not a decimal");
    }

    #[test]
    fn dotted_paths_reach_into_nested_objects() {
        let o = object(
            r#"{"payment":{"method":"card","card":{"last4":"4242"},"x":[1]},"a.b":1,"n":null,"s":"str"}"#,
        );
        let text = |p: &str| o.get_path(p).map(|v| v.get().to_string());
        assert_eq!(text("payment.method").as_deref(), Some(r#""card""#));
        assert_eq!(text("payment.card.last4").as_deref(), Some(r#""4242""#));
        assert_eq!(text("payment.card").as_deref(), Some(r#"{"last4":"4242"}"#));
        assert_eq!(
            text("payment"),
            o.get("payment").map(|v| v.get().to_string())
        );
        for missing in ["payment.nope", "payment.x.0", "s.t", "n.t", "nope.t", "a.b"] {
            assert_eq!(text(missing), None, "{missing}");
        }
    }

    #[test]
    fn members_are_borrowed_raw_text() {
        let o =
            object(r#" {"a": 1.50, "b":{"x":[1, 2]}, "c":"s\"q", "a\u0062c": null, "a": "last"} "#);
        assert_eq!(o.len(), 5);
        assert_eq!(o.get("a").map(RawValue::get), Some(r#""last""#));
        assert_eq!(o.get("b").map(RawValue::get), Some(r#"{"x":[1, 2]}"#));
        assert_eq!(o.get("abc").map(RawValue::get), Some("null"));
        assert!(o.get("d").is_none());
        assert_eq!(o.keys().collect::<Vec<_>>(), ["a", "b", "c", "abc", "a"]);
    }

    #[test]
    fn non_objects_are_named_and_bad_json_fails() {
        for (text, name) in [
            ("null", "null"),
            ("true", "bool"),
            ("-3", "integer"),
            ("18446744073709551615", "integer"),
            ("1.5e3", "number"),
            (r#""s""#, "string"),
            ("[1,{\"a\":[]}]", "array"),
        ] {
            match parse(text).expect("json") {
                Doc::Other(t) => assert_eq!(t, name, "{text}"),
                Doc::Object(_) => panic!("{text} is not an object"),
            }
        }
        for bad in ["{", r#"{"a":}"#, r#"{"a":1,}"#, "{\"a\":\"\u{1}\"}", "{} x"] {
            assert!(parse(bad).is_err(), "{bad:?} must fail");
        }
        assert!(parse_slice(b"{\"a\":\"\xff\"}").is_err(), "invalid UTF-8");
    }

    #[test]
    fn coerce_raw_agrees_with_coerce() {
        let values = [
            "null",
            "true",
            "false",
            "0",
            "-7",
            "42.0",
            "42.5",
            "1e3",
            "1.5e300",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "1763806650",
            "1763806650123",
            "1763806650.5",
            r#""""#,
            r#"" ""#,
            r#""12""#,
            r#"" 12 ""#,
            r#""1.5""#,
            r#""true""#,
            r#""False""#,
            r#""x""#,
            r#""2026-11-22T10:15:00.123Z""#,
            r#""2026-11-22T10:15:00+02:00""#,
            r#""2026-11-22 10:15:00""#,
            r#""2026-11-22""#,
            r#""2026-13-01""#,
            r#""a\"b""#,
            r#""\u00e9t\u00e9""#,
            r#""line\nbreak""#,
            r#""\u0031\u0032""#,
            "[1,2]",
            r#"{"k": [1, {"z": null}]}"#,
            "[]",
            "{}",
        ];
        let types = [
            FieldType::String,
            FieldType::Int,
            FieldType::Float,
            FieldType::Bool,
            FieldType::Timestamp,
            FieldType::Date,
            FieldType::Json,
        ];
        for text in values {
            let raw: &RawValue = serde_json::from_str(text).expect("raw");
            let v: Value = serde_json::from_str(text).expect("value");
            for ty in types {
                let (got, want) = (coerce_raw(ty, raw), coerce(ty, &v));
                match (&got, &want) {
                    // json keeps the producer's text: equal as JSON, not as text.
                    (Ok(Typed::Json(g)), Ok(Typed::Json(w))) => assert_eq!(
                        serde_json::from_str::<Value>(g).ok(),
                        serde_json::from_str::<Value>(w).ok(),
                        "json of {text}"
                    ),
                    _ => assert_eq!(got, want, "{ty:?} of {text}"),
                }
            }
            assert_eq!(raw_type_name(raw), json_type_name(&v), "{text}");
        }
    }

    #[test]
    fn json_keeps_the_producers_text() {
        let cases = [
            (
                r#"{ "b" : 1.50, "a":[ 1e3 , -0 ] }"#,
                r#"{"b":1.50,"a":[1e3,-0]}"#,
            ),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (
                r#""\u00e9 \ud83d\ude00 \" x""#,
                r#""\u00e9 \ud83d\ude00 \" x""#,
            ),
            (r#"{"k":1,"k":2}"#, r#"{"k":1,"k":2}"#),
            (r#"" keep  inner  spaces ""#, r#"" keep  inner  spaces ""#),
        ];
        for (text, want) in cases {
            let raw: &RawValue = serde_json::from_str(text).expect("raw");
            assert_eq!(
                coerce_raw(FieldType::Json, raw),
                Ok(Typed::Json(want.into())),
                "{text}"
            );
            assert_eq!(json_text(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn values_no_sink_can_hold_are_refused_alike() {
        let nul = r#""a\u0000b""#;
        let raw: &RawValue = serde_json::from_str(nul).expect("raw");
        for ty in [FieldType::String, FieldType::Json] {
            assert!(
                matches!(coerce_raw(ty, raw), Err(CoerceError::Unstorable { .. })),
                "{ty:?}"
            );
        }
        let in_json: &RawValue = serde_json::from_str(r#"{"k\u0000":1}"#).expect("raw");
        assert!(matches!(
            coerce_raw(FieldType::Json, in_json),
            Err(CoerceError::Unstorable { .. })
        ));
        assert!(matches!(
            coerce_str(FieldType::String, "a\0b"),
            Err(CoerceError::Unstorable { .. })
        ));
        for lone in [r#""\ud800""#, r#""\udc00x""#, r#""\ud800\u0041""#] {
            let raw: &RawValue = serde_json::from_str(lone).expect("raw");
            assert!(coerce_raw(FieldType::Json, raw).is_err(), "{lone}");
            assert_eq!(
                check_document(lone),
                Err(TextProblem::LoneSurrogate),
                "{lone}"
            );
        }
        assert_eq!(check_document(r#"{"a":"\u0000"}"#), Ok(()));
    }

    #[test]
    fn numbers_beyond_f64_are_refused_like_readers_refuse_them() {
        // Found by the collector fuzz target (fuzz/regressions/collector/): serde_json skips
        // such numbers unparsed where it does not build a value, pyarrow refuses the file.
        let huge = format!("{{\"n\":{}}}", "9".repeat(400));
        for text in [
            r#"{"b":[1111111E111111112,3]}"#,
            r#"{"x":-1e309}"#,
            r#"[1.5E+400]"#,
            huge.as_str(),
        ] {
            let _: &RawValue = serde_json::from_str(text).expect("serde_json skips it");
            assert_eq!(
                check_document(text),
                Err(TextProblem::NumberOutOfRange),
                "{text}"
            );
            assert_eq!(
                crate::jsontext::compact(text),
                Err(TextProblem::NumberOutOfRange)
            );
        }
        let fine = format!(
            r#"{{"a":1e308,"b":-1.7976931348623157e308,"c":1e-400,"d":"1e999","e":{},"f":-0.5E-3}}"#,
            "9".repeat(300)
        );
        assert_eq!(check_document(&fine), Ok(()));
        // Numbers are copied exactly, exponents included.
        assert_eq!(
            crate::jsontext::compact(r#"[ 1E+2 , -0.50e-1 ]"#).as_deref(),
            Ok("[1E+2,-0.50e-1]")
        );
    }

    #[test]
    fn nesting_is_limited_to_what_readers_accept() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check_document(&nested(MAX_NESTING)), Ok(()));
        assert_eq!(
            check_document(&nested(MAX_NESTING + 1)),
            Err(TextProblem::TooDeep)
        );
        // Brackets inside strings do not count.
        let quoted = format!(r#"{{"s":"{}"}}"#, "[".repeat(500));
        assert_eq!(check_document(&quoted), Ok(()));
        let raw_deep = nested(200);
        let raw: &RawValue = serde_json::from_str(&raw_deep).expect("raw");
        assert!(coerce_raw(FieldType::Json, raw).is_err());
    }
}
