//! Stream-record decoding: KPL de-aggregation (MD5, protobuf), NDJSON splitting, UTF-8/JSON
//! checks and validation against the demo pipeline config, on arbitrary bytes; plus a KPL
//! round trip of fuzz-chosen user records.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_core::config::PipelineConfig;
use sluice_core::kpl;
use sluice_core::record::{deaggregate, split_user_records, validate};

fn cfg() -> &'static PipelineConfig {
    static CFG: OnceLock<PipelineConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        PipelineConfig::from_toml(include_str!("../../pipeline.toml")).expect("demo config")
    })
}

const ARRIVAL: i64 = 1_763_806_500_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let max = 64 + usize::from(mode) * 16;
    // Arbitrary bytes, optionally behind the KPL magic so the aggregate path is reached.
    let mut input = Vec::new();
    if mode & 1 == 1 {
        input.extend_from_slice(&kpl::MAGIC);
    }
    input.extend_from_slice(rest);
    check(&input, max);

    // A valid aggregate of fuzz-chosen records round-trips exactly.
    let recs: Vec<kpl::UserRecord> = rest
        .split(|b| *b == 0xFF)
        .enumerate()
        .map(|(i, d)| kpl::UserRecord {
            partition_key: format!("pk{}", i % 3),
            data: d.to_vec(),
        })
        .collect();
    let agg = kpl::aggregate(&recs);
    assert_eq!(kpl::deaggregate(&agg).as_ref(), Ok(&recs));
    check(&agg, max);
});

fn check(input: &[u8], max: usize) {
    let agg = match deaggregate(input) {
        Ok(a) => a,
        Err(r) => {
            assert!(kpl::is_aggregate(input));
            assert!(!r.reason.is_empty());
            return;
        }
    };
    let mut out = Vec::new();
    split_user_records(input, "pk", agg.as_ref(), max, &mut out);
    assert!(
        !out.is_empty() || agg.is_some(),
        "a plain record always yields a user record"
    );
    for (i, u) in out.iter().enumerate() {
        assert_eq!(u.sub as usize, i, "sub indexes are consecutive");
        match &u.decoded {
            Ok((map, text)) => {
                assert!(text.len() <= max);
                assert_eq!(text.as_bytes(), u.payload);
                let _ = validate(cfg(), map, ARRIVAL);
            }
            Err(r) => assert!(!r.reason.is_empty()),
        }
    }
}
