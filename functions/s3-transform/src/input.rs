//! Reading raw objects: format detection, gzip with a cap on decompressed bytes (gzip bombs),
//! a cap on line length, NDJSON / JSON array / CSV-with-header parsing.
//!
//! An object-level problem (corrupt or truncated gzip, over the cap, unsupported format) is an
//! [`ObjectError`]: the whole object is quarantined. A record-level problem (one bad line) is an
//! [`Item`] with its error: only that record is quarantined.

use std::io::{BufRead, BufReader, Read};

use sluice_core::lake::quarantine::RejectKind;

/// Input formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`, `.ndjson`, `.jsonl` (optionally `.gz`): one object per line, or a JSON array.
    Json,
    /// `.csv` (optionally `.gz`) with a header row.
    Csv,
}

/// The format and compression of a key, or `None` if unsupported.
pub fn format_of(key: &str) -> Option<(Format, bool)> {
    let lower = key.to_ascii_lowercase();
    let (base, gz) = match lower.strip_suffix(".gz") {
        Some(b) => (b.to_string(), true),
        None => (lower, false),
    };
    if base.ends_with(".json") || base.ends_with(".ndjson") || base.ends_with(".jsonl") {
        Some((Format::Json, gz))
    } else if base.ends_with(".csv") {
        Some((Format::Csv, gz))
    } else {
        None
    }
}

/// Caps applied while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most decompressed bytes read from one object.
    pub max_decompressed: u64,
    /// Longest line (or CSV record) accepted, in bytes.
    pub max_line: usize,
}

/// Default cap on decompressed bytes per object (256 MiB).
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;
/// Default cap on one line: a 1 MiB record plus sluice's metadata.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024 + 4096;

impl Default for Limits {
    /// [`DEFAULT_MAX_DECOMPRESSED`] and [`DEFAULT_MAX_LINE`].
    fn default() -> Self {
        Limits {
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// Why a whole object cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("unsupported file type (expected .json, .ndjson, .jsonl, .csv, optionally .gz)")]
    Unsupported,
    #[error("corrupt or truncated gzip: {0}")]
    Corrupt(String),
    #[error("decompresses to more than {0} bytes")]
    TooLarge(u64),
    #[error("CSV header is unreadable: {0}")]
    BadHeader(String),
}

/// One input record's fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// The payload is one JSON document; the transform parses it (borrowed, once) and rejects
    /// it there if it is not a valid JSON object.
    Json,
    Csv(Vec<(String, String)>),
}

/// One record read from an object: its 1-based line (or array element / CSV record) number,
/// its source bytes, and its fields or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub line: usize,
    pub payload: Vec<u8>,
    pub fields: Result<Fields, (RejectKind, String)>,
}

struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // Probe one byte: if there is more, the cap is exceeded.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded = true;
                    Err(std::io::Error::other("decompressed size cap exceeded"))
                }
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

fn io_error(c: &Capped<Box<dyn Read + '_>>, e: std::io::Error) -> ObjectError {
    if c.exceeded {
        ObjectError::TooLarge(c.cap)
    } else {
        ObjectError::Corrupt(e.to_string())
    }
}

/// Reads every record of an object, calling `sink` for each.
pub fn read_object(
    body: &[u8],
    format: Format,
    gz: bool,
    limits: Limits,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ObjectError> {
    let inner: Box<dyn Read + '_> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut capped = Capped {
        inner,
        left: limits.max_decompressed,
        cap: limits.max_decompressed,
        exceeded: false,
    };
    match format {
        Format::Json => read_json(&mut capped, limits, sink),
        Format::Csv => read_csv(&mut capped, limits, sink),
    }
}

fn json_document(line: usize, bytes: &[u8]) -> Item {
    Item {
        line,
        payload: bytes.to_vec(),
        fields: Ok(Fields::Json),
    }
}

