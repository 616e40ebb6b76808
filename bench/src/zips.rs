//! The zip-size figures: the size of each function's arm64 release `bootstrap.zip` (built by
//! `make build`) against the 6 MB target.

use std::path::Path;

use crate::report::{line, Line};
use crate::stats::MB;

const FUNCTIONS: [&str; 4] = [
    "kinesis-ingest",
    "s3-transform",
    "glue-catalog",
    "failure-notifier",
];

/// One row per function; a missing zip is "not measured", not a failure.
pub fn rows(lines: &mut Vec<Line>, root: &Path) {
    for f in FUNCTIONS {
        let zip = root.join(format!("target/lambda/{f}/bootstrap.zip"));
        match std::fs::metadata(&zip) {
            Ok(m) => lines.push(line(
                &format!("zip: {f} (arm64 release)"),
                format!("{:.2} MB", m.len() as f64 / MB),
                "≤ 6 MB",
                Some(m.len() as f64 <= 6.0 * MB),
            )),
            Err(_) => lines.push(line(
                &format!("zip: {f} (arm64 release)"),
                format!(
                    "not measured: target/lambda/{f}/bootstrap.zip is missing (run `make build`)"
                ),
                "≤ 6 MB",
                None,
            )),
        }
    }
}
