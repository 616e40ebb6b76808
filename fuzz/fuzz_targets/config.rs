//! `PipelineConfig::from_toml` on arbitrary text: it either fails with a message or returns a
//! config whose names are safe to put in keys, tables and Glue.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::{is_glue_name, PipelineConfig};
use sluice_core::lake::keys::is_safe_component;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PipelineConfig::from_toml(text) {
        Ok(cfg) => {
            for ds in &cfg.datasets {
                assert!(is_safe_component(&ds.name), "dataset {:?}", ds.name);
                assert!(!ds.name.contains('/') && !ds.name.contains(".."));
                assert!(is_glue_name(&ds.name));
                if let Some(k) = ds.key {
                    assert!(k < ds.fields.len());
                }
                if let Some(t) = ds.event_time {
                    assert!(t < ds.fields.len());
                }
                assert!(ds.pii.keys().all(|i| *i < ds.fields.len()));
            }
            assert!(cfg.gzip_level <= 9);
            assert!(cfg.max_record_bytes > 0);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
