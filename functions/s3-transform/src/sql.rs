//! How the PostgreSQL load spells things: quoted identifiers and the column type of each
//! schema type. Shared by the merge ([`crate::warehouse`]) and the rollups ([`crate::rollup`]).

use sluice_core::config::FieldType;
use tokio_postgres::types::Type;

/// A quoted SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The PostgreSQL column type of a schema type.
pub fn pg_type(ty: FieldType) -> (String, Type) {
    let (sql, t) = match ty {
        FieldType::String => ("text", Type::TEXT),
        FieldType::Int => ("bigint", Type::INT8),
        FieldType::Float => ("double precision", Type::FLOAT8),
        FieldType::Bool => ("boolean", Type::BOOL),
        FieldType::Timestamp => ("timestamptz", Type::TIMESTAMPTZ),
        FieldType::Date => ("date", Type::DATE),
        FieldType::Json => ("jsonb", Type::JSONB),
        FieldType::Decimal { precision, scale } => {
            return (format!("numeric({precision},{scale})"), Type::NUMERIC)
        }
    };
    (sql.to_string(), t)
}
