//! `Filter::parse` on arbitrary text against a schema of every field type: it either fails
//! with a position inside the text or gives a filter that evaluates (on null, present and
//! extreme values) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::{Field, FieldType, Filter};
use sluice_core::schema::Typed;

fn fields() -> Vec<Field> {
    [
        ("s", FieldType::String),
        ("i", FieldType::Int),
        ("f", FieldType::Float),
        ("b", FieldType::Bool),
        ("t", FieldType::Timestamp),
        ("d", FieldType::Date),
        ("j", FieldType::Json),
        (
            "m",
            FieldType::Decimal {
                precision: 12,
                scale: 2,
            },
        ),
    ]
    .into_iter()
    .map(|(n, ty)| Field {
        name: n.into(),
        column: n.into(),
        ty,
        required: false,
    })
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fields = fields();
    match Filter::parse("f", text, &fields) {
        Ok(f) => {
            let nulls = vec![Typed::Null; fields.len()];
            let some = vec![
                Typed::Str("bot-é".into()),
                Typed::Int(i64::MIN),
                Typed::Float(f64::NAN),
                Typed::Bool(true),
                Typed::Timestamp(i64::MAX),
                Typed::Date(i32::MIN),
                Typed::Json("{}".into()),
                Typed::Decimal {
                    unscaled: i128::MAX,
                    scale: 2,
                },
            ];
            let _ = f.keeps(&nulls);
            let _ = f.keeps(&some);
            let _ = f.keeps(&[]);
            assert!(f.fields().iter().all(|i| *i < fields.len()));
        }
        Err(e) => assert!(e.position <= text.len().max(4096), "{e}"),
    }
});
