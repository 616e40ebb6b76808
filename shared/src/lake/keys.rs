//! The object-key layout of the lake: zones, Hive partitions, file names, and key decoding.
//!
//! ```text
//! <raw>/<dataset>/dt=YYYY-MM-DD/hr=HH/<shardId>-<firstSeq>-<lastSeq>.json.gz
//! <quarantine>/<dataset|_unrouted>/dt=YYYY-MM-DD/hr=HH/<shardId>-<firstSeq>-<lastSeq>.json.gz
//! <curated>/<dataset>/dt=YYYY-MM-DD/hr=HH/<stem>.parquet
//! ```
//! `<stem>` is [`output_stem`] of the raw object's whole key: the batch name for objects in
//! kinesis-ingest's layout, `src-<readable>-<hash>` for any other key (files dropped into
//! `raw/`), so no two sources ever share an output key.
//! Every component that reaches a key is either produced here from validated parts (dataset
//! names are `[a-z][a-z0-9_]*`, partitions are digits) or checked by [`is_safe_component`], so
//! no input can inject `/`, `..` or control characters into a key.

use chrono::{Datelike, Timelike};

use crate::error::{Error, Result};
use crate::schema::micros_to_datetime;

/// File extension of raw and quarantine objects (gzip NDJSON).
pub const RAW_EXTENSION: &str = ".json.gz";
/// File extension of curated objects.
pub const CURATED_EXTENSION: &str = ".parquet";

/// Dataset directory for records that match no dataset.
pub const UNROUTED: &str = "_unrouted";
/// Longest file-name component accepted in a key.
const MAX_COMPONENT: usize = 255;

/// A Hive partition `dt=YYYY-MM-DD/hr=HH`, from a UTC time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// `YYYY-MM-DD`.
    pub dt: String,
    /// `00`-`23`.
    pub hr: String,
}

impl Partition {
    /// The partition of a UTC instant in epoch microseconds (clamped to the epoch if invalid).
    pub fn of_micros(micros: i64) -> Partition {
        let t = micros_to_datetime(micros).unwrap_or_default();
        Partition {
            dt: format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
            hr: format!("{:02}", t.hour()),
        }
    }

    /// Hours since the epoch of the partition [`Partition::of_micros`] gives. Times chrono
    /// cannot represent count as hour 0, which `of_micros` also maps to `1970-01-01`/`00`, so
    /// hour numbers and partitions correspond one to one: a cheap grouping key.
    pub fn hour_of(micros: i64) -> i64 {
        if micros_to_datetime(micros).is_some() {
            micros.div_euclid(3_600_000_000)
        } else {
            0
        }
    }

    /// The partition of an hour number from [`Partition::hour_of`].
    pub fn of_hour(hour: i64) -> Partition {
        Partition::of_micros(hour.saturating_mul(3_600_000_000))
    }

    /// `dt=YYYY-MM-DD/hr=HH`.
    pub fn path(&self) -> String {
        format!("dt={}/hr={}", self.dt, self.hr)
    }

    /// Parses `dt` and `hr` values, accepting only the exact shapes this module writes.
    pub fn parse(dt: &str, hr: &str) -> Option<Partition> {
        let d = dt.as_bytes();
        let ok_dt = d.len() == 10
            && d[4] == b'-'
            && d[7] == b'-'
            && d.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
            && chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d").is_ok();
        let ok_hr = hr.len() == 2
            && hr.bytes().all(|c| c.is_ascii_digit())
            && hr.parse::<u8>().is_ok_and(|h| h < 24);
        (ok_dt && ok_hr).then(|| Partition {
            dt: dt.to_string(),
            hr: hr.to_string(),
        })
    }
}

/// The partition of the hour last asked for. Records of a batch or object mostly share a few
/// hours, so this saves formatting a partition per record.
#[derive(Debug, Default)]
pub struct HourCache(Option<(i64, Partition)>);

