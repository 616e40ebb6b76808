//! Curated Parquet encoding (arrow-rs, ZSTD): one file per (raw object, partition).
//!
//! The bytes depend only on the rows and the dataset's columns: no wall-clock metadata, a fixed
//! `created_by`, rows in input order. Reprocessing the same raw object writes identical files.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, Decimal128Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_core::config::FieldType;
use sluice_core::schema::Typed;

use crate::transform::{Column, Row, KEY_COLUMN, SOURCE_COLUMN};

/// ZSTD level of curated files.
const ZSTD_LEVEL: i32 = 3;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The Arrow type of a schema type.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::String | FieldType::Json => DataType::Utf8,
        FieldType::Int => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Bool => DataType::Boolean,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Date => DataType::Date32,
        FieldType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
    }
}

/// The Arrow schema of a dataset's curated files.
pub fn arrow_schema(cols: &[Column]) -> Schema {
    let mut fields: Vec<Field> = cols
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.ty), c.nullable))
        .collect();
    fields.push(Field::new(KEY_COLUMN, DataType::Utf8, false));
    fields.push(Field::new(SOURCE_COLUMN, DataType::Utf8, false));
    Schema::new(fields)
}

fn column_array(ty: FieldType, idx: usize, rows: &[Row]) -> ArrayRef {
    let cells = rows.iter().map(|r| &r.values[idx]);
    match ty {
        FieldType::String | FieldType::Json => {
            let mut b = StringBuilder::new();
            for v in cells {
                match v {
                    Typed::Str(s) | Typed::Json(s) => b.append_value(s),
                    other => b.append_option(other.to_text()),
                }
            }
            Arc::new(b.finish())
        }
        FieldType::Int => {
            let mut b = Int64Builder::new();
            for v in cells {
                b.append_option(match v {
                    Typed::Int(i) => Some(*i),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Float => {
            let mut b = Float64Builder::new();
            for v in cells {
                b.append_option(match v {
                    Typed::Float(f) => Some(*f),
                    Typed::Int(i) => Some(*i as f64),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Bool => {
            let mut b = BooleanBuilder::new();
            for v in cells {
                b.append_option(match v {
                    Typed::Bool(x) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for v in cells {
                b.append_option(match v {
                    Typed::Timestamp(t) => Some(*t),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Decimal { precision, scale } => {
            let values: Vec<Option<i128>> = cells
                .map(|v| match v {
                    Typed::Decimal { unscaled, .. } => Some(*unscaled),
                    _ => None,
                })
                .collect();
            let array = Decimal128Array::from(values);
            // Coercion keeps every value within the precision, so this cannot fail; a
            // mismatch would be a bug, kept visible by writing the column without it.
            match array
                .clone()
                .with_precision_and_scale(precision, scale as i8)
            {
                Ok(a) => Arc::new(a),
                Err(_) => Arc::new(array),
            }
        }
        FieldType::Date => {
            let mut b = Date32Builder::new();
            for v in cells {
                b.append_option(match v {
                    Typed::Date(d) => Some(*d),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
    }
}

/// Encodes rows as one Parquet file.
pub fn encode(cols: &[Column], rows: &[Row], source: &str) -> Result<Vec<u8>, String> {
    let schema = Arc::new(arrow_schema(cols));
    let mut arrays: Vec<ArrayRef> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| column_array(c.ty, i, rows))
        .collect();
    let mut keys = StringBuilder::new();
    let mut sources = StringBuilder::new();
    for r in rows {
        keys.append_value(&r.key);
        sources.append_value(source);
    }
    arrays.push(Arc::new(keys.finish()));
    arrays.push(Arc::new(sources.finish()));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("sluice {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn cols() -> Vec<Column> {
        vec![
            Column {
                field: 0,
                name: "id".into(),
                ty: FieldType::String,
                nullable: false,
                rule: None,
            },
            Column {
                field: 1,
                name: "ts".into(),
                ty: FieldType::Timestamp,
                nullable: false,
                rule: None,
            },
            Column {
                field: 2,
                name: "n".into(),
                ty: FieldType::Int,
                nullable: true,
                rule: None,
            },
        ]
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                key: "a".into(),
                version: String::new(),
                values: vec![Typed::Str("a".into()), Typed::Timestamp(5), Typed::Int(1)],
                event_micros: 5,
            },
            Row {
                key: "b".into(),
                version: String::new(),
                values: vec![Typed::Str("b".into()), Typed::Timestamp(6), Typed::Null],
                event_micros: 6,
            },
        ]
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let a = encode(&cols(), &rows(), "raw/x.json.gz").unwrap();
        let b = encode(&cols(), &rows(), "raw/x.json.gz").unwrap();
        assert_eq!(a, b);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(a))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.schema().field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<TimestampMicrosecondType>()
                .value(1),
            6
        );
        assert!(batch.column(2).as_primitive::<Int64Type>().is_null(1));
        assert_eq!(batch.column(3).as_string::<i32>().value(0), "a");
        assert_eq!(batch.column(4).as_string::<i32>().value(1), "raw/x.json.gz");
    }
}
