//! Exact decimals for `decimal(p,s)` fields: a value is its unscaled integer at the field's
//! scale (`12.50` in `decimal(10,2)` is 1250), parsed from the JSON number's own text or a
//! numeric string, never through `f64`. A value that would need rounding (more fraction digits
//! than the scale holds) or has more digits than the precision is refused, never changed.

use std::fmt;

/// The largest precision: what Parquet's `DECIMAL` in 16 bytes, Glue and Athena hold.
pub const MAX_PRECISION: u8 = 38;

/// Why a text is not a value of a `decimal(p,s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a decimal number (`1.5`, `-3`, `2e3`, `0.25E-1` are).
    NotANumber,
    /// More digits after the point than the scale: storing it would round.
    TooManyFractionDigits,
    /// More digits in all than the precision allows.
    TooManyDigits,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecimalError::NotANumber => "not a decimal number",
            DecimalError::TooManyFractionDigits => {
                "more digits after the point than the scale (it would be rounded)"
            }
            DecimalError::TooManyDigits => "more digits than the precision",
        })
    }
}

/// `text` as the unscaled integer of a `decimal(precision, scale)`, exactly.
pub fn parse(text: &str, precision: u8, scale: u8) -> Result<i128, DecimalError> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = t[i + 1..].parse().map_err(|_| DecimalError::NotANumber)?;
            (&t[..i], e)
        }
        None => (t, 0),
    };
    if !(-10_000..=10_000).contains(&exponent) {
        return Err(DecimalError::NotANumber);
    }
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(DecimalError::NotANumber);
    }
    // value = digits × 10^shift, where digits is int and frac written together.
    let digits: String = format!("{int}{frac}").trim_start_matches('0').to_string();
    let shift = exponent - frac.len() as i64 + i64::from(scale);
    let digits = if shift >= 0 {
        if digits.is_empty() {
            digits
        } else {
            format!("{digits}{}", "0".repeat(shift as usize))
        }
    } else {
        let cut = (-shift) as usize;
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].bytes().any(|b| b != b'0') {
            return Err(DecimalError::TooManyFractionDigits);
        }
        digits[..keep].to_string()
    };
    if digits.len() > usize::from(precision.min(MAX_PRECISION)) {
        return Err(DecimalError::TooManyDigits);
    }
    let magnitude: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| DecimalError::TooManyDigits)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// The text of an unscaled value at `scale`: `1250` at scale 2 is `12.50`.
pub fn format(unscaled: i128, scale: u8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let scale = usize::from(scale);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// PostgreSQL's binary `numeric` of an unscaled value at `scale`: digit count, weight, sign,
/// display scale, then base-10000 digits, as `numeric_recv` reads them.
pub fn pg_numeric(unscaled: i128, scale: u8) -> Vec<u8> {
    let digits = unscaled.unsigned_abs().to_string();
    let s = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (int, frac) = padded.split_at(padded.len() - s);
    let int = format!("{int:0>width$}", width = int.len().div_ceil(4) * 4);
    let frac = format!("{frac:0<width$}", width = frac.len().div_ceil(4) * 4);
    let group = |chunk: &[u8]| -> i16 {
        chunk
            .iter()
            .fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0'))
    };
    let mut groups: Vec<i16> = int.as_bytes().chunks(4).map(group).collect();
    let mut weight = groups.len() as i16 - 1;
    groups.extend(frac.as_bytes().chunks(4).map(group));
    // Leading zero groups lower the weight; trailing zero groups are implied.
    let lead = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..lead);
    weight -= lead as i16;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if unscaled < 0 && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&i16::from(scale).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_or_refuses() {
        for (text, p, s, want) in [
            ("12.5", 10, 2, Ok(1250)),
            ("12.50", 10, 2, Ok(1250)),
            ("-0.01", 10, 2, Ok(-1)),
            ("+3", 5, 0, Ok(3)),
            ("1e3", 10, 2, Ok(100_000)),
            ("1.25E-1", 10, 3, Ok(125)),
            ("0.000", 3, 2, Ok(0)),
            ("00012.3400", 6, 2, Ok(1234)),
            (".5", 3, 1, Ok(5)),
            ("5.", 3, 1, Ok(50)),
            (
                "12345678901234567890123456789012345678",
                38,
                0,
                Ok(12345678901234567890123456789012345678),
            ),
            ("12.345", 10, 2, Err(DecimalError::TooManyFractionDigits)),
            ("1e-3", 10, 2, Err(DecimalError::TooManyFractionDigits)),
            ("123456789.01", 10, 2, Err(DecimalError::TooManyDigits)),
            (
                "123456789012345678901234567890123456789",
                38,
                0,
                Err(DecimalError::TooManyDigits),
            ),
            ("1e10000", 38, 0, Err(DecimalError::TooManyDigits)),
            ("1e100000", 38, 0, Err(DecimalError::NotANumber)),
            ("", 10, 2, Err(DecimalError::NotANumber)),
            (".", 10, 2, Err(DecimalError::NotANumber)),
            ("1.2.3", 10, 2, Err(DecimalError::NotANumber)),
            ("NaN", 10, 2, Err(DecimalError::NotANumber)),
            ("0x10", 10, 2, Err(DecimalError::NotANumber)),
            ("1,5", 10, 2, Err(DecimalError::NotANumber)),
            ("--1", 10, 2, Err(DecimalError::NotANumber)),
        ] {
            assert_eq!(parse(text, p, s), want, "{text} as decimal({p},{s})");
        }
    }

    #[test]
    fn formats_with_the_scale() {
        assert_eq!(format(1250, 2), "12.50");
        assert_eq!(format(-1, 2), "-0.01");
        assert_eq!(format(0, 3), "0.000");
        assert_eq!(format(42, 0), "42");
        assert_eq!(format(i128::MIN + 1, 0).len(), 40);
    }

    #[test]
    fn postgres_numeric_binary() {
        let words = |b: Vec<u8>| -> Vec<i16> {
            b.chunks(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect()
        };
        // 12.50: one integer group 12, one fraction group 5000; weight 0, dscale 2.
        assert_eq!(words(pg_numeric(1250, 2)), [2, 0, 0, 2, 12, 5000]);
        // -0.01: the leading zero group is dropped (weight -1), digit 100.
        assert_eq!(words(pg_numeric(-1, 2)), [1, -1, 0x4000, 2, 100]);
        // 123456789: groups 1 2345 6789, weight 2.
        assert_eq!(
            words(pg_numeric(123_456_789, 0)),
            [3, 2, 0, 0, 1, 2345, 6789]
        );
        // 10000: trailing zero groups implied.
        assert_eq!(words(pg_numeric(10_000, 0)), [1, 1, 0, 0, 1]);
        assert_eq!(words(pg_numeric(0, 2)), [0, 0, 0, 2]);
    }
}