impl HourCache {
    /// Same as [`Partition::of_micros`].
    pub fn of_micros(&mut self, micros: i64) -> Partition {
        let hour = micros.div_euclid(3_600_000_000);
        match &self.0 {
            Some((h, p)) if *h == hour => p.clone(),
            _ => {
                let p = Partition::of_micros(micros);
                self.0 = Some((hour, p.clone()));
                p
            }
        }
    }
}

/// Whether `s` may be one path component of a key: `[A-Za-z0-9._=-]+`, not `.`/`..`.
pub fn is_safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_COMPONENT
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'='))
}

/// Validates a zone prefix such as `raw/`: safe components, each followed by `/`.
pub fn validate_prefix(name: &str, prefix: &str) -> Result<()> {
    let ok = prefix.ends_with('/') && prefix[..prefix.len() - 1].split('/').all(is_safe_component);
    if ok {
        Ok(())
    } else {
        Err(Error::env(
            name,
            format!("{prefix:?} must be path components of [A-Za-z0-9._=-] ending in '/'"),
        ))
    }
}

/// `<prefix><dataset>/`: every object of a dataset in a zone.
pub fn dataset_prefix(prefix: &str, dataset: &str) -> String {
    format!("{prefix}{dataset}/")
}

/// `<prefix><dataset>/dt=<dt>/`: one day of a dataset in a zone.
pub fn day_prefix(prefix: &str, dataset: &str, dt: &str) -> String {
    format!("{prefix}{dataset}/dt={dt}/")
}

/// Whether a folder of a listing is a `dt=` day of a dataset.
pub fn is_day_folder(folder: &str) -> bool {
    folder.contains("/dt=")
}

/// `<prefix><dataset>/dt=../hr=../<file>`; `file` must be a safe component.
pub fn object_key(prefix: &str, dataset: &str, partition: &Partition, file: &str) -> String {
    debug_assert!(is_safe_component(dataset) && is_safe_component(file));
    format!("{prefix}{dataset}/{}/{file}", partition.path())
}

/// A Kinesis shard id made safe for a key (AWS ids already are; anything else is replaced).
pub fn safe_shard_id(shard: &str) -> &str {
    if is_safe_component(shard) {
        shard
    } else {
        "unknown-shard"
    }
}

/// A raw object as s3-transform reads its key: `<raw><first>/[dt=../hr=../]...<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey<'a> {
    /// The first component below the zone prefix, when the key has one below it (a dataset
    /// name, if it is configured).
    pub first: Option<&'a str>,
    /// The key below the zone prefix.
    pub rel: &'a str,
    /// The Hive partition of the key's `dt=`/`hr=` folders, when valid.
    pub partition: Option<Partition>,
    /// The last component.
    pub file: &'a str,
}

impl<'a> SourceKey<'a> {
    /// Parses `key` below `prefix` (a key outside it is taken whole).
    pub fn parse(prefix: &str, key: &'a str) -> SourceKey<'a> {
        let rel = key.strip_prefix(prefix).unwrap_or(key);
        let parts: Vec<&str> = rel.split('/').collect();
        let file = parts.last().copied().unwrap_or("");
        let first = parts.first().copied().filter(|_| parts.len() >= 2);
        let mut partition = None;
        for p in parts.iter().skip(1).take(parts.len().saturating_sub(2)) {
            if let Some(dt) = p.strip_prefix("dt=") {
                let hr = parts
                    .iter()
                    .find_map(|q| q.strip_prefix("hr="))
                    .unwrap_or("");
                partition = Partition::parse(dt, hr);
            }
        }
        SourceKey {
            first,
            rel,
            partition,
            file,
        }
    }

    /// The key below the dataset directory when `first` is a configured dataset, else the
    /// whole key below the zone: what [`output_stem`] names outputs after.
    pub fn rel_for(&self, dataset_known: bool) -> &'a str {
        if dataset_known {
            self.rel.split_once('/').map_or(self.rel, |(_, r)| r)
        } else {
            self.rel
        }
    }