fn read_json(
    capped: &mut Capped<Box<dyn Read + '_>>,
    limits: Limits,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ObjectError> {
    let mut reader = BufReader::with_capacity(64 * 1024, capped);
    // A JSON array document is read whole (still under the decompressed cap).
    let first = loop {
        let (found, n) = match reader.fill_buf() {
            Ok(buf) => (
                buf.iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|i| buf[i]),
                buf.len(),
            ),
            Err(e) => return Err(io_error(reader.get_ref(), e)),
        };
        match found {
            Some(b) => break Some(b),
            None if n == 0 => break None,
            None => reader.consume(n),
        }
    };
    if first == Some(b'[') {
        let mut all = Vec::new();
        reader
            .read_to_end(&mut all)
            .map_err(|e| io_error(reader.get_ref(), e))?;
        let elems: Vec<&serde_json::value::RawValue> = match serde_json::from_slice(&all) {
            Ok(v) => v,
            Err(e) => {
                sink(Item {
                    line: 1,
                    payload: all.clone(),
                    fields: Err((
                        RejectKind::InvalidJson,
                        format!("invalid JSON array at line {}", e.line()),
                    )),
                });
                return Ok(());
            }
        };
        for (i, raw) in elems.iter().enumerate() {
            let bytes = raw.get().as_bytes();
            if bytes.len() > limits.max_line {
                sink(too_long(i + 1, bytes, limits.max_line));
            } else {
                sink(json_document(i + 1, bytes));
            }
        }
        return Ok(());
    }
    let mut line_no = 0usize;
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(limits.max_line as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(reader.get_ref(), e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') && buf.len() > limits.max_line {
            // Over-long line: keep its head as the payload, skip the rest of it.
            sink(too_long(line_no, &buf, limits.max_line));
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| io_error(reader.get_ref(), e))?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            continue;
        }
        let trimmed = trim_ascii(&buf);
        if trimmed.is_empty() {
            continue;
        }
        sink(json_document(line_no, trimmed));
    }
}

fn too_long(line: usize, head: &[u8], max: usize) -> Item {
    Item {
        line,
        payload: head[..head.len().min(max)].to_vec(),
        fields: Err((
            RejectKind::LineTooLong,
            format!("longer than {max} bytes (payload truncated to the first {max})"),
        )),
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn read_csv(
    capped: &mut Capped<Box<dyn Read + '_>>,
    limits: Limits,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ObjectError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(&mut *capped);
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect(),
        Err(e) => {
            let (exceeded, cap) = (rdr.get_ref().exceeded, rdr.get_ref().cap);
            return Err(csv_object_error(e, exceeded, cap));
        }
    };
    let mut record = csv::ByteRecord::new();
    let mut n = 0usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                n += 1;
                let payload = record.as_slice().to_vec();
                if payload.len() > limits.max_line {
                    sink(too_long(n, &payload, limits.max_line));
                    continue;
                }
                let mut fields = Vec::with_capacity(headers.len());
                let mut bad = None;
                for (h, v) in headers.iter().zip(record.iter()) {
                    match std::str::from_utf8(v) {
                        Ok(s) => fields.push((h.clone(), s.to_string())),
                        Err(_) => {
                            bad = Some((
                                RejectKind::InvalidUtf8,
                                format!("column {h:?} is not UTF-8"),
                            ));
                            break;
                        }
                    }
                }
                sink(Item {
                    line: n,
                    payload,
                    fields: match bad {
                        Some(b) => Err(b),
                        None => Ok(Fields::Csv(fields)),
                    },
                });
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => {
                    let (exceeded, cap) = (rdr.get_ref().exceeded, rdr.get_ref().cap);
                    return Err(csv_object_error(e, exceeded, cap));
                }
                _ => {
                    n += 1;
                    sink(Item {
                        line: n,
                        payload: record.as_slice().to_vec(),
                        fields: Err((RejectKind::InvalidCsv, csv_reason(&e))),
                    });
                }
            },
        }
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("record has {len} fields, the header has {expected_len}")
        }
        _ => "unreadable CSV record".to_string(),
    }
}

