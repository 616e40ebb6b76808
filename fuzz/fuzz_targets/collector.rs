//! http-collector's body parsers (`functions/http-collector/src/{body,firehose}.rs`, compiled
//! here as modules so the fuzz build needs no AWS SDK): `Content-Type` and `Content-Encoding`
//! handling, gzip decoding under caps, JSON / array / NDJSON splitting, and the Firehose
//! delivery envelope, under small limits chosen by the first byte.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, clippy::all)]
#[path = "../../functions/http-collector/src/body.rs"]
mod body;
#[allow(dead_code, clippy::all)]
#[path = "../../functions/http-collector/src/firehose.rs"]
mod firehose;

use body::{decode, framing, split, BodyError, Framing, Limits};

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json; charset=utf-8"),
    Some("application/x-ndjson"),
    Some("text/html"),
];

fuzz_target!(|data: &[u8]| {
    let [mode, caps, rest @ ..] = data else {
        return;
    };
    let (mode, caps) = (*mode, *caps);
    let limits = Limits {
        max_body: 64 + usize::from(caps >> 6) * 4096,
        max_decoded: 32 + usize::from((caps >> 4) & 3) * 8192,
        max_record: 4 + usize::from((caps >> 1) & 7) * 24,
        max_records: 1 + usize::from(mode & 3) * 5,
    };
    // Bit 2: send the bytes as they are, or as valid gzip of the bytes.
    let (body, encoding) = if mode & 4 == 0 {
        (rest.to_vec(), None)
    } else {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(rest).expect("gzip to memory");
        (e.finish().expect("gzip to memory"), Some("gzip"))
    };
    let sent = body.len();
    match decode(body, encoding, &limits) {
        Ok(decoded) => {
            assert!(sent <= limits.max_body, "a body over the cap was accepted");
            assert!(decoded.len() <= limits.max_decoded.max(sent));
            assert_eq!(decoded, rest, "decoding gives back what was sent");
            // Bit 0 of the caps byte: look up a partition-key field while checking.
            let key_field = (caps & 1 == 1).then_some("a");
            let content_type = CONTENT_TYPES[usize::from(mode >> 3) & 3];
            check_split(&decoded, &limits, content_type, key_field);
        }
        Err(e) => {
            assert!((400..=415).contains(&e.status()));
            if let BodyError::TooLarge { limit, .. } = e {
                assert!(limit == limits.max_body || limit == limits.max_decoded);
            }
        }
    }
    // Raw fuzz bytes as a gzip body: refused or decoded within the cap, never a panic.
    if let Ok(out) = decode(rest.to_vec(), Some("gzip"), &limits) {
        assert!(out.len() <= limits.max_decoded);
    }
    // The same bytes as a Firehose delivery.
    if let Ok((_, records)) = firehose::parse(rest) {
        for item in firehose::items(&records, &limits, Some("a.b")) {
            check_item(&item, &limits);
        }
    }
});

fn check_split(
    decoded: &[u8],
    limits: &Limits,
    content_type: Option<&str>,
    key_field: Option<&str>,
) {
    let Ok(framing) = framing(content_type) else {
        return;
    };
    match split(decoded, framing, limits, key_field) {
        Ok(items) => {
            assert!(!items.is_empty());
            assert!(items.len() <= limits.max_records);
            for item in &items {
                check_item(item, limits);
                if framing == Framing::Lines {
                    assert!(!item.bytes.contains(&b'\n'), "an NDJSON record spans lines");
                }
            }
        }
        Err(e) => assert!((400..=415).contains(&e.status())),
    }
}

fn check_item(item: &body::Item<'_>, limits: &Limits) {
    match &item.problem {
        None => {
            assert!(item.bytes.len() <= limits.max_record);
            let text = std::str::from_utf8(item.bytes).expect("an accepted record is UTF-8");
            let v: serde_json::Value = serde_json::from_str(text).expect("accepted is JSON");
            assert!(v.is_object(), "an accepted record is one JSON object");
            if let Some(k) = item.key {
                let _: serde_json::Value = serde_json::from_str(k).expect("a key value is JSON");
            }
        }
        Some(reason) => {
            assert!(!reason.is_empty());
            assert!(item.key.is_none());
        }
    }
}
