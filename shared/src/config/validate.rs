//! Validation of a pipeline config: [`PipelineConfig::from_toml`] turns the serde shapes
//! ([`super::raw`]) into the validated types, rejecting every inconsistency with a message that
//! names the dataset and the field.

use std::collections::{BTreeMap, HashSet};

use super::raw::{RawConfig, RawDataset};
use super::*;
use crate::error::{Error, Result};

impl PipelineConfig {
    /// Parses and validates a TOML pipeline document.
    pub fn from_toml(text: &str) -> Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        Self::validate(raw)
    }

    /// Reads a TOML pipeline document from a local path.
    pub fn from_path(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The dataset with this name.
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.name == name)
    }

    /// The dataset whose route is this routing value.
    pub fn route(&self, value: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.route == value)
    }

    fn validate(raw: RawConfig) -> Result<Self> {
        let p = raw.pipeline;
        if p.routing_field.trim().is_empty() {
            return Err(Error::Config(
                "pipeline.routing_field must not be empty".into(),
            ));
        }
        let max_record_bytes = p.max_record_bytes.unwrap_or(DEFAULT_MAX_RECORD_BYTES);
        if max_record_bytes == 0 || max_record_bytes > 10 * DEFAULT_MAX_RECORD_BYTES {
            return Err(Error::Config(format!(
                "pipeline.max_record_bytes must be between 1 and {}, got {max_record_bytes}",
                10 * DEFAULT_MAX_RECORD_BYTES
            )));
        }
        let skew = p
            .max_future_skew_secs
            .unwrap_or(DEFAULT_MAX_FUTURE_SKEW_SECS);
        if !(0..=366 * 24 * 3600).contains(&skew) {
            return Err(Error::Config(format!(
                "pipeline.max_future_skew_secs must be between 0 and one year, got {skew}"
            )));
        }
        let gzip_level = p.gzip_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        if gzip_level > 9 {
            return Err(Error::Config(format!(
                "pipeline.gzip_level must be 0-9, got {gzip_level}"
            )));
        }
        if !is_glue_name(&raw.catalog.database) {
            return Err(Error::Config(format!(
                "catalog.database {:?} must match [a-z][a-z0-9_]* (at most 63 characters)",
                raw.catalog.database
            )));
        }
        if !is_identifier(&raw.warehouse.schema) {
            return Err(Error::Config(format!(
                "warehouse.schema {:?} must match [a-z_][a-z0-9_]* (at most 63 characters)",
                raw.warehouse.schema
            )));
        }
        if raw.datasets.is_empty() {
            return Err(Error::Config("no [[dataset]] declared".into()));
        }
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        let mut datasets = Vec::with_capacity(raw.datasets.len());
        for d in raw.datasets {
            let ds = validate_dataset(d, &p.routing_field)?;
            if !names.insert(ds.name.clone()) {
                return Err(Error::Config(format!(
                    "dataset {:?}: declared twice",
                    ds.name
                )));
            }
            if !routes.insert(ds.route.clone()) {
                return Err(Error::Config(format!(
                    "dataset {:?}: route {:?} is already used by another dataset",
                    ds.name, ds.route
                )));
            }
            datasets.push(ds);
        }
        Ok(PipelineConfig {
            routing_field: p.routing_field,
            max_record_bytes,
            max_future_skew_secs: skew,
            gzip_level,
            catalog: raw.catalog,
            warehouse: raw.warehouse,
            datasets,
        })
    }
}