fn csv_object_error(e: csv::Error, exceeded: bool, cap: u64) -> ObjectError {
    if exceeded {
        return ObjectError::TooLarge(cap);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ObjectError::Corrupt(io.to_string()),
        other => ObjectError::BadHeader(format!("{other:?}").chars().take(120).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMITS: Limits = Limits {
        max_decompressed: 1 << 20,
        max_line: 64,
    };

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read(
        body: &[u8],
        f: Format,
        gzipped: bool,
        limits: Limits,
    ) -> Result<Vec<Item>, ObjectError> {
        let mut items = Vec::new();
        read_object(body, f, gzipped, limits, &mut |i| items.push(i))?;
        Ok(items)
    }

    #[test]
    fn formats() {
        assert_eq!(format_of("raw/a/x.json.gz"), Some((Format::Json, true)));
        assert_eq!(format_of("raw/a/x.NDJSON"), Some((Format::Json, false)));
        assert_eq!(format_of("raw/a/x.csv.gz"), Some((Format::Csv, true)));
        assert_eq!(format_of("raw/a/x.parquet"), None);
        assert_eq!(format_of("raw/a/x.gz"), None);
    }

    #[test]
    fn ndjson_lines_and_bad_lines() {
        let items = read(
            b"{\"a\":1}\n\n[2]\n{oops\n{\"a\":3}",
            Format::Json,
            false,
            LIMITS,
        )
        .unwrap();
        // One item per non-blank line; the transform parses (and rejects) them.
        let got: Vec<(usize, &[u8])> = items.iter().map(|i| (i.line, &i.payload[..])).collect();
        assert_eq!(
            got,
            [
                (1, &b"{\"a\":1}"[..]),
                (3, b"[2]"),
                (4, b"{oops"),
                (5, b"{\"a\":3}")
            ]
        );
        assert!(items.iter().all(|i| i.fields == Ok(Fields::Json)));
    }

    #[test]
    fn json_array_documents() {
        let items = read(b"  [{\"a\":1}, {\"a\":2}, 3]", Format::Json, false, LIMITS).unwrap();
        let got: Vec<&[u8]> = items.iter().map(|i| &i.payload[..]).collect();
        assert_eq!(got, [&b"{\"a\":1}"[..], b"{\"a\":2}", b"3"]);
        assert_eq!(items[2].line, 3);
        let bad = read(b"[{\"a\":1}, oops]", Format::Json, false, LIMITS).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(
            bad[0].fields.as_ref().unwrap_err().0,
            RejectKind::InvalidJson
        );
    }

    #[test]
    fn long_lines_are_items_not_failures() {
        let mut body = format!("{{\"a\":\"{}\"}}\n", "x".repeat(200)).into_bytes();
        body.extend_from_slice(b"{\"a\":2}\n");
        let items = read(&gz(&body), Format::Json, true, LIMITS).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].fields.as_ref().unwrap_err().0,
            RejectKind::LineTooLong
        );
        assert_eq!(items[0].payload.len(), 64);
        assert_eq!(items[1].line, 2);
        assert!(items[1].fields.is_ok());
    }

    #[test]
    fn gzip_bomb_and_truncation_are_object_errors() {
        let bomb = gz(&vec![b'\n'; 4 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            read(&bomb, Format::Json, true, LIMITS).unwrap_err(),
            ObjectError::TooLarge(1 << 20)
        );
        let good = gz(b"{\"a\":1}\n{\"a\":2}\n");
        let cut = &good[..good.len() - 6];
        assert!(matches!(
            read(cut, Format::Json, true, LIMITS),
            Err(ObjectError::Corrupt(_))
        ));
        assert!(matches!(
            read(b"not gzip at all", Format::Json, true, LIMITS),
            Err(ObjectError::Corrupt(_))
        ));
    }

    #[test]
    fn csv_with_header() {
        let body = b"\xef\xbb\xbfid,amount\n1,2.5\n2\n3,\"4\"\n";
        let items = read(&gz(body), Format::Csv, true, LIMITS).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].fields,
            Ok(Fields::Csv(vec![
                ("id".into(), "1".into()),
                ("amount".into(), "2.5".into())
            ]))
        );
        assert_eq!(
            items[1].fields.as_ref().unwrap_err().0,
            RejectKind::InvalidCsv
        );
        assert!(items[2].fields.is_ok());
    }
}
