//! Dataset filters: named predicates over a dataset's declared fields, parsed and type-checked
//! against the schema at cold start and evaluated on each record's coerced values.
//!
//! A filter keeps the records for which its expression is true; the others are removed from
//! curated and PostgreSQL (raw keeps everything, so a changed filter can be backfilled) and
//! counted under the filter's name. The grammar (keywords are lowercase):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | test
//! test    := field cmp literal | field "in" "[" literal ("," literal)* "]"
//!          | field "is" ["not"] "null" | field "starts_with" string
//!          | field "matches" string | field            (a bool field)
//! cmp     := "==" | "!=" | "<" | "<=" | ">" | ">="
//! literal := number | string ('...' or "...") | "true" | "false"
//! ```
//!
//! Literals are coerced with the field's own type (`schema::coerce_str`), so
//! `ts >= "2025-01-01T00:00:00Z"` compares timestamps and `amount > 10` floats. A comparison
//! with a null (absent) value is false; `is null` tests for it. `<`-style comparisons need an
//! ordered type (int, float, timestamp, date, string), `starts_with` and `matches` (a regular
//! expression in `regex-lite` syntax, linear-time, ASCII classes only) a string field; `json`
//! fields can only be tested for null.

use std::cmp::Ordering;
use std::fmt;

use regex_lite::Regex;

use super::{Field, FieldType};
use crate::schema::{coerce_str, Typed};

/// A parsed, type-checked filter of one dataset.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The filter's name: its metric and summary label.
    pub name: String,
    /// The expression as written.
    pub source: String,
    expr: Expr,
}

impl PartialEq for Filter {
    /// Two filters are equal when they have the same name and expression text.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.source == other.source
    }
}

/// Why a filter expression is refused: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset into the expression.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        field: usize,
        op: CmpOp,
        value: Typed<'static>,
    },
    In {
        field: usize,
        values: Vec<Typed<'static>>,
    },
    IsNull {
        field: usize,
    },
    StartsWith {
        field: usize,
        prefix: String,
    },
    Matches {
        field: usize,
        re: Pattern,
    },
    IsTrue {
        field: usize,
    },
}

/// A `matches` pattern: a literal with optional anchors (`^lit`, `lit$`, `^lit$`, `lit`) is
/// compared as text, which is what the regular expression would do, without running it.
#[derive(Debug, Clone)]
enum Pattern {
    Literal {
        text: String,
        start: bool,
        end: bool,
    },
    Regex(Regex),
}

