//! The NDJSON + gzip codec of the raw and quarantine zones: JSON lines and deterministic gzip
//! (no file name, mtime 0, fixed OS byte). What a raw line holds is the lake contract's
//! ([`crate::lake::line`]).
//!
//! Compression is libdeflate (whole-buffer; objects are built in memory anyway): at the same
//! level it is faster than zlib and its streams are smaller (see BENCHMARKS.md). Readers are
//! unaffected: it is plain single-member gzip.

use libdeflater::{CompressionLvl, Compressor};

use serde::Serialize;

use crate::error::{Error, Result};

/// Appends one serialisable value as a JSON line.
pub fn push_json_line<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(|e| Error::Encode(e.to_string()))?;
    out.push(b'\n');
    Ok(())
}

/// gzip-compresses `data` deterministically at `level` (0-9): no name, mtime 0, OS byte 255.
pub fn gzip(data: &[u8], level: u32) -> Result<Vec<u8>> {
    let lvl = CompressionLvl::new(level.min(9) as i32)
        .map_err(|e| Error::Encode(format!("gzip level {level}: {e:?}")))?;
    let mut c = Compressor::new(lvl);
    let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
    let n = c
        .gzip_compress(data, &mut out)
        .map_err(|e| Error::Encode(format!("gzip: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let data = b"{\"a\":1}\n".repeat(100);
        let a = gzip(&data, 6).expect("gzip");
        let b = gzip(&data, 6).expect("gzip");
        assert_eq!(a, b);
        assert_eq!(
            &a[..4],
            &[0x1f, 0x8b, 8, 0],
            "gzip, deflate, no flags (no name)"
        );
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "mtime must be zero");
        assert_eq!(a[9], 255, "OS byte");
        assert!(a.len() < data.len() / 10, "compresses");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, data);
    }
}
