//! Glue/Hive column types: mapping from Arrow (curated Parquet) and from the config's field
//! types (raw JSON), and the compatibility rules of schema evolution.
//!
//! Types are kept as Glue writes them: lowercase strings such as `bigint`, `decimal(10,2)`,
//! `array<string>`, `struct<a:int,b:string>`. Evolution is additive: a column may be added,
//! or widened along `tinyint < smallint < int < bigint` and `float < double`; a file with a
//! narrower type than its table is readable as is (Parquet readers upcast), and any other
//! difference is a conflict.

use arrow_schema::{DataType, Field as ArrowField, Schema};
use sluice_core::config::FieldType;

/// One table column, on sluice's own type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The Glue type string (`bigint`, `array<string>`, ...).
    pub ty: String,
}

impl Column {
    /// A column from a name and a type string.
    pub fn new(name: impl Into<String>, ty: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            ty: ty.into(),
        }
    }
}

/// Largest decimal precision Hive (and Athena) accept.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// The Hive type of an Arrow type, or why it has none.
pub fn arrow_to_hive(dt: &DataType) -> Result<String, String> {
    Ok(match dt {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            if *p == 0 || *p > MAX_DECIMAL_PRECISION || *s < 0 || *s as u8 > *p {
                return Err(format!(
                    "decimal({p},{s}) is outside Hive's decimal(1..={MAX_DECIMAL_PRECISION}, 0..=p)"
                ));
            }
            format!("decimal({p},{s})")
        }
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array<{}>", arrow_to_hive(f.data_type())?),
        DataType::Struct(fields) => {
            if fields.is_empty() {
                return Err("an empty struct has no Hive type".into());
            }
            let parts = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{}:{}",
                        nested_name(f)?,
                        arrow_to_hive(f.data_type())?
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("struct<{}>", parts.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                arrow_to_hive(kv[0].data_type())?,
                arrow_to_hive(kv[1].data_type())?
            ),
            other => {
                return Err(format!(
                    "map entries of type {other} are not a key/value struct"
                ))
            }
        },
        DataType::Dictionary(_, values) => arrow_to_hive(values)?,
        DataType::RunEndEncoded(_, values) => arrow_to_hive(values.data_type())?,
        other => return Err(format!("Arrow type {other} has no Hive equivalent")),
    })
}

/// A struct field name usable inside a Hive type string.
fn nested_name(f: &ArrowField) -> Result<String, String> {
    let name = f.name().to_ascii_lowercase();
    if is_column_name(&name) {
        Ok(name)
    } else {
        Err(format!(
            "struct field {:?} must match [a-z0-9_]+ to appear in a Hive type",
            f.name()
        ))
    }
}

/// Whether `name` is a column name Glue and Athena accept unquoted in DDL: `[a-z0-9_]+`.
pub fn is_column_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// The table columns of an Arrow schema (names lowercased), or the first column that has none
/// as `(column, reason)`.
pub fn columns_of(schema: &Schema) -> Result<Vec<Column>, (String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().to_ascii_lowercase();
            if !is_column_name(&name) {
                return Err((
                    f.name().clone(),
                    "column names must match [a-z0-9_]+".into(),
                ));
            }
            let ty = arrow_to_hive(f.data_type()).map_err(|r| (f.name().clone(), r))?;
            Ok(Column::new(name, ty))
        })
        .collect()
}

/// The Hive type of a config field in the raw (JSON) table.
///
/// Timestamps stay `string`: the raw zone keeps the producer's original text, which may be any
/// RFC 3339 offset, a naive time or epoch seconds/milliseconds, and the OpenX SerDe cannot parse
/// all of those. The curated table carries the typed `timestamp`.
pub fn raw_field_type(ty: FieldType) -> std::borrow::Cow<'static, str> {
    match ty {
        FieldType::String | FieldType::Timestamp | FieldType::Json => "string".into(),
        FieldType::Int => "bigint".into(),
        FieldType::Float => "double".into(),
        FieldType::Bool => "boolean".into(),
        FieldType::Date => "date".into(),
        FieldType::Decimal { precision, scale } => format!("decimal({precision},{scale})").into(),
    }
}

/// The Hive type of the `_sluice` metadata object kinesis-ingest splices into every raw line
/// (see `sluice_core::lake::line::LineMeta`).
pub const RAW_META_TYPE: &str = "struct<shard:string,seq:string,sub:int,pk:string,arrival:string>";

/// How a file's column type relates to its table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// The same type.
    Same,
    /// The file's type is wider: the table column is widened to it.
    Widen,
    /// The file's type is narrower: the table column already reads it.
    Narrower,
    /// Anything else: a conflict.
    Incompatible,
}