impl Pattern {
    fn new(src: &str, re: Regex) -> Pattern {
        let start = src.starts_with('^');
        let body = src.strip_prefix('^').unwrap_or(src);
        let end = body.ends_with('$');
        let body = body.strip_suffix('$').unwrap_or(body);
        let plain = !body.chars().any(|c| "\\.+*?()|[]{}^$".contains(c));
        match plain {
            true => Pattern::Literal {
                text: body.to_string(),
                start,
                end,
            },
            false => Pattern::Regex(re),
        }
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Literal { text, start, end } => match (start, end) {
                (true, true) => s == text,
                (true, false) => s.starts_with(text.as_str()),
                (false, true) => s.ends_with(text.as_str()),
                (false, false) => s.contains(text.as_str()),
            },
            Pattern::Regex(re) => re.is_match(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Filter {
    /// Parses `source` and checks it against `fields`.
    pub fn parse(name: &str, source: &str, fields: &[Field]) -> Result<Filter, FilterError> {
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            fields,
            end: source.len(),
        };
        let expr = p.expr()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(err(t.at, format!("unexpected {}", t.kind)));
        }
        Ok(Filter {
            name: name.to_string(),
            source: source.to_string(),
            expr,
        })
    }

    /// Whether the record whose coerced values (aligned with the dataset's fields) are
    /// `values` is kept.
    pub fn keeps(&self, values: &[Typed<'_>]) -> bool {
        eval(&self.expr, values)
    }

    /// Indexes of the fields the expression reads.
    pub fn fields(&self) -> Vec<usize> {
        let mut out = Vec::new();
        collect_fields(&self.expr, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn collect_fields(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            collect_fields(a, out);
            collect_fields(b, out);
        }
        Expr::Not(a) => collect_fields(a, out),
        Expr::Compare { field, .. }
        | Expr::In { field, .. }
        | Expr::IsNull { field }
        | Expr::StartsWith { field, .. }
        | Expr::Matches { field, .. }
        | Expr::IsTrue { field } => out.push(*field),
    }
}

fn eval(e: &Expr, values: &[Typed<'_>]) -> bool {
    let get = |i: usize| values.get(i).unwrap_or(&Typed::Null);
    match e {
        Expr::And(a, b) => eval(a, values) && eval(b, values),
        Expr::Or(a, b) => eval(a, values) || eval(b, values),
        Expr::Not(a) => !eval(a, values),
        Expr::Compare { field, op, value } => match compare(get(*field), value) {
            None => false,
            Some(o) => match op {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            },
        },
        Expr::In { field, values: set } => {
            let v = get(*field);
            set.iter().any(|s| compare(v, s) == Some(Ordering::Equal))
        }
        Expr::IsNull { field } => matches!(get(*field), Typed::Null),
        Expr::StartsWith { field, prefix } => match get(*field) {
            Typed::Str(s) => s.starts_with(prefix.as_str()),
            _ => false,
        },
        Expr::Matches { field, re } => match get(*field) {
            Typed::Str(s) => re.is_match(s),
            _ => false,
        },
        Expr::IsTrue { field } => matches!(get(*field), Typed::Bool(true)),
    }
}

/// The order of two values of one field type; `None` when either is null (or NaN).
fn compare(a: &Typed<'_>, b: &Typed<'_>) -> Option<Ordering> {
    match (a, b) {
        (Typed::Str(x), Typed::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Typed::Int(x), Typed::Int(y)) => Some(x.cmp(y)),
        (Typed::Float(x), Typed::Float(y)) => x.partial_cmp(y),
        (Typed::Bool(x), Typed::Bool(y)) => Some(x.cmp(y)),
        (Typed::Timestamp(x), Typed::Timestamp(y)) => Some(x.cmp(y)),
        (Typed::Date(x), Typed::Date(y)) => Some(x.cmp(y)),
        // Both at the field's scale: the unscaled integers order like the values.
        (
            Typed::Decimal {
                unscaled: x,
                scale: sx,
            },
            Typed::Decimal {
                unscaled: y,
                scale: sy,
            },
        ) if sx == sy => Some(x.cmp(y)),
        _ => None,
    }
}

fn err(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident(String),
    Str(String),
    Number(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Ident(s) => write!(f, "{s:?}"),
            Kind::Str(_) => f.write_str("a string"),
            Kind::Number(n) => write!(f, "number {n}"),
            Kind::Op(o) => write!(f, "{o:?}"),
            Kind::LParen => f.write_str("\"(\""),
            Kind::RParen => f.write_str("\")\""),
            Kind::LBracket => f.write_str("\"[\""),
            Kind::RBracket => f.write_str("\"]\""),
            Kind::Comma => f.write_str("\",\""),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    at: usize,
}

/// Longest expression accepted (a filter is a line of config, not a program).
const MAX_SOURCE: usize = 4096;
/// Deepest nesting of `not` and parentheses.
const MAX_DEPTH: usize = 32;

fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    if src.len() > MAX_SOURCE {
        return Err(err(MAX_SOURCE, format!("longer than {MAX_SOURCE} bytes")));
    }
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => Kind::LParen,
            b')' => Kind::RParen,
            b'[' => Kind::LBracket,
            b']' => Kind::RBracket,
            b',' => Kind::Comma,
            b'=' | b'!' | b'<' | b'>' => {
                let two = b.get(i + 1) == Some(&b'=');
                let op = match (c, two) {
                    (b'=', true) => "==",
                    (b'!', true) => "!=",
                    (b'<', true) => "<=",
                    (b'>', true) => ">=",
                    (b'<', false) => "<",
                    (b'>', false) => ">",
                    _ => return Err(err(at, "expected ==, !=, <, <=, > or >=")),
                };
                i += op.len();
                out.push(Token {
                    kind: Kind::Op(op),
                    at,
                });
                continue;
            }
            b'\'' | b'"' => {
                let (s, next) = string(src, i)?;
                i = next;
                out.push(Token {
                    kind: Kind::Str(s),
                    at,
                });
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                out.push(Token {
                    kind: Kind::Number(src[start..i].to_string()),
                    at,
                });
                continue;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push(Token {
                    kind: Kind::Ident(src[start..i].to_string()),
                    at,
                });
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(at, format!("unexpected character {ch:?}")));
            }
        };
        i += 1;
        out.push(Token { kind, at });
    }
    Ok(out)
}

/// A quoted string starting at `start` (its quote); `\\`, `\'` and `\"` are the escapes.
fn string(src: &str, start: usize) -> Result<(String, usize), FilterError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '\'' | '"'))) => out.push(e),
                _ => {
                    return Err(err(
                        start + 1 + off,
                        "unknown escape (use \\\\, \\' or \\\")",
                    ))
                }
            },
            c if c == quote => return Ok((out, start + 1 + off + 1)),
            c => out.push(c),
        }
    }
    Err(err(start, "unterminated string"))
}

