//! The per-dataset transform: coerce to the schema's types, apply PII rules, find each row's
//! key, version and event-time partition, and de-duplicate by key within the object.
//!
//! **The winner rule.** Among versions of one record key, the row kept is the one with the
//! greatest [`Row::version`]: latest event time (arrival time for datasets without one), then
//! latest Kinesis arrival, then highest sequence number, then highest sub-record (or file line);
//! ties (the same record delivered in two objects) go to the greater source key. The same
//! rule picks the winner here, inside an object, and in the PostgreSQL merge, so the final state
//! never depends on the order in which objects are delivered or redelivered.
//!
//! Pure: items in, rows grouped by partition plus rejected records out. Coercion uses
//! `sluice_core::schema`, the same rules kinesis-ingest validated with.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use sluice_core::config::{Dataset, FieldType, PiiRule};
use sluice_core::lake::keys::{HourCache, Partition};
use sluice_core::lake::line::{LineMeta, META_KEY};
use sluice_core::lake::quarantine::RejectKind;
use sluice_core::object::{self, coerce_raw, Doc, Object};
use sluice_core::record;
use sluice_core::schema::{coerce_str, CoerceError, Typed};

use crate::input::{Fields, Item};
use crate::pii::{self, HashKey};

/// Name of the key column added to every curated table.
pub const KEY_COLUMN: &str = "_sluice_key";
/// Name of the column naming the raw object a row came from.
pub const SOURCE_COLUMN: &str = "_sluice_source";
/// Name of the warehouse column holding [`Row::version`].
pub const VERSION_COLUMN: &str = "_sluice_version";

/// One output column of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Index of the field in the dataset.
    pub field: usize,
    /// Column name.
    pub name: String,
    /// Output type (a hashed non-string field becomes a string).
    pub ty: FieldType,
    pub nullable: bool,
    pub rule: Option<PiiRule>,
}

/// The output columns of a dataset, in declaration order, without dropped fields.
pub fn columns(ds: &Dataset) -> Vec<Column> {
    ds.fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let rule = ds.pii_rule(i);
            if rule == Some(PiiRule::Drop) {
                return None;
            }
            let ty = if rule.is_some() {
                FieldType::String
            } else {
                f.ty
            };
            Some(Column {
                field: i,
                name: f.column.clone(),
                ty,
                nullable: !f.required,
                rule,
            })
        })
        .collect()
}

/// One typed, masked row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    /// The row's rank among versions of its key, as text that sorts (bytewise) by the winner
    /// rule: see [`version`].
    pub version: String,
    /// Values aligned with [`columns`].
    pub values: Vec<Typed<'static>>,
    /// The event time the version ranks by (the arrival when the record has none), in µs;
    /// what freshness is measured from.
    pub event_micros: i64,
}

/// A record that could not be transformed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub line: usize,
    pub kind: RejectKind,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// The transform of one object.
#[derive(Debug, Default)]
pub struct Transformed {
    pub rows: BTreeMap<Partition, Vec<Row>>,
    pub rejected: Vec<Rejected>,
    pub duplicates: usize,
    /// Records each of the dataset's filters left out (aligned with `Dataset::filters`).
    pub filtered: Vec<usize>,
    pub input: usize,
}

impl Transformed {
    /// Rows across all partitions.
    pub fn row_count(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }
}

