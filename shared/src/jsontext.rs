//! JSON text that serde_json accepts but a reader or sink does not: nesting depth, unpaired
//! surrogate escapes, `\u0000` and numbers beyond a 64-bit float, found by one pass over the text; and the same pass copying a
//! value's text without insignificant whitespace ([`compact`]), so `json` values keep the
//! producer's numbers, escapes and key order exactly.

use std::fmt;

/// The reason given for text containing U+0000.
pub const NUL_REASON: &str = "contains U+0000 (NUL), which PostgreSQL cannot store";

/// The deepest nesting of arrays and objects a record may have, the record itself counting as
/// one level. DuckDB's JSON reader stops at 128 and serde_json at 128; a record deeper than
/// this would make a whole raw object unreadable to them, so it is quarantined instead.
pub const MAX_NESTING: usize = 100;

/// Why JSON text that serde_json accepted is still refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// A `\uD800`-`\uDFFF` escape that is not half of a surrogate pair (no reader can
    /// decode it; serde_json accepts it only where it skips values).
    LoneSurrogate,
    /// A `\u0000` escape (only where NUL is refused: declared text and JSON values).
    Nul,
    /// A number whose magnitude is beyond a 64-bit float (e.g. `1e400`): pyarrow refuses the
    /// whole file ("Number too big to be stored in double"), DuckDB reads it as infinity.
    /// serde_json accepts it only where it skips values.
    NumberOutOfRange,
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextProblem::TooDeep => write!(f, "nested deeper than {MAX_NESTING} levels"),
            TextProblem::LoneSurrogate => {
                f.write_str("contains an unpaired UTF-16 surrogate escape")
            }
            TextProblem::Nul => f.write_str(NUL_REASON),
            TextProblem::NumberOutOfRange => {
                f.write_str("contains a number beyond the range of a 64-bit float")
            }
        }
    }
}

/// Scans JSON text serde_json has already validated: nesting depth, surrogate escapes, numbers
/// out of `f64` range and, with `refuse_nul`, `\u0000` escapes. With `out`, also appends the text without
/// insignificant whitespace (every other byte, escapes included, is copied as is).
fn scan(text: &str, refuse_nul: bool, mut out: Option<&mut Vec<u8>>) -> Result<(), TextProblem> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0usize;
    fn copy(out: &mut Option<&mut Vec<u8>>, bytes: &[u8]) {
        if let Some(o) = out.as_deref_mut() {
            o.extend_from_slice(bytes);
        }
    }
    while i < b.len() {
        let c = b[i];
        if in_string {
            // Plain characters run up to the next quote or escape: copy them at once.
            let run = memchr::memchr2(b'"', b'\\', &b[i..]).unwrap_or(b.len() - i);
            if run > 0 {
                copy(&mut out, &b[i..i + run]);
                i += run;
                continue;
            }
            match c {
                b'\\' if b.get(i + 1) == Some(&b'u') => {
                    let unit = hex4(b, i + 2).ok_or(TextProblem::LoneSurrogate)?;
                    let len = match unit {
                        0 if refuse_nul => return Err(TextProblem::Nul),
                        0xD800..=0xDBFF => {
                            let low = (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                                .then(|| hex4(b, i + 8))
                                .flatten();
                            match low {
                                Some(0xDC00..=0xDFFF) => 12,
                                _ => return Err(TextProblem::LoneSurrogate),
                            }
                        }
                        0xDC00..=0xDFFF => return Err(TextProblem::LoneSurrogate),
                        _ => 6,
                    };
                    copy(&mut out, &b[i..i + len]);
                    i += len;
                    continue;
                }
                b'\\' => {
                    let end = (i + 2).min(b.len());
                    copy(&mut out, &b[i..end]);
                    i = end;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
            copy(&mut out, &b[i..i + 1]);
        } else {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    i += 1;
                    continue;
                }
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(TextProblem::TooDeep);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'-' | b'0'..=b'9' => {
                    let len = b[i..]
                        .iter()
                        .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                        .unwrap_or(b.len() - i);
                    let number = &text[i..i + len];
                    // Only an exponent or more than 300 digits can leave f64's range.
                    if (len > 300 || number.bytes().any(|c| c == b'e' || c == b'E'))
                        && !number.parse::<f64>().is_ok_and(f64::is_finite)
                    {
                        return Err(TextProblem::NumberOutOfRange);
                    }
                    copy(&mut out, number.as_bytes());
                    i += len;
                    continue;
                }
                _ => {}
            }
            copy(&mut out, &b[i..i + 1]);
        }
        i += 1;
    }
    Ok(())
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

/// Checks a whole record's JSON text (already parsed by serde_json) against what every
/// reader of the raw zone can read: see [`TextProblem`]. NUL escapes are allowed here (only
/// declared values are refused them, by [`crate::object::coerce_raw`]).
pub fn check_document(text: &str) -> Result<(), TextProblem> {
    scan(text, false, None)
}

/// `text` (valid JSON) without insignificant whitespace; NUL escapes, lone surrogates and
/// nesting beyond [`MAX_NESTING`] are refused.
pub fn compact(text: &str) -> Result<String, TextProblem> {
    let mut out = Vec::with_capacity(text.len());
    scan(text, true, Some(&mut out))?;
    // Only whole UTF-8 sequences of valid text were copied.
    String::from_utf8(out).map_err(|_| TextProblem::LoneSurrogate)
}