fn validate_dataset(d: RawDataset, routing_field: &str) -> Result<Dataset> {
    let name = d.name;
    let err = |msg: String| Error::Config(format!("dataset {name:?}: {msg}"));
    if !is_glue_name(&name) {
        return Err(err(
            "name must match [a-z][a-z0-9_]* (at most 63 characters)".into(),
        ));
    }
    let route = d.route.unwrap_or_else(|| name.clone());
    if route.is_empty() {
        return Err(err("route must not be empty".into()));
    }
    if d.fields.is_empty() {
        return Err(err("declares no fields".into()));
    }
    let mut fields = Vec::with_capacity(d.fields.len());
    let mut seen_names = HashSet::new();
    let mut seen_columns = HashSet::new();
    for f in d.fields {
        if f.name.is_empty() || f.name.chars().any(char::is_control) {
            return Err(err(format!(
                "field {:?}: name must be non-empty without control characters",
                f.name
            )));
        }
        if f.name.starts_with(RESERVED_PREFIX) {
            return Err(err(format!(
                "field {:?}: names starting with {RESERVED_PREFIX} are reserved",
                f.name
            )));
        }
        if f.name.split('.').any(str::is_empty) {
            return Err(err(format!(
                "field {:?}: a path needs a name between every pair of dots",
                f.name
            )));
        }
        // A nested field (`payment.method`) is a column `payment_method` unless renamed.
        let column = f.column.unwrap_or_else(|| f.name.replace('.', "_"));
        if !is_identifier(&column) || column.starts_with(RESERVED_PREFIX) {
            return Err(err(format!(
                "field {:?}: column {column:?} must match [a-z_][a-z0-9_]* (at most 63 \
                 characters, not starting with {RESERVED_PREFIX}); set `column` to rename it",
                f.name
            )));
        }
        if !seen_names.insert(f.name.clone()) {
            return Err(err(format!("field {:?}: declared twice", f.name)));
        }
        if !seen_columns.insert(column.clone()) {
            return Err(err(format!(
                "field {:?}: column {column:?} is used twice",
                f.name
            )));
        }
        fields.push(Field {
            name: f.name,
            column,
            ty: f.ty,
            required: f.required,
        });
    }
    let find = |what: &str, field: &str| -> Result<usize> {
        fields
            .iter()
            .position(|f| f.name == field)
            .ok_or_else(|| err(format!("{what} field {field:?} is not declared in fields")))
    };
    let key = match d.key {
        Some(k) => {
            let i = find("key", &k)?;
            let f = &fields[i];
            if !matches!(f.ty, FieldType::String | FieldType::Int) || !f.required {
                return Err(err(format!(
                    "key field {k:?} must be a required string or int field"
                )));
            }
            Some(i)
        }
        None => None,
    };
    let event_time = match d.event_time {
        Some(t) => {
            let i = find("event_time", &t)?;
            let f = &fields[i];
            if f.ty != FieldType::Timestamp || !f.required {
                return Err(err(format!(
                    "event_time field {t:?} must be a required timestamp field"
                )));
            }
            Some(i)
        }
        None => None,
    };
    if let Some(i) = fields.iter().position(|f| f.name == routing_field) {
        if fields[i].ty != FieldType::String {
            return Err(err(format!(
                "field {routing_field:?} is the routing field and must be a string"
            )));
        }
    }
    let mut pii = BTreeMap::new();
    let mut json_pii = Vec::new();
    for (field, rule) in d.pii {
        // A path into a declared json field masks inside its value.
        let inside_json = fields.iter().position(|f| {
            f.ty == FieldType::Json
                && field.len() > f.name.len() + 1
                && field.starts_with(f.name.as_str())
                && field.as_bytes()[f.name.len()] == b'.'
        });
        if let (Some(i), false) = (inside_json, fields.iter().any(|f| f.name == field)) {
            let path: Vec<String> = field[fields[i].name.len() + 1..]
                .split('.')
                .map(str::to_string)
                .collect();
            if path.iter().any(String::is_empty) {
                return Err(err(format!(
                    "pii {field:?}: a path needs a name between every pair of dots"
                )));
            }
            if rule == PiiRule::Drop {
                return Err(err(format!(
                    "pii {field:?}: inside a json value use redact or hash, not drop"
                )));
            }
            json_pii.push((i, path, rule));
            continue;
        }
        let i = find("pii", &field)?;
        let f = &fields[i];
        match rule {
            PiiRule::MaskEmail | PiiRule::TruncateIp | PiiRule::Redact
                if f.ty != FieldType::String =>
            {
                return Err(err(format!(
                    "field {field:?}: pii rule {} needs a string field, it is {}",
                    rule.as_str(),
                    f.ty
                )));
            }
            PiiRule::Hash if matches!(f.ty, FieldType::Json) => {
                return Err(err(format!(
                    "field {field:?}: pii rule hash cannot apply to a json field"
                )));
            }
            _ => {}
        }
        if Some(i) == key
            && matches!(
                rule,
                PiiRule::Drop | PiiRule::Redact | PiiRule::MaskEmail | PiiRule::TruncateIp
            )
        {
            return Err(err(format!(
                "field {field:?}: the key field can only take the pii rule hash (others would merge distinct records)"
            )));
        }
        if Some(i) == event_time {
            return Err(err(format!(
                "field {field:?}: the event_time field cannot take a pii rule"
            )));
        }
        pii.insert(i, rule);
    }
    let mut filters: Vec<Filter> = Vec::with_capacity(d.filters.len());
    for raw in d.filters {
        if !is_glue_name(&raw.name) {
            return Err(err(format!(
                "filter {:?}: name must match [a-z][a-z0-9_]* (at most 63 characters)",
                raw.name
            )));
        }
        if filters.iter().any(|f| f.name == raw.name) {
            return Err(err(format!("filter {:?} is declared twice", raw.name)));
        }
        let filter = Filter::parse(&raw.name, &raw.keep, &fields)
            .map_err(|e| err(format!("filter {:?}: {e} in {:?}", raw.name, raw.keep)))?;
        if let Some(&i) = filter
            .fields()
            .iter()
            .find(|i| pii.get(i) == Some(&PiiRule::Drop))
        {
            return Err(err(format!(
                "filter {:?}: field {:?} is dropped (pii rule drop); a filter cannot read it",
                raw.name, fields[i].name
            )));
        }
        filters.push(filter);
    }
    let mut rollups: Vec<super::Rollup> = Vec::with_capacity(d.rollups.len());
    for r in &d.rollups {
        if rollups.iter().any(|x| x.name == r.name) {
            return Err(err(format!("rollup {:?} is declared twice", r.name)));
        }
        let declared = super::rollup::Declared {
            name: &r.name,
            grain: r.grain,
            dimensions: &r.dimensions,
            measures: r
                .measures
                .iter()
                .map(|m| (m.name.as_str(), m.func, m.field.as_deref()))
                .collect(),
        };
        rollups.push(
            super::rollup::validate(&name, &declared, &fields, &pii, event_time).map_err(err)?,
        );
    }
    Ok(Dataset {
        name,
        route,
        fields,
        key,
        event_time,
        pii,
        json_pii,
        filters,
        rollups,
    })
}