    /// Where s3-transform quarantines this object's records or the object itself:
    /// `<quarantine><dataset>/[dt=../hr=../]`, or `<quarantine>_unrouted/` with no dataset.
    pub fn quarantine_dir(&self, quarantine_prefix: &str, dataset: Option<&str>) -> String {
        match (dataset, &self.partition) {
            (Some(ds), Some(p)) => format!("{quarantine_prefix}{ds}/{}/", p.path()),
            (Some(ds), None) => format!("{quarantine_prefix}{ds}/"),
            (None, _) => format!("{quarantine_prefix}{UNROUTED}/"),
        }
    }
}

/// `<curated><dataset>/dt=../hr=../<stem>.parquet`.
pub fn curated_key(
    curated_prefix: &str,
    dataset: &str,
    partition: &Partition,
    stem: &str,
) -> String {
    object_key(
        curated_prefix,
        dataset,
        partition,
        &format!("{stem}{CURATED_EXTENSION}"),
    )
}

/// The Hive partition folders as an Athena partition-projection location template below
/// `base`: `<base>/dt=${dt}/hr=${hr}/`.
pub fn projection_template(base: &str) -> String {
    format!("{base}/dt=${{dt}}/hr=${{hr}}/")
}

/// The transform quarantine object of a source: `<dir><stem>.transform.json.gz`.
pub fn transform_quarantine_key(dir: &str, stem: &str) -> String {
    format!("{dir}{stem}.transform.json.gz")
}

/// Whether a quarantine key is s3-transform's (a record file or an object copy) rather than
/// kinesis-ingest's.
pub fn is_transform_quarantine(key: &str) -> bool {
    key.ends_with(".transform.json.gz") || key.contains("/objects/")
}

/// The copy of an unreadable object: `<dir>objects/<name>`, `<name>` the batch file name for
/// kinesis-ingest's objects, else the stem (which already carries the extension).
pub fn object_copy_key(dir: &str, file: &str, stem: &str) -> String {
    let name = match file.strip_prefix(stem) {
        Some(ext) if ext.starts_with('.') && is_safe_component(file) => file,
        _ => stem,
    };
    format!("{dir}objects/{name}")
}

/// The reason note beside an object copy.
pub fn reason_key(copy_key: &str) -> String {
    format!("{copy_key}.reason.json")
}

/// First part of every [`output_stem`] that is derived from a key outside kinesis-ingest's
/// layout; a batch name with this prefix is treated as such a key, so the two forms never meet.
pub const SOURCE_STEM_PREFIX: &str = "src-";
/// Longest readable part of a hashed [`output_stem`].
const MAX_READABLE: usize = 80;

/// The name, without extension, of the outputs derived from one raw object (curated Parquet,
/// transform quarantine), for its rows of `partition` (`None`: the object as a whole).
///
/// `rel` is the object's key below its dataset directory (`dt=../hr=../<file>` for
/// kinesis-ingest's objects). An object in that layout, named `<name>.json.gz` with `<name>`
/// one safe component without dots, keeps `<name>` for the rows of its own partition. Every
/// other case, any depth and any extension, is `src-<readable>-<h>`: `<readable>` the key made
/// safe and short, `<h>` 128 bits of SHA-256 of the whole of `rel`. So the stem is a function of
/// the whole key, and two sources never map to one output key.
pub fn output_stem(rel: &str, partition: Option<&Partition>) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    if let [dt, hr, file] = parts[..] {
        let own = dt
            .strip_prefix("dt=")
            .zip(hr.strip_prefix("hr="))
            .and_then(|(d, h)| Partition::parse(d, h));
        let name = file.strip_suffix(RAW_EXTENSION).unwrap_or("");
        let canonical = own.is_some()
            && partition.is_none_or(|p| own.as_ref() == Some(p))
            && is_safe_component(name)
            && !name.contains('.')
            && !name.starts_with(SOURCE_STEM_PREFIX);
        if canonical {
            return name.to_string();
        }
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(rel.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let readable: String = rel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_READABLE)
        .collect();
    format!("{SOURCE_STEM_PREFIX}{readable}-{hex}")
}