fn normalize(ty: &str) -> String {
    ty.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn integral_rank(ty: &str) -> Option<u8> {
    match ty {
        "tinyint" => Some(1),
        "smallint" => Some(2),
        "int" | "integer" => Some(3),
        "bigint" => Some(4),
        _ => None,
    }
}

fn floating_rank(ty: &str) -> Option<u8> {
    match ty {
        "float" | "real" => Some(1),
        "double" => Some(2),
        _ => None,
    }
}

/// Compares a table column type with a file's type for the same column.
pub fn compat(table: &str, file: &str) -> Compat {
    let (t, f) = (normalize(table), normalize(file));
    if t == f {
        return Compat::Same;
    }
    let ranks = match (integral_rank(&t), integral_rank(&f)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => match (floating_rank(&t), floating_rank(&f)) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
    };
    match ranks {
        Some((a, b)) if b > a => Compat::Widen,
        Some((a, b)) if b < a => Compat::Narrower,
        Some(_) => Compat::Same,
        None => Compat::Incompatible,
    }
}

/// The result of evolving a table's columns to cover a file's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evolution {
    /// The table's new columns: existing ones in their order (widened where needed), then the
    /// new ones in the file's order.
    pub columns: Vec<Column>,
    /// Names of appended columns.
    pub added: Vec<String>,
    /// Widened columns as `(name, old type, new type)`.
    pub widened: Vec<(String, String, String)>,
}

impl Evolution {
    /// Whether the table must be updated.
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.widened.is_empty()
    }
}

/// A column whose type cannot evolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub column: String,
    pub old: String,
    pub new: String,
}

