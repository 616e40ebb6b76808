//! Dataset rollups: declared aggregations over a dataset's records, by a time grain of its
//! event time and by dimension fields, with `count`, `sum`, `min`, `max` and `count_distinct`
//! measures. s3-transform materialises each in PostgreSQL as `<schema>.<dataset>_<rollup>`,
//! recomputing exactly the buckets a load touched in the load's own transaction, so a rollup
//! always equals a `GROUP BY` over the de-duplicated table.

use std::fmt;

use serde::Deserialize;

use super::{is_glue_name, Field, FieldType, PiiRule, MAX_IDENTIFIER};

/// A validated rollup of one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// The rollup's name; its table is `<dataset>_<name>`.
    pub name: String,
    /// The time bucket of the dataset's event time.
    pub grain: Grain,
    /// Indexes of the dimension fields, in declaration order.
    pub dimensions: Vec<usize>,
    /// The measures, in declaration order.
    pub measures: Vec<Measure>,
}

/// The time bucket of a rollup (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    /// Buckets start on the hour.
    Hour,
    /// Buckets start at midnight UTC.
    Day,
}

impl Grain {
    /// The unit as PostgreSQL's `date_trunc` and `interval` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    /// The bucket (its start, epoch microseconds) of a time in epoch microseconds.
    pub fn bucket_of(self, micros: i64) -> i64 {
        let width: i64 = match self {
            Grain::Hour => 3_600_000_000,
            Grain::Day => 86_400_000_000,
        };
        micros.div_euclid(width) * width
    }
}

/// One measure of a rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    /// The measure's column name.
    pub name: String,
    /// The aggregate.
    pub func: MeasureFn,
    /// Index of the field it aggregates (`None` only for `count`, which counts records).
    pub field: Option<usize>,
}

/// The aggregates a measure can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureFn {
    /// Records (or, with a field, records where the field is not null).
    Count,
    /// Sum of an `int` or `float` field.
    Sum,
    /// Smallest value of an `int`, `float`, `timestamp`, `date` or `string` field.
    Min,
    /// Largest value of an `int`, `float`, `timestamp`, `date` or `string` field.
    Max,
    /// Distinct non-null values of a field (not `json`).
    CountDistinct,
}

impl MeasureFn {
    /// The name users write.
    pub fn as_str(self) -> &'static str {
        match self {
            MeasureFn::Count => "count",
            MeasureFn::Sum => "sum",
            MeasureFn::Min => "min",
            MeasureFn::Max => "max",
            MeasureFn::CountDistinct => "count_distinct",
        }
    }
}

impl fmt::Display for MeasureFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rollup as written, before validation (see `raw.rs`).
pub(super) struct Declared<'a> {
    pub(super) name: &'a str,
    pub(super) grain: Grain,
    pub(super) dimensions: &'a [String],
    pub(super) measures: Vec<(&'a str, MeasureFn, Option<&'a str>)>,
}

/// Checks one declared rollup of `dataset` against its fields; the error names the rollup and
/// the field.
pub(super) fn validate(
    dataset: &str,
    d: &Declared<'_>,
    fields: &[Field],
    pii: &std::collections::BTreeMap<usize, PiiRule>,
    event_time: Option<usize>,
) -> Result<Rollup, String> {
    let name = d.name;
    if !is_glue_name(name) {
        return Err(format!(
            "rollup {name:?}: name must match [a-z][a-z0-9_]* (at most 63 characters)"
        ));
    }
    if dataset.len() + 1 + name.len() > MAX_IDENTIFIER {
        return Err(format!(
            "rollup {name:?}: table name {dataset}_{name} is longer than {MAX_IDENTIFIER} characters"
        ));
    }
    if event_time.is_none() {
        return Err(format!(
            "rollup {name:?}: the dataset declares no event_time to bucket by"
        ));
    }
    let field = |f: &str, what: &str| -> Result<usize, String> {
        let i = fields.iter().position(|x| x.name == f).ok_or_else(|| {
            format!("rollup {name:?}: {what} {f:?} is not a field of the dataset")
        })?;
        if pii.get(&i) == Some(&PiiRule::Drop) {
            return Err(format!(
                "rollup {name:?}: {what} {f:?} is dropped (pii rule drop)"
            ));
        }
        Ok(i)
    };
    let mut columns: Vec<String> = vec!["bucket".into()];
    let mut take = |column: &str| -> Result<(), String> {
        if column == "bucket" || columns.iter().any(|c| c == column) {
            return Err(format!("rollup {name:?}: column {column:?} appears twice"));
        }
        columns.push(column.to_string());
        Ok(())
    };
    let mut dimensions = Vec::with_capacity(d.dimensions.len());
    for dim in d.dimensions {
        let i = field(dim, "dimension")?;
        if fields[i].ty == FieldType::Json {
            return Err(format!(
                "rollup {name:?}: dimension {dim:?} is json; group by a typed field"
            ));
        }
        take(&fields[i].column)?;
        dimensions.push(i);
    }
    if d.measures.is_empty() {
        return Err(format!("rollup {name:?}: declares no measures"));
    }
    let mut measures = Vec::with_capacity(d.measures.len());
    for (m, func, f) in &d.measures {
        if !is_glue_name(m) {
            return Err(format!(
                "rollup {name:?}: measure {m:?}: name must match [a-z][a-z0-9_]*"
            ));
        }
        take(m)?;
        let field = match (func, f) {
            (MeasureFn::Count, None) => None,
            (_, None) => {
                return Err(format!(
                    "rollup {name:?}: measure {m:?}: {func} needs a field"
                ))
            }
            (_, Some(f)) => {
                let i = field(f, &format!("measure {m:?} field"))?;
                let ty = fields[i].ty;
                let ok = match func {
                    MeasureFn::Sum => matches!(
                        ty,
                        FieldType::Int | FieldType::Float | FieldType::Decimal { .. }
                    ),
                    MeasureFn::Min | MeasureFn::Max => matches!(
                        ty,
                        FieldType::Int
                            | FieldType::Float
                            | FieldType::Decimal { .. }
                            | FieldType::Timestamp
                            | FieldType::Date
                            | FieldType::String
                    ),
                    MeasureFn::Count | MeasureFn::CountDistinct => ty != FieldType::Json,
                };
                if !ok {
                    return Err(format!(
                        "rollup {name:?}: measure {m:?}: {func} cannot aggregate {f:?} ({ty})"
                    ));
                }
                Some(i)
            }
        };
        measures.push(Measure {
            name: m.to_string(),
            func: *func,
            field,
        });
    }
    Ok(Rollup {
        name: name.to_string(),
        grain: d.grain,
        dimensions,
        measures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_the_hour_or_day_in_utc() {
        let t = 1_763_802_930_123_456; // 2025-11-22T09:15:30.123456Z
        assert_eq!(Grain::Hour.bucket_of(t), 1_763_802_000_000_000);
        assert_eq!(Grain::Day.bucket_of(t), 1_763_769_600_000_000);
        assert_eq!(Grain::Hour.bucket_of(-1), -3_600_000_000);
    }
}