/// FNV-1a of `s`: stable across builds and platforms, used to keep distinct unsafe names
/// distinct after they are made safe for a key.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Longest sequence number kept verbatim in a file name (Kinesis' are at most 128 digits).
const MAX_SEQ_DIGITS: usize = 128;

/// A sequence number made safe for a key: Kinesis' (decimal digits) unchanged, anything else
/// (a malformed event could carry `/`, `..` or control characters) replaced by `x` and a
/// stable hash of it, so distinct values stay distinct and nothing reaches the key unchecked.
pub fn safe_seq(seq: &str) -> String {
    if !seq.is_empty() && seq.len() <= MAX_SEQ_DIGITS && seq.bytes().all(|c| c.is_ascii_digit()) {
        return seq.to_string();
    }
    format!("x{:016x}", stable_hash(seq))
}

/// `<shard>-<firstSeq>-<lastSeq>.json.gz`, every part checked ([`safe_shard_id`], [`safe_seq`]).
pub fn batch_file_name(shard: &str, first_seq: &str, last_seq: &str) -> String {
    format!(
        "{}-{}-{}{RAW_EXTENSION}",
        safe_shard_id(shard),
        safe_seq(first_seq),
        safe_seq(last_seq)
    )
}

/// Encodes a key the way S3 event notifications do: form-style (`+` for space), with every
/// byte outside `[A-Za-z0-9-_.*/]` percent-encoded ([`decode_s3_event_key`] reverses it).
pub fn encode_s3_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes an S3 event notification key: `+` is a space, `%XX` are UTF-8 bytes.
pub fn decode_s3_event_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "key is not valid UTF-8 after percent-decoding".to_string())
}

/// The parts of a key written in the zone layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneKey {
    /// The first component below the prefix: the dataset's name (not checked against the
    /// config).
    pub dataset: String,
    /// The partition, when the key has a valid `dt=/hr=` pair.
    pub partition: Option<Partition>,
    /// The last component (file name).
    pub file: String,
}

impl ZoneKey {
    /// The file name without its extensions (`a.json.gz` → `a`).
    pub fn stem(&self) -> &str {
        self.file.split('.').next().unwrap_or(&self.file)
    }
}