/// Evolves `table` to cover `file`: adds missing columns, widens, never drops or reorders.
/// Names match case-insensitively. The first conflict aborts with nothing changed.
pub fn evolve(table: &[Column], file: &[Column]) -> Result<Evolution, Conflict> {
    let mut out = Evolution {
        columns: table.to_vec(),
        ..Evolution::default()
    };
    for fc in file {
        let existing = out
            .columns
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(&fc.name));
        match existing {
            None => {
                out.columns.push(fc.clone());
                out.added.push(fc.name.clone());
            }
            Some(tc) => match compat(&tc.ty, &fc.ty) {
                Compat::Same | Compat::Narrower => {}
                Compat::Widen => {
                    out.widened
                        .push((tc.name.clone(), tc.ty.clone(), fc.ty.clone()));
                    tc.ty = fc.ty.clone();
                }
                Compat::Incompatible => {
                    return Err(Conflict {
                        column: tc.name.clone(),
                        old: tc.ty.clone(),
                        new: fc.ty.clone(),
                    })
                }
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Field, Fields, TimeUnit};

    use super::*;

    fn hive(dt: DataType) -> String {
        arrow_to_hive(&dt).unwrap_or_else(|e| panic!("{dt}: {e}"))
    }

    #[test]
    fn scalar_types_map_to_hive() {
        assert_eq!(hive(DataType::Boolean), "boolean");
        assert_eq!(hive(DataType::Int8), "tinyint");
        assert_eq!(hive(DataType::Int16), "smallint");
        assert_eq!(hive(DataType::Int32), "int");
        assert_eq!(hive(DataType::Int64), "bigint");
        assert_eq!(hive(DataType::UInt32), "bigint");
        assert_eq!(hive(DataType::Float32), "float");
        assert_eq!(hive(DataType::Float64), "double");
        assert_eq!(hive(DataType::Utf8), "string");
        assert_eq!(hive(DataType::LargeUtf8), "string");
        assert_eq!(hive(DataType::Binary), "binary");
        assert_eq!(hive(DataType::Date32), "date");
        assert_eq!(
            hive(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            )),
            "timestamp"
        );
        assert_eq!(
            hive(DataType::Timestamp(TimeUnit::Millisecond, None)),
            "timestamp"
        );
        assert_eq!(hive(DataType::Decimal128(10, 2)), "decimal(10,2)");
        assert_eq!(
            hive(DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            )),
            "string"
        );
    }

    #[test]
    fn nested_types_map_recursively() {
        let item = Arc::new(Field::new("item", DataType::Int64, true));
        assert_eq!(hive(DataType::List(item.clone())), "array<bigint>");
        assert_eq!(hive(DataType::LargeList(item)), "array<bigint>");
        let st = DataType::Struct(Fields::from(vec![
            Field::new("Shard", DataType::Utf8, false),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]));
        assert_eq!(hive(st.clone()), "struct<shard:string,tags:array<string>>");
        let entries = Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", st, true),
            ])),
            false,
        );
        assert_eq!(
            hive(DataType::Map(Arc::new(entries), false)),
            "map<string,struct<shard:string,tags:array<string>>>"
        );
    }

    #[test]
    fn unmappable_types_say_why() {
        for dt in [
            DataType::Null,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Duration(TimeUnit::Second),
            DataType::UInt64,
            DataType::Decimal256(60, 2),
            DataType::Struct(Fields::empty()),
            DataType::Struct(Fields::from(vec![Field::new("a b", DataType::Utf8, true)])),
        ] {
            assert!(arrow_to_hive(&dt).is_err(), "{dt}");
        }
    }

    #[test]
    fn curated_schema_columns() {
        let schema = Schema::new(vec![
            Field::new("event_id", DataType::Utf8, false),
            Field::new("Amount", DataType::Float64, true),
            Field::new("_sluice_key", DataType::Utf8, false),
        ]);
        assert_eq!(
            columns_of(&schema),
            Ok(vec![
                Column::new("event_id", "string"),
                Column::new("amount", "double"),
                Column::new("_sluice_key", "string"),
            ])
        );
        let bad = Schema::new(vec![Field::new("a-b", DataType::Utf8, false)]);
        assert_eq!(columns_of(&bad).map_err(|(c, _)| c), Err("a-b".to_string()));
    }

    #[test]
    fn raw_field_types() {
        assert_eq!(raw_field_type(FieldType::String), "string");
        assert_eq!(raw_field_type(FieldType::Int), "bigint");
        assert_eq!(raw_field_type(FieldType::Float), "double");
        assert_eq!(
            raw_field_type(FieldType::Decimal {
                precision: 12,
                scale: 2
            }),
            "decimal(12,2)"
        );
        assert_eq!(raw_field_type(FieldType::Bool), "boolean");
        assert_eq!(raw_field_type(FieldType::Date), "date");
        assert_eq!(raw_field_type(FieldType::Timestamp), "string");
        assert_eq!(raw_field_type(FieldType::Json), "string");
    }

    #[test]
    fn compatibility_rules() {
        assert_eq!(compat("int", "bigint"), Compat::Widen);
        assert_eq!(compat("float", "double"), Compat::Widen);
        assert_eq!(compat("tinyint", "int"), Compat::Widen);
        assert_eq!(compat("bigint", "int"), Compat::Narrower);
        assert_eq!(compat("double", "float"), Compat::Narrower);
        assert_eq!(compat("BIGINT", "bigint"), Compat::Same);
        assert_eq!(compat("decimal(10, 2)", "decimal(10,2)"), Compat::Same);
        assert_eq!(compat("bigint", "double"), Compat::Incompatible);
        assert_eq!(compat("bigint", "string"), Compat::Incompatible);
        assert_eq!(compat("string", "timestamp"), Compat::Incompatible);
        assert_eq!(
            compat("decimal(10,2)", "decimal(12,2)"),
            Compat::Incompatible
        );
        assert_eq!(
            compat("struct<a:int>", "struct<a:bigint>"),
            Compat::Incompatible
        );
    }

    #[test]
    fn evolution_appends_and_widens_in_order() {
        let table = vec![
            Column::new("id", "string"),
            Column::new("n", "int"),
            Column::new("x", "float"),
        ];
        let file = vec![
            Column::new("new_b", "string"),
            Column::new("x", "double"),
            Column::new("ID", "string"),
            Column::new("new_a", "date"),
            Column::new("n", "bigint"),
        ];
        let e = evolve(&table, &file).expect("compatible");
        assert_eq!(
            e.columns,
            vec![
                Column::new("id", "string"),
                Column::new("n", "bigint"),
                Column::new("x", "double"),
                Column::new("new_b", "string"),
                Column::new("new_a", "date"),
            ]
        );
        assert_eq!(e.added, vec!["new_b", "new_a"]);
        assert_eq!(e.widened.len(), 2);
        assert!(e.changed());

        let same = evolve(&e.columns, &[Column::new("n", "int")]).expect("narrower is fine");
        assert!(!same.changed());
        assert_eq!(same.columns, e.columns);

        let conflict = evolve(
            &table,
            &[Column::new("z", "int"), Column::new("n", "string")],
        )
        .expect_err("conflict");
        assert_eq!(
            conflict,
            Conflict {
                column: "n".into(),
                old: "int".into(),
                new: "string".into()
            }
        );
    }
}
