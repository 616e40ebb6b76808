//! s3-transform's object reader (`functions/s3-transform/src/input.rs`, compiled here as a
//! module so the fuzz build does not need the AWS SDK): NDJSON, JSON arrays and CSV, plain or
//! gzip (fuzzed gzip bytes, or valid gzip of fuzzed text), under small caps.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, clippy::all)]
#[path = "../../functions/s3-transform/src/input.rs"]
mod input;

use input::{read_object, Format, Limits, ObjectError};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let format = if mode & 1 == 0 {
        Format::Json
    } else {
        Format::Csv
    };
    let limits = Limits {
        max_decompressed: 16 + u64::from(mode >> 3) * 64,
        max_line: 8 + usize::from(mode >> 4) * 16,
    };
    // mode bits 1-2: plain, raw bytes as gzip, valid gzip of the bytes.
    let (body, gz) = match (mode >> 1) & 3 {
        0 | 3 => (rest.to_vec(), false),
        1 => (rest.to_vec(), true),
        _ => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(rest).expect("gzip to memory");
            (e.finish().expect("gzip to memory"), true)
        }
    };
    let mut items = Vec::new();
    let res = read_object(&body, format, gz, limits, &mut |i| items.push(i));
    let mut last = 0;
    for it in &items {
        assert!(it.line > last, "line numbers increase");
        last = it.line;
        if let Ok(input::Fields::Json) = &it.fields {
            assert!(it.payload.len() <= limits.max_line);
        }
    }
    if let Err(ObjectError::TooLarge(cap)) = res {
        assert_eq!(cap, limits.max_decompressed);
    }
    if !gz && res.is_ok() && rest.len() as u64 > limits.max_decompressed {
        panic!("an object over the cap was read whole");
    }
});