struct Parser<'f> {
    tokens: Vec<Token>,
    pos: usize,
    fields: &'f [Field],
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Kind::Ident(w)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        self.or(0)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        if depth > MAX_DEPTH {
            return Err(err(self.at(), format!("nested deeper than {MAX_DEPTH}")));
        }
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&Kind::LParen) {
            self.pos += 1;
            let e = self.or(depth + 1)?;
            match self.next() {
                Some(Token {
                    kind: Kind::RParen, ..
                }) => return Ok(e),
                _ => return Err(err(self.at_prev(), "expected \")\"")),
            }
        }
        self.test()
    }

    fn at_prev(&self) -> usize {
        self.tokens
            .get(self.pos.saturating_sub(1))
            .map_or(self.end, |t| t.at)
    }

    fn field(&mut self) -> Result<(usize, &Field, usize), FilterError> {
        let at = self.at();
        match self.next() {
            Some(Token {
                kind: Kind::Ident(name),
                ..
            }) if !matches!(name.as_str(), "and" | "or" | "not" | "in" | "is") => {
                match self.fields.iter().position(|f| f.name == name) {
                    Some(i) => Ok((i, &self.fields[i], at)),
                    None => Err(err(at, format!("no field {name:?} in the dataset"))),
                }
            }
            Some(t) => Err(err(at, format!("expected a field name, found {}", t.kind))),
            None => Err(err(at, "expected a field name, found the end")),
        }
    }

    fn test(&mut self) -> Result<Expr, FilterError> {
        let (field, f, at) = self.field()?;
        let (ty, name) = (f.ty, f.name.clone());
        match self.peek().cloned() {
            Some(Kind::Op(op)) => {
                self.pos += 1;
                let op = match op {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    ">" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                if ty == FieldType::Json || (ordered && ty == FieldType::Bool) {
                    return Err(err(
                        at,
                        format!("field {name:?} ({ty}) cannot be compared that way"),
                    ));
                }
                let value = self.literal(ty, &name)?;
                Ok(Expr::Compare { field, op, value })
            }
            Some(Kind::Ident(w)) if w == "in" => {
                self.pos += 1;
                if ty == FieldType::Json {
                    return Err(err(
                        at,
                        format!("field {name:?} (json) cannot be tested with in"),
                    ));
                }
                if self.next().map(|t| t.kind) != Some(Kind::LBracket) {
                    return Err(err(self.at_prev(), "expected \"[\" after in"));
                }
                let mut values = vec![self.literal(ty, &name)?];
                loop {
                    match self.next().map(|t| t.kind) {
                        Some(Kind::Comma) => values.push(self.literal(ty, &name)?),
                        Some(Kind::RBracket) => break,
                        _ => return Err(err(self.at_prev(), "expected \",\" or \"]\"")),
                    }
                }
                Ok(Expr::In { field, values })
            }
            Some(Kind::Ident(w)) if w == "is" => {
                self.pos += 1;
                let negated = self.keyword("not");
                if !self.keyword("null") {
                    return Err(err(self.at(), "expected null after is"));
                }
                let e = Expr::IsNull { field };
                Ok(if negated { Expr::Not(Box::new(e)) } else { e })
            }
            Some(Kind::Ident(w)) if w == "starts_with" || w == "matches" => {
                self.pos += 1;
                if ty != FieldType::String {
                    return Err(err(
                        at,
                        format!("{w} needs a string field; {name:?} is {ty}"),
                    ));
                }
                let lit_at = self.at();
                let Some(Token {
                    kind: Kind::Str(s), ..
                }) = self.next()
                else {
                    return Err(err(lit_at, format!("expected a string after {w}")));
                };
                if w == "starts_with" {
                    return Ok(Expr::StartsWith { field, prefix: s });
                }
                let re = regex_lite::RegexBuilder::new(&s)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| err(lit_at, format!("invalid regular expression: {e}")))?;
                Ok(Expr::Matches {
                    field,
                    re: Pattern::new(&s, re),
                })
            }
            _ if ty == FieldType::Bool => Ok(Expr::IsTrue { field }),
            _ => Err(err(
                self.at(),
                format!("expected a comparison, in, is, starts_with or matches after {name:?}"),
            )),
        }
    }

    /// A literal, coerced to the field's type the way record values are.
    fn literal(&mut self, ty: FieldType, field: &str) -> Result<Typed<'static>, FilterError> {
        let at = self.at();
        let (text, fits) = match self.next().map(|t| t.kind) {
            Some(Kind::Str(s)) => {
                let fits = matches!(
                    ty,
                    FieldType::String | FieldType::Timestamp | FieldType::Date
                );
                (s, fits)
            }
            Some(Kind::Number(n)) => (
                n,
                matches!(
                    ty,
                    FieldType::Int | FieldType::Float | FieldType::Decimal { .. }
                ),
            ),
            Some(Kind::Ident(w)) if w == "true" || w == "false" => (w, ty == FieldType::Bool),
            Some(k) => return Err(err(at, format!("expected a literal, found {k}"))),
            None => return Err(err(at, "expected a literal, found the end")),
        };
        match coerce_str(ty, &text) {
            Ok(v) if fits && v != Typed::Null => Ok(v.into_owned()),
            _ => Err(err(
                at,
                format!("{text:?} is not a valid {ty} literal (field {field:?})"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<Field> {
        [
            ("order_id", FieldType::String, true),
            ("amount", FieldType::Float, true),
            ("items", FieldType::Int, false),
            ("currency", FieldType::String, false),
            ("ts", FieldType::Timestamp, true),
            ("gift", FieldType::Bool, false),
            ("day", FieldType::Date, false),
            ("payment", FieldType::Json, false),
        ]
        .into_iter()
        .map(|(n, ty, required)| Field {
            name: n.into(),
            column: n.into(),
            ty,
            required,
        })
        .collect()
    }

    fn row(
        id: &str,
        amount: f64,
        items: Option<i64>,
        currency: Option<&str>,
        gift: bool,
    ) -> Vec<Typed<'static>> {
        vec![
            Typed::Str(id.to_string().into()),
            Typed::Float(amount),
            items.map_or(Typed::Null, Typed::Int),
            currency.map_or(Typed::Null, |c| Typed::Str(c.to_string().into())),
            Typed::Timestamp(1_763_802_000_000_000),
            Typed::Bool(gift),
            Typed::Date(20_414),
            Typed::Null,
        ]
    }

    fn keeps(src: &str, r: &[Typed<'_>]) -> bool {
        Filter::parse("f", src, &fields()).expect("parses").keeps(r)
    }

    #[test]
    fn operators_on_every_type() {
        let r = row("o-1", 12.5, Some(3), Some("EUR"), true);
        for (src, want) in [
            ("amount > 10", true),
            ("amount > 12.5", false),
            ("amount >= 12.5", true),
            ("amount < 1e3", true),
            ("amount == 12.5 and items == 3", true),
            ("items != 3", false),
            ("items <= 2 or currency == 'EUR'", true),
            ("currency in ['USD', \"EUR\"]", true),
            ("currency in ['USD']", false),
            ("not (currency in ['USD'])", true),
            ("currency is not null", true),
            ("currency is null", false),
            ("payment is null", true),
            ("order_id starts_with 'o-'", true),
            ("order_id starts_with 'test-'", false),
            ("order_id matches '^o-[0-9]+$'", true),
            ("ts >= '2025-11-22T09:00:00Z'", true),
            ("ts < \"2025-11-22T09:00:00Z\"", false),
            ("day == '2025-11-22'", true),
            ("gift", true),
            ("not gift", false),
            ("gift == false", false),
            (
                "not not (amount > 1 and (items > 1 or currency == 'x'))",
                true,
            ),
        ] {
            assert_eq!(keeps(src, &r), want, "{src}");
        }
    }

    #[test]
    fn decimal_fields_compare_exactly() {
        let fields = vec![Field {
            name: "price".into(),
            column: "price".into(),
            ty: FieldType::Decimal {
                precision: 12,
                scale: 2,
            },
            required: true,
        }];
        let row = [Typed::Decimal {
            unscaled: 1999,
            scale: 2,
        }];
        for (src, want) in [
            ("price == 19.99", true),
            ("price != 19.990", false),
            ("price in [1, 19.99]", true),
            ("price < 20", true),
            ("price > 1e1", true),
        ] {
            let f = Filter::parse("f", src, &fields).expect(src);
            assert_eq!(f.keeps(&row), want, "{src}");
        }
        // A literal the column cannot hold exactly is refused, never rounded.
        for bad in ["price > 19.989", "price >= '19.99'"] {
            let e = Filter::parse("f", bad, &fields).expect_err(bad);
            assert!(e.message.contains("decimal(12,2)"), "{bad}: {e}");
        }
    }

    #[test]
    fn comparisons_with_null_are_false() {
        let r = row("o-1", 1.0, None, None, false);
        for src in [
            "items == 3",
            "items != 3",
            "items < 100",
            "currency in ['EUR']",
            "currency starts_with ''",
        ] {
            assert!(!keeps(src, &r), "{src}");
        }
        assert!(keeps("items is null and not (items == 3)", &r));
    }

    #[test]
    fn errors_say_where_and_what() {
        for (src, at, what) in [
            ("amount >", 8, "expected a literal"),
            ("amountt > 1", 0, "no field \"amountt\""),
            ("amount > 'ten'", 9, "not a valid float literal"),
            ("order_id == 3", 12, "not a valid string literal"),
            ("items > 1.5", 8, "not a valid int literal"),
            ("payment == 1", 0, "cannot be compared"),
            ("gift < true", 0, "cannot be compared"),
            ("amount starts_with 'x'", 0, "needs a string field"),
            ("order_id matches '('", 17, "invalid regular expression"),
            ("currency in ['EUR' 'USD']", 19, "expected \",\" or \"]\""),
            ("(amount > 1", 11, "expected \")\""),
            ("amount > 1 amount", 11, "unexpected \"amount\""),
            ("amount > 1 && items > 1", 11, "unexpected character '&'"),
            ("order_id == 'x", 12, "unterminated string"),
            ("currency", 8, "expected a comparison"),
            ("ts > 'yesterday'", 5, "not a valid timestamp literal"),
        ] {
            let e = Filter::parse("f", src, &fields()).expect_err(src);
            assert_eq!(e.position, at, "{src}: {e}");
            assert!(e.message.contains(what), "{src}: {e}");
        }
    }

    #[test]
    fn hostile_sources_are_refused_without_recursion_blowup() {
        let deep = format!("{}amount > 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Filter::parse("f", &deep, &fields()).is_err());
        let nots = format!("{}gift", "not ".repeat(1000));
        assert!(Filter::parse("f", &nots, &fields()).is_err());
        assert!(Filter::parse("f", "", &fields()).is_err());
        assert!(Filter::parse("f", "é", &fields()).is_err());
    }

    #[test]
    fn reports_the_fields_it_reads() {
        let f = Filter::parse("f", "gift or amount > 1 and not (gift)", &fields()).expect("ok");
        assert_eq!(f.fields(), vec![1, 5]);
    }

    #[test]
    fn literal_patterns_match_as_their_regular_expressions_do() {
        let hay = [
            "",
            "/health",
            "/api/health",
            "/health/x",
            "x/healthy",
            "HEALTH",
            "/heal",
            "a\n/health",
        ];
        for src in [
            "/health$",
            "^/health",
            "^/health$",
            "/health",
            "health",
            "^$",
            "",
            "a.c",
            "^a+$",
        ] {
            let re = regex_lite::Regex::new(src).expect("regex");
            let p = Pattern::new(src, re.clone());
            let literal = matches!(p, Pattern::Literal { .. });
            assert_eq!(literal, !src.contains(['.', '+']), "{src}");
            for h in hay {
                assert_eq!(p.is_match(h), re.is_match(h), "{src:?} on {h:?}");
            }
        }
    }
}