/// Transforms the items of one object of dataset `ds`.
///
/// `fallback_partition` is used when the dataset has no event-time field (the raw key's
/// partition, or the epoch for files dropped outside `dt=/hr=` folders).
pub fn transform(
    ds: &Dataset,
    cols: &[Column],
    items: Vec<Item>,
    source_key: &str,
    fallback_partition: &Partition,
    hash_key: Option<&HashKey>,
) -> Transformed {
    let mut out = Transformed {
        filtered: vec![0; ds.filters.len()],
        ..Transformed::default()
    };
    // Winners so far, in order of first appearance, and where each key's winner is.
    let mut kept: Vec<(Partition, Row)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut hours = HourCache::default();
    let ctx = RowCtx {
        ds,
        cols,
        source_key,
        fallback_partition,
        hash_key,
    };
    for item in items {
        out.input += 1;
        let fields = match item.fields {
            Ok(f) => f,
            Err((kind, reason)) => {
                out.rejected.push(Rejected {
                    line: item.line,
                    kind,
                    reason,
                    payload: item.payload,
                });
                continue;
            }
        };
        let result = match &fields {
            // Parsed here, once, borrowed from the payload; only declared fields are coerced.
            Fields::Json => match object::parse_slice(&item.payload) {
                Ok(Doc::Object(obj)) => {
                    // The same whole-record rule as kinesis-ingest (files dropped into raw/
                    // did not pass through it).
                    match std::str::from_utf8(&item.payload)
                        .map_err(|_| (RejectKind::InvalidUtf8, "record is not UTF-8".to_string()))
                        .and_then(|t| record::check_text(t).map_err(|r| (r.kind, r.reason)))
                    {
                        Ok(()) => transform_one(&ctx, View::Json(&obj), item.line, &mut hours),
                        Err(e) => Err(e),
                    }
                }
                Ok(Doc::Other(_)) => Err((
                    RejectKind::NotAnObject,
                    "expected a JSON object".to_string(),
                )),
                Err(e) => Err((
                    RejectKind::InvalidJson,
                    format!("invalid JSON at column {}", e.column()),
                )),
            },
            Fields::Csv(pairs) => transform_one(&ctx, View::Csv(pairs), item.line, &mut hours),
        };
        match result {
            Ok(Step::Filtered(f)) => out.filtered[f] += 1,
            Ok(Step::Row(partition, row)) => match at.get(&row.key) {
                None => {
                    at.insert(row.key.clone(), kept.len());
                    kept.push((partition, row));
                }
                Some(&i) => {
                    out.duplicates += 1;
                    if row.version > kept[i].1.version {
                        kept[i] = (partition, row);
                    }
                }
            },
            Err((kind, reason)) => out.rejected.push(Rejected {
                line: item.line,
                kind,
                reason,
                payload: item.payload,
            }),
        }
    }
    for (partition, row) in kept {
        out.rows.entry(partition).or_default().push(row);
    }
    out
}

/// Offset of a signed microsecond count into `u64`, so its decimal text sorts like the number.
fn sortable(micros: i64) -> u64 {
    (micros as u64) ^ (1 << 63)
}

/// The version text of the winner rule: event time, arrival, sequence number (length-prefixed
/// so longer numbers sort higher), sub-record or line, each fixed-width; bytewise order is the
/// rule's order. `arrival`/`seq` are absent for files dropped into raw/ (then `sub` is the line).
pub fn version(event_micros: i64, arrival_micros: Option<i64>, seq: &str, sub: u64) -> String {
    let seq = if seq.bytes().all(|b| b.is_ascii_digit()) && seq.len() < 1000 {
        seq.trim_start_matches('0')
    } else {
        ""
    };
    format!(
        "{:020}.{:020}.{:03}{seq}.{sub:020}",
        sortable(event_micros),
        arrival_micros.map_or(0, sortable),
        seq.len()
    )
}

/// A raw line's `_sluice` metadata: where the record came from in the stream.
fn origin<'a>(fields: View<'a>) -> Option<LineMeta<'a>> {
    let View::Json(m) = fields else { return None };
    LineMeta::parse(m.get(META_KEY)?.get())
}

/// A record's fields, as the transform reads them.
#[derive(Clone, Copy)]
enum View<'a> {
    Json(&'a Object<'a>),
    Csv(&'a [(String, String)]),
}

fn lookup<'a>(fields: View<'a>, name: &str) -> Option<Lookup<'a>> {
    match fields {
        View::Json(m) => m.get_path(name).map(Lookup::Json),
        View::Csv(pairs) => pairs
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, v)| Lookup::Text(v.as_str())),
    }
}

enum Lookup<'a> {
    Json(&'a serde_json::value::RawValue),
    Text(&'a str),
}

/// What became of one valid record.
enum Step {
    /// It is kept: its row and partition.
    Row(Partition, Row),
    /// The filter at this index of `Dataset::filters` left it out.
    Filtered(usize),
}

/// What every row of one object shares.
struct RowCtx<'a> {
    ds: &'a Dataset,
    cols: &'a [Column],
    source_key: &'a str,
    fallback_partition: &'a Partition,
    hash_key: Option<&'a HashKey>,
}

