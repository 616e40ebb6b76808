//! S3 key handling: notification key decoding, the processing decision and zone-key parsing.
//! Whatever a key holds, an accepted one is under the prefix and a parsed one has only safe
//! components (no `/`, `..` or control characters can come out of it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::lake::keys::{decode_s3_event_key, is_safe_component, parse_zone_key, Partition};
use sluice_core::notify::{decide, ObjectNotice};

fn safe(s: &str) -> bool {
    is_safe_component(s) && !s.contains('/') && s != ".." && !s.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = decode_s3_event_key(raw) {
        check_key(&key);
    }
    check_key(raw);
    let notice = ObjectNotice {
        event_name: "ObjectCreated:Put".into(),
        bucket: "b".into(),
        raw_key: raw.into(),
        size: None,
    };
    if let Ok(a) = decide(&notice, "b", &["raw/"]) {
        assert!(a.key.starts_with("raw/"));
        assert_eq!(a.prefix, "raw/");
    }
    if let Some((dt, hr)) = raw.split_once('|') {
        if let Some(p) = Partition::parse(dt, hr) {
            assert!(safe(&p.dt) && safe(&p.hr));
            assert_eq!(p.path(), format!("dt={dt}/hr={hr}"));
        }
    }
});

fn check_key(key: &str) {
    if let Some(z) = parse_zone_key("raw/", key) {
        assert!(key.starts_with("raw/"));
        assert!(safe(&z.dataset), "dataset {:?}", z.dataset);
        assert!(safe(&z.file), "file {:?}", z.file);
        assert!(!z.stem().contains('/'));
        if let Some(p) = z.partition {
            assert!(safe(&p.dt) && safe(&p.hr));
        }
    }
}