/// `[a-z][a-z0-9_]*`, at most 63 characters: safe in S3 keys, Glue, PostgreSQL and metrics.
pub fn is_glue_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_IDENTIFIER
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// `[a-z_][a-z0-9_]*`, at most 63 characters.
pub fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_IDENTIFIER
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [pipeline]
        routing_field = "type"

        [[dataset]]
        name = "signups"
        route = "signup"
        key = "event_id"
        event_time = "ts"
        fields = [
          { name = "event_id", type = "string", required = true },
          { name = "ts", type = "timestamp", required = true },
          { name = "email", type = "string" },
          { name = "userId", column = "user_id", type = "int" },
        ]
        pii = { email = "mask_email" }
    "#;

    fn err_of(text: &str) -> String {
        match PipelineConfig::from_toml(text) {
            Ok(_) => panic!("config unexpectedly valid"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_valid_config() {
        let c = PipelineConfig::from_toml(GOOD).expect("valid");
        assert_eq!(c.routing_field, "type");
        assert_eq!(c.max_record_bytes, DEFAULT_MAX_RECORD_BYTES);
        let d = c.route("signup").expect("route");
        assert_eq!(d.name, "signups");
        assert_eq!(d.key_field().map(|f| f.name.as_str()), Some("event_id"));
        assert_eq!(
            d.event_time_field().map(|f| f.ty),
            Some(FieldType::Timestamp)
        );
        assert_eq!(d.fields[3].column, "user_id");
        assert_eq!(d.pii_rule(2), Some(PiiRule::MaskEmail));
        assert_eq!(c.catalog.database, "sluice");
    }

    #[test]
    fn errors_name_dataset_and_field() {
        let e = err_of(&GOOD.replace("key = \"event_id\"", "key = \"nope\""));
        assert!(e.contains("signups") && e.contains("nope"), "{e}");
        let e = err_of(&GOOD.replace("{ email = \"mask_email\" }", "{ userId = \"mask_email\" }"));
        assert!(e.contains("userId") && e.contains("mask_email"), "{e}");
        let e = err_of(&GOOD.replace("name = \"signups\"", "name = \"Sign/ups\""));
        assert!(e.contains("Sign/ups"), "{e}");
        let e = err_of(&GOOD.replace("type = \"int\"", "type = \"integer\""));
        assert!(e.contains("integer"), "{e}");
        let e = err_of(&GOOD.replace("column = \"user_id\"", "column = \"User Id\""));
        assert!(e.contains("User Id"), "{e}");
        let e = err_of(&GOOD.replace(
            "{ name = \"ts\", type = \"timestamp\", required = true }",
            "{ name = \"ts\", type = \"string\", required = true }",
        ));
        assert!(e.contains("event_time") && e.contains("ts"), "{e}");
    }

    #[test]
    fn rejects_duplicates_and_unknown_keys() {
        let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[dataset]]").unwrap_or(0)..]);
        assert!(err_of(&twice).contains("declared twice"));
        assert!(err_of(&GOOD.replace("routing_field", "routing_feld")).contains("routing_feld"));
        assert!(err_of("[pipeline]\nrouting_field = \"t\"\n").contains("no [[dataset]]"));
        let e = err_of(&GOOD.replace("mask_email", "mask_everything"));
        assert!(e.contains("mask_everything"), "{e}");
    }

    #[test]
    fn key_cannot_be_dropped() {
        let e = err_of(&GOOD.replace("{ email = \"mask_email\" }", "{ event_id = \"drop\" }"));
        assert!(e.contains("event_id") && e.contains("key"), "{e}");
    }

    #[test]
    fn name_predicates() {
        assert!(is_glue_name("page_views"));
        assert!(!is_glue_name("_x"));
        assert!(!is_glue_name("a/b"));
        assert!(!is_glue_name(".."));
        assert!(!is_glue_name(&"a".repeat(64)));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("X"));
    }

    #[test]
    fn filters_are_checked_against_the_schema_at_cold_start() {
        let with = |filters: &str| format!("{GOOD}\n{filters}");
        let ok = with(
            r#"
        [[dataset.filter]]
        name = "no_test_accounts"
        keep = "not (email matches '@test[.]example$') and userId is not null"
        "#,
        );
        let c = PipelineConfig::from_toml(&ok).expect("valid");
        let d = c.dataset("signups").expect("dataset");
        assert_eq!(d.filters.len(), 1);
        assert_eq!(d.filters[0].name, "no_test_accounts");

        for (filters, want) in [
            (
                "[[dataset.filter]]\nname = \"f\"\nkeep = \"userId > 'x'\"",
                "dataset \"signups\": filter \"f\": at position 9: \"x\" is not a valid int literal",
            ),
            (
                "[[dataset.filter]]\nname = \"f\"\nkeep = \"nope == 1\"",
                "no field \"nope\"",
            ),
            (
                "[[dataset.filter]]\nname = \"Bad Name\"\nkeep = \"userId > 1\"",
                "filter \"Bad Name\": name must match",
            ),
            (
                "[[dataset.filter]]\nname = \"f\"\nkeep = \"userId > 1\"\n[[dataset.filter]]\nname = \"f\"\nkeep = \"userId > 2\"",
                "filter \"f\" is declared twice",
            ),
            (
                "[[dataset.filter]]\nname = \"f\"\nkeep = \"userId > 1\"\nwhen = \"x\"",
                "unknown field `when`",
            ),
        ] {
            let e = err_of(&with(filters));
            assert!(e.contains(want), "{filters}: {e}");
        }
        let dropped = GOOD.replace(
            "pii = { email = \"mask_email\" }",
            "pii = { email = \"drop\" }\n[[dataset.filter]]\nname = \"f\"\nkeep = \"email is null\"",
        );
        let e = err_of(&dropped);
        assert!(
            e.contains("filter \"f\": field \"email\" is dropped"),
            "{e}"
        );
    }

    #[test]
    fn rollups_are_checked_against_the_schema_at_cold_start() {
        let rollup = |body: &str| format!("{GOOD}\n[[dataset.rollup]]\n{body}");
        let ok = rollup(
            "name = \"daily\"\ngrain = \"day\"\ndimensions = [\"email\"]\nmeasures = [{ name = \"n\", fn = \"count\" }, { name = \"users\", fn = \"count_distinct\", field = \"userId\" }, { name = \"first\", fn = \"min\", field = \"ts\" }]",
        );
        let c = PipelineConfig::from_toml(&ok).expect("valid");
        let r = &c.dataset("signups").expect("dataset").rollups[0];
        assert_eq!(
            (r.name.as_str(), r.grain, r.dimensions.as_slice()),
            ("daily", Grain::Day, &[2usize][..])
        );
        assert_eq!(r.measures[1].func, MeasureFn::CountDistinct);
        for (body, want) in [
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"s\", fn = \"sum\", field = \"email\" }]", "rollup \"r\": measure \"s\": sum cannot aggregate \"email\" (string)"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"s\", fn = \"sum\", field = \"nope\" }]", "measure \"s\" field \"nope\" is not a field"),
            ("name = \"r\"\ngrain = \"hour\"\ndimensions = [\"nope\"]\nmeasures = [{ name = \"n\", fn = \"count\" }]", "dimension \"nope\" is not a field"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"m\", fn = \"max\" }]", "max needs a field"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = []", "declares no measures"),
            ("name = \"r\"\ngrain = \"week\"\nmeasures = [{ name = \"n\", fn = \"count\" }]", "unknown variant `week`"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"n\", fn = \"median\" }]", "unknown variant `median`"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"n\", fn = \"count\" }, { name = \"n\", fn = \"count\" }]", "column \"n\" appears twice"),
            ("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"bucket\", fn = \"count\" }]", "column \"bucket\" appears twice"),
            ("name = \"R\"\ngrain = \"hour\"\nmeasures = [{ name = \"n\", fn = \"count\" }]", "rollup \"R\": name must match"),
        ] {
            let e = err_of(&rollup(body));
            assert!(e.contains(want), "{body}: {e}");
            assert!(e.contains("dataset \"signups\"") || e.contains("unknown variant"), "{e}");
        }
        let dropped = rollup("name = \"r\"\ngrain = \"hour\"\ndimensions = [\"email\"]\nmeasures = [{ name = \"n\", fn = \"count\" }]")
            .replace("pii = { email = \"mask_email\" }", "pii = { email = \"drop\" }");
        assert!(err_of(&dropped).contains("dimension \"email\" is dropped"));
        let no_time =
            rollup("name = \"r\"\ngrain = \"hour\"\nmeasures = [{ name = \"n\", fn = \"count\" }]")
                .replace("event_time = \"ts\"\n", "");
        assert!(err_of(&no_time).contains("declares no event_time"));
    }

    #[test]
    fn nested_fields_are_paths_with_a_flat_default_column() {
        let text = GOOD
            .replace(
                "{ name = \"email\", type = \"string\" },",
                "{ name = \"contact.email\", type = \"string\" },\n          { name = \"device.os.name\", column = \"os\", type = \"string\" },",
            )
            .replace("pii = { email = \"mask_email\" }", "pii = { \"contact.email\" = \"mask_email\" }");
        let c = PipelineConfig::from_toml(&text).expect("valid");
        let d = c.dataset("signups").expect("dataset");
        let cols: Vec<&str> = d.fields.iter().map(|f| f.column.as_str()).collect();
        assert_eq!(cols, ["event_id", "ts", "contact_email", "os", "user_id"]);
        assert_eq!(d.pii_rule(2), Some(PiiRule::MaskEmail));
        for bad in ["contact.", ".email", "contact..email"] {
            let e = err_of(
                &GOOD
                    .replace("name = \"email\"", &format!("name = \"{bad}\""))
                    .replace("pii = { email = \"mask_email\" }", ""),
            );
            assert!(
                e.contains("a path needs a name between every pair of dots"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn decimal_types_parse_and_refuse_bad_forms() {
        for (text, want) in [
            (
                "decimal(12,2)",
                Ok(FieldType::Decimal {
                    precision: 12,
                    scale: 2,
                }),
            ),
            (
                "decimal(38, 10)",
                Ok(FieldType::Decimal {
                    precision: 38,
                    scale: 10,
                }),
            ),
            (
                "decimal(5)",
                Ok(FieldType::Decimal {
                    precision: 5,
                    scale: 0,
                }),
            ),
            ("int", Ok(FieldType::Int)),
        ] {
            assert_eq!(text.parse::<FieldType>(), want, "{text}");
        }
        for bad in [
            "decimal(0,0)",
            "decimal(39,2)",
            "decimal(4,5)",
            "decimal(x,2)",
            "decimal",
            "decimal(12,2",
            "money",
        ] {
            let e = bad.parse::<FieldType>().expect_err(bad);
            assert!(e.contains("expected string, int"), "{bad}: {e}");
        }
        assert_eq!(
            FieldType::Decimal {
                precision: 12,
                scale: 2
            }
            .to_string(),
            "decimal(12,2)"
        );
        let e = err_of(&GOOD.replace("type = \"int\"", "type = \"decimal(40,2)\""));
        assert!(e.contains("unknown type \"decimal(40,2)\""), "{e}");
    }

    #[test]
    fn pii_rules_reach_into_json_values_by_path() {
        let text = GOOD
            .replace(
                "{ name = \"email\", type = \"string\" },",
                "{ name = \"email\", type = \"string\" },\n          { name = \"profile\", type = \"json\" },",
            )
            .replace(
                "pii = { email = \"mask_email\" }",
                "pii = { email = \"mask_email\", \"profile.card.number\" = \"redact\", \"profile.phone\" = \"hash\" }",
            );
        let c = PipelineConfig::from_toml(&text).expect("valid");
        let d = c.dataset("signups").expect("dataset");
        assert_eq!(
            d.json_pii,
            vec![
                (
                    3,
                    vec!["card".to_string(), "number".to_string()],
                    PiiRule::Redact
                ),
                (3, vec!["phone".to_string()], PiiRule::Hash),
            ]
        );
        let dropped = text.replace(
            "\"profile.phone\" = \"hash\"",
            "\"profile.phone\" = \"drop\"",
        );
        assert!(err_of(&dropped).contains("inside a json value use redact or hash"));
        let unknown = text.replace("\"profile.phone\"", "\"nope.phone\"");
        assert!(
            err_of(&unknown).contains("\"nope.phone\" is not declared"),
            "{}",
            err_of(&unknown)
        );
    }
}