/// Parses `<prefix><dataset>/[dt=../hr=../]...<file>`; `None` if the key is outside `prefix`,
/// has an unsafe component, or names no dataset.
pub fn parse_zone_key(prefix: &str, key: &str) -> Option<ZoneKey> {
    let rest = key.strip_prefix(prefix)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2 || !parts.iter().all(|p| is_safe_component(p)) {
        return None;
    }
    let dataset = parts[0].to_string();
    let file = parts[parts.len() - 1].to_string();
    let mut dt = None;
    let mut hr = None;
    for p in &parts[1..parts.len() - 1] {
        if let Some(v) = p.strip_prefix("dt=") {
            dt = Some(v);
        } else if let Some(v) = p.strip_prefix("hr=") {
            hr = Some(v);
        }
    }
    let partition = match (dt, hr) {
        (Some(d), Some(h)) => Partition::parse(d, h),
        _ => None,
    };
    Some(ZoneKey {
        dataset,
        partition,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_cache_agrees_with_of_micros() {
        let mut c = HourCache::default();
        for m in [
            1_763_855_999_999_000,
            1_763_855_999_999_999,
            1_763_856_000_000_000,
            1_763_856_000_000_000,
            0,
            -1,
            -3_600_000_000,
            -3_600_000_001,
            i64::MAX,
            i64::MIN,
            1_763_855_999_999_000,
        ] {
            assert_eq!(c.of_micros(m), Partition::of_micros(m), "{m}");
            let hour = Partition::hour_of(m);
            assert_eq!(Partition::of_hour(hour), Partition::of_micros(m), "{m}");
        }
        assert_eq!(
            Partition::hour_of(i64::MAX),
            0,
            "unrepresentable → the epoch's hour"
        );
        assert_eq!(Partition::hour_of(-1), -1);
        assert_ne!(
            Partition::of_hour(Partition::hour_of(-1)),
            Partition::of_hour(Partition::hour_of(0))
        );
    }

    #[test]
    fn partitions_from_event_time() {
        // 2025-11-22T23:59:59.999Z
        let p = Partition::of_micros(1_763_855_999_999_000);
        assert_eq!(p.path(), "dt=2025-11-22/hr=23");
        assert_eq!(Partition::of_micros(0).path(), "dt=1970-01-01/hr=00");
        assert_eq!(Partition::parse("2025-11-22", "23"), Some(p));
        assert_eq!(Partition::parse("2025-11-22", "24"), None);
        assert_eq!(Partition::parse("2025/11/22", "01"), None);
        assert_eq!(Partition::parse("2025-13-22", "01"), None);
        // Regression (found by `cargo fuzz run keys`): `u8::from_str` accepts a leading `+`,
        // so `hr=+1` in a dropped file's key became a partition and reached quarantine keys.
        assert_eq!(Partition::parse("2025-11-22", "+0"), None);
        assert_eq!(Partition::parse("2025-11-22", "+9"), None);
        assert_eq!(Partition::parse("2025-11-22", " 9"), None);
    }

    #[test]
    fn keys() {
        let p = Partition::parse("2025-11-22", "07").expect("partition");
        let f = batch_file_name("shardId-000000000001", "495", "497");
        assert_eq!(
            object_key("raw/", "page_views", &p, &f),
            "raw/page_views/dt=2025-11-22/hr=07/shardId-000000000001-495-497.json.gz"
        );
        assert_eq!(
            batch_file_name("../etc", "1", "2"),
            "unknown-shard-1-2.json.gz"
        );
        assert_eq!(
            batch_file_name("a/b", "1", "2"),
            "unknown-shard-1-2.json.gz"
        );
    }

    #[test]
    fn hostile_sequence_numbers_never_reach_a_key() {
        // Regression: sequence numbers went into file names unchecked, so a malformed event
        // with sequenceNumber "../../x" or "1/2" injected `/` and `..` into raw/quarantine keys.
        for bad in [
            "../../etc/passwd",
            "1/2",
            "1\n2",
            "",
            "..",
            "12a",
            "9".repeat(129).as_str(),
        ] {
            let f = batch_file_name("shardId-000000000000", bad, "7");
            assert!(is_safe_component(&f), "{bad:?} -> {f:?}");
            assert!(!f.contains(".."), "{bad:?} -> {f:?}");
        }
        let real = "49590000000000000000000000000000000000000000000000000001";
        assert_eq!(safe_seq(real), real);
        assert_ne!(safe_seq("a/b"), safe_seq("a/c"));
    }

    #[test]
    fn components_and_prefixes() {
        for bad in ["", ".", "..", "a/b", "a\nb", "a b", "é", "a\0"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component("shardId-0001"));
        assert!(validate_prefix("P", "raw/").is_ok());
        assert!(validate_prefix("P", "lake/raw/").is_ok());
        assert!(validate_prefix("P", "raw").is_err());
        assert!(validate_prefix("P", "../raw/").is_err());
        assert!(validate_prefix("P", "/raw/").is_err());
    }

    #[test]
    fn s3_event_keys_decode() {
        assert_eq!(
            decode_s3_event_key("raw/a+b/c%20d.json").as_deref(),
            Ok("raw/a b/c d.json")
        );
        assert_eq!(
            decode_s3_event_key("raw/caf%C3%A9.csv").as_deref(),
            Ok("raw/café.csv")
        );
        assert_eq!(
            decode_s3_event_key("raw/%2B.csv").as_deref(),
            Ok("raw/+.csv")
        );
        assert!(decode_s3_event_key("raw/%FF.csv").is_err());
    }

    #[test]
    fn source_keys_and_their_outputs() {
        let k = SourceKey::parse("raw/", "raw/page_views/dt=2025-11-22/hr=07/s-1-2.json.gz");
        let p = Partition::parse("2025-11-22", "07");
        assert_eq!(k.first, Some("page_views"));
        assert_eq!(k.partition, p);
        assert_eq!(k.rel_for(true), "dt=2025-11-22/hr=07/s-1-2.json.gz");
        assert_eq!(
            k.quarantine_dir("quarantine/", Some("page_views")),
            "quarantine/page_views/dt=2025-11-22/hr=07/"
        );
        assert_eq!(
            k.quarantine_dir("quarantine/", None),
            "quarantine/_unrouted/"
        );
        let stem = output_stem(k.rel_for(true), k.partition.as_ref());
        assert_eq!(
            curated_key("curated/", "page_views", p.as_ref().expect("p"), &stem),
            "curated/page_views/dt=2025-11-22/hr=07/s-1-2.parquet"
        );
        assert_eq!(
            object_copy_key("q/", k.file, &stem),
            "q/objects/s-1-2.json.gz"
        );
        let dropped = SourceKey::parse("raw/", "raw/page_views/team/x.csv");
        assert_eq!(dropped.partition, None);
        let stem = output_stem(dropped.rel_for(true), None);
        assert_eq!(
            object_copy_key("q/", dropped.file, &stem),
            format!("q/objects/{stem}")
        );
        assert!(is_transform_quarantine(&transform_quarantine_key(
            "q/d/", &stem
        )));
        assert_eq!(SourceKey::parse("raw/", "raw/x.json").first, None);
    }

    #[test]
    fn output_stems_are_a_function_of_the_whole_key() {
        let p = Partition::parse("2025-11-22", "07").expect("partition");
        let other = Partition::parse("2025-11-22", "08").expect("partition");
        let batch = "dt=2025-11-22/hr=07/shardId-000000000001-495-497.json.gz";
        assert_eq!(output_stem(batch, Some(&p)), "shardId-000000000001-495-497");
        assert_eq!(output_stem(batch, None), "shardId-000000000001-495-497");
        // Rows of another hour than the object's own folder: the hashed form.
        assert!(output_stem(batch, Some(&other)).starts_with(SOURCE_STEM_PREFIX));
        let keys = [
            "team-a/import.csv",
            "team-b/import.csv",
            "team-b/import.json",
            "import.csv",
            "import.json",
            "a/b/c/d/import.csv",
            "dt=2025-11-22/hr=07/export.v2.csv",
            "dt=2025-11-22/hr=07/export.v2.json.gz",
            "dt=2025-11-22/hr=07/export.json",
            "dt=2025-11-22/hr=07/x/export.json.gz",
            "dt=2025-11-22/hr=07/src-x.json.gz",
            "dt=2025-11-22/hr=07/my file é.json.gz",
            "dt=2025-11-22/hr=07/export.json.gz",
            "dt=2025-11-22/hr=08/export.json.gz",
        ];
        let stems: Vec<String> = keys.iter().map(|k| output_stem(k, Some(&p))).collect();
        let distinct: std::collections::HashSet<&String> = stems.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{stems:?}");
        for s in &stems {
            assert!(is_safe_component(&format!("{s}.transform.json.gz")), "{s}");
        }
        assert!(
            stems[0].starts_with("src-team-a_import.csv-"),
            "{}",
            stems[0]
        );
        assert_eq!(stems[12], "export");
        let long = format!("{}/x.csv", "y".repeat(5000));
        assert!(is_safe_component(&output_stem(&long, None)));
    }

    #[test]
    fn zone_keys_parse() {
        let k = parse_zone_key(
            "raw/",
            "raw/page_views/dt=2025-11-22/hr=07/shardId-1-2-3.json.gz",
        )
        .expect("parsed");
        assert_eq!(k.dataset, "page_views");
        assert_eq!(k.partition, Partition::parse("2025-11-22", "07"));
        assert_eq!(k.stem(), "shardId-1-2-3");
        assert!(parse_zone_key("raw/", "curated/x/y.parquet").is_none());
        assert!(parse_zone_key("raw/", "raw/../x/y.json").is_none());
        assert!(parse_zone_key("raw/", "raw/x.json").is_none());
        let drop = parse_zone_key("raw/", "raw/signups/import.csv").expect("parsed");
        assert_eq!(drop.partition, None);
    }
}