fn transform_one(
    ctx: &RowCtx<'_>,
    fields: View<'_>,
    line: usize,
    hours: &mut HourCache,
) -> Result<Step, (RejectKind, String)> {
    let RowCtx {
        ds,
        cols,
        source_key,
        fallback_partition,
        hash_key,
    } = *ctx;
    // Coerce every declared field (dropped ones too: a required dropped field must exist).
    let mut typed: Vec<Typed<'_>> = Vec::with_capacity(ds.fields.len());
    for (i, f) in ds.fields.iter().enumerate() {
        let v = match lookup(fields, &f.name) {
            None => Ok(Typed::Null),
            Some(Lookup::Json(v)) => coerce_raw(f.ty, v),
            Some(Lookup::Text(s)) => coerce_str(f.ty, s),
        };
        let v = v.map_err(|e: CoerceError| {
            let kind = match e {
                _ if ds.event_time == Some(i) => RejectKind::BadEventTime,
                CoerceError::Unstorable { .. } => RejectKind::UnstorableValue,
                _ => RejectKind::WrongType,
            };
            (kind, format!("field {:?}: {e}", f.name))
        })?;
        if v == Typed::Null && f.required {
            return Err((
                RejectKind::MissingField,
                format!("required field {:?} is missing or null", f.name),
            ));
        }
        typed.push(v);
    }
    // Filters see the coerced values before masking; raw keeps the record either way.
    if let Some(f) = ds.filters.iter().position(|f| !f.keeps(&typed)) {
        return Ok(Step::Filtered(f));
    }
    for (i, path, rule) in &ds.json_pii {
        if let Typed::Json(text) = &typed[*i] {
            let masked = pii::mask_json(text, path, *rule, hash_key);
            typed[*i] = Typed::Json(Cow::Owned(masked));
        }
    }
    let event_time = match ds.event_time.map(|i| &typed[i]) {
        Some(Typed::Timestamp(t)) => Some(*t),
        _ => None,
    };
    let partition = match event_time {
        Some(t) => hours.of_micros(t),
        None => fallback_partition.clone(),
    };
    let mut values = Vec::with_capacity(cols.len());
    for c in cols {
        let v = std::mem::replace(&mut typed[c.field], Typed::Null);
        let v = match (c.rule, v) {
            (_, Typed::Null) => Typed::Null,
            (Some(rule), v) => {
                let text = v.to_text().unwrap_or_default();
                Typed::Str(Cow::Owned(pii::apply(rule, &text, hash_key)))
            }
            (None, v) => v.into_owned(),
        };
        values.push(v);
    }
    let origin = origin(fields);
    let key = match ds.key {
        Some(k) => {
            let pos = cols.iter().position(|c| c.field == k);
            pos.and_then(|p| values[p].to_text())
                .ok_or((RejectKind::MissingField, "key field is missing".to_string()))?
        }
        None => match &origin {
            Some(o) => o.record_key(),
            None => format!("{source_key}#{line}"),
        },
    };
    let arrival = origin.as_ref().and_then(LineMeta::arrival_micros);
    let event = event_time.or(arrival).unwrap_or(0);
    let version = match &origin {
        Some(o) => version(event, arrival, &o.seq, u64::from(o.sub)),
        None => version(event, None, "", line as u64),
    };
    Ok(Step::Row(
        partition,
        Row {
            key,
            version,
            values,
            event_micros: event,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::PipelineConfig;

    const CFG: &str = r#"
        [pipeline]
        routing_field = "type"
        [[dataset]]
        name = "signups"
        key = "id"
        event_time = "ts"
        fields = [
          { name = "id", type = "string", required = true },
          { name = "ts", type = "timestamp", required = true },
          { name = "email", type = "string" },
          { name = "phone", type = "int" },
          { name = "dob", type = "date" },
          { name = "n", type = "int" },
        ]
        pii = { email = "mask_email", phone = "hash", dob = "drop" }
    "#;

    fn item(line: usize, json: &str) -> Item {
        Item {
            line,
            payload: json.as_bytes().to_vec(),
            fields: Ok(Fields::Json),
        }
    }

    #[test]
    fn coerces_masks_partitions_and_dedupes() {
        let cfg = PipelineConfig::from_toml(CFG).unwrap();
        let ds = &cfg.datasets[0];
        let cols = columns(ds);
        assert_eq!(
            cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["id", "ts", "email", "phone", "n"]
        );
        assert_eq!(
            cols[3].ty,
            FieldType::String,
            "hashed int becomes a string column"
        );
        let key = HashKey::new(b"0123456789abcdef".to_vec()).unwrap();
        let items = vec![
            item(
                1,
                r#"{"id":"a","ts":"2025-11-22T09:30:00Z","email":"alice@example.com","phone":6421555,"dob":"1990-01-01","n":"7"}"#,
            ),
            // An older version of "a", later in the file: the latest event time wins.
            item(2, r#"{"id":"a","ts":"2025-11-22T09:29:00Z"}"#),
            item(3, r#"{"id":"b","ts":"2025-11-22T10:30:00Z","n":"x"}"#),
            item(4, r#"{"ts":"2025-11-22T10:30:00Z"}"#),
            item(5, r#"{"id":"c","ts":"2025-11-22T10:31:00Z","email":null}"#),
            item(6, "[2]"),
            item(7, r#"{"id":"d","#),
            item(
                8,
                r#"{"id":"e\u0021","ts":"2025-11-22T10:32:00Z","id":"e","x":{"deep":[1]}}"#,
            ),
        ];
        let fallback = Partition::of_micros(0);
        let t = transform(
            ds,
            &cols,
            items,
            "raw/signups/x.json",
            &fallback,
            Some(&key),
        );
        assert_eq!(
            (t.input, t.duplicates, t.rejected.len(), t.row_count()),
            (8, 1, 4, 3)
        );
        let p9 = Partition::parse("2025-11-22", "09").unwrap();
        let row = &t.rows[&p9][0];
        assert_eq!(row.key, "a");
        assert_eq!(row.values[2], Typed::Str("***@example.com".into()));
        assert_eq!(row.values[3], Typed::Str(key.hash("6421555").into()));
        assert_eq!(row.values[4], Typed::Int(7));
        assert_eq!(t.rejected[0].kind, RejectKind::WrongType);
        assert_eq!(t.rejected[1].kind, RejectKind::MissingField);
        assert_eq!(
            (
                t.rejected[2].kind,
                t.rejected[2].line,
                &t.rejected[2].payload[..]
            ),
            (RejectKind::NotAnObject, 6, &b"[2]"[..])
        );
        assert_eq!(
            (t.rejected[3].kind, t.rejected[3].line),
            (RejectKind::InvalidJson, 7)
        );
        let p10 = Partition::parse("2025-11-22", "10").unwrap();
        assert_eq!(t.rows[&p10][0].values[2], Typed::Null);
        assert_eq!(
            t.rows[&p10][1].key, "e",
            "the last of duplicate members wins"
        );
    }

    #[test]
    fn csv_cells_and_fallback_keys() {
        let cfg = PipelineConfig::from_toml(&CFG.replace("key = \"id\"\n", "")).unwrap();
        let ds = &cfg.datasets[0];
        let cols = columns(ds);
        let csv = Item {
            line: 3,
            payload: b"x".to_vec(),
            fields: Ok(Fields::Csv(vec![
                ("id".into(), "z".into()),
                ("ts".into(), "2025-11-22 08:00:00".into()),
                ("n".into(), "".into()),
            ])),
        };
        let meta = item(
            1,
            r#"{"_sluice":{"shard":"s","seq":"9","sub":2},"id":"q","ts":"2025-11-22T08:00:00Z"}"#,
        );
        let t = transform(
            ds,
            &cols,
            vec![csv, meta],
            "raw/signups/in.csv",
            &Partition::of_micros(0),
            None,
        );
        let rows = &t.rows[&Partition::parse("2025-11-22", "08").unwrap()];
        assert_eq!(rows[0].key, "raw/signups/in.csv#3");
        assert_eq!(rows[0].values[4], Typed::Null);
        assert_eq!(rows[1].key, "s-9-2");
    }

    #[test]
    fn versions_sort_by_the_winner_rule() {
        let v = |e: i64, a: Option<i64>, seq: &str, sub: u64| version(e, a, seq, sub);
        // Event time first, negative times included.
        assert!(v(2, None, "", 0) > v(1, Some(9), "99", 9));
        assert!(v(-1, None, "", 0) > v(-2, None, "", 0));
        assert!(v(0, None, "", 0) > v(-1, None, "", 0));
        // Then arrival, then the sequence number as a number, then the sub-record.
        assert!(v(1, Some(2), "1", 0) > v(1, Some(1), "9", 0));
        assert!(v(1, Some(1), "10", 0) > v(1, Some(1), "9", 0));
        assert!(v(1, Some(1), "0010", 0) == v(1, Some(1), "10", 0));
        assert!(v(1, Some(1), "9", 1) > v(1, Some(1), "9", 0));
        // A file's row (no arrival) ranks below a stream row of the same event time.
        assert!(v(1, Some(i64::MIN + 1), "", 0) > v(1, None, "", 5));
    }

    #[test]
    fn the_winner_inside_an_object_does_not_depend_on_line_order() {
        let cfg = PipelineConfig::from_toml(CFG).unwrap();
        let ds = &cfg.datasets[0];
        let cols = columns(ds);
        let lines = [
            r#"{"id":"k","ts":"2025-11-22T09:10:00Z","n":1}"#,
            r#"{"id":"k","ts":"2025-11-22T09:50:00Z","n":2}"#,
            r#"{"id":"k","ts":"2025-11-22T09:30:00Z","n":3}"#,
        ];
        let fallback = Partition::of_micros(0);
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]] {
            let items = order
                .iter()
                .enumerate()
                .map(|(line, &i)| item(line + 1, lines[i]))
                .collect();
            let t = transform(ds, &cols, items, "raw/signups/x.json", &fallback, None);
            assert_eq!((t.row_count(), t.duplicates), (1, 2));
            let row = t.rows.values().flatten().next().unwrap();
            assert_eq!(row.values[4], Typed::Int(2), "order {order:?}");
        }
    }
}
