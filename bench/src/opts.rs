//! The command-line options of `sluice-bench` and their defaults (paths under the repository
//! root, the command named in BENCHMARKS.md).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use sluice_bench::repo_root;

pub struct Opts {
    pub out: PathBuf,
    pub command: String,
    pub ingest_bin: PathBuf,
    pub skip_rss: bool,
    /// Only the ingest figures (Rust and Python), printed, BENCHMARKS.md untouched.
    pub only_ingest: bool,
    /// Only the collector figures (Rust and Python), printed, BENCHMARKS.md untouched.
    pub only_collector: bool,
}

pub fn opts() -> Result<Opts> {
    let root = repo_root();
    let mut o = Opts {
        out: root.join("BENCHMARKS.md"),
        command: "make bench".into(),
        ingest_bin: root.join("target/release/kinesis-ingest"),
        skip_rss: false,
        only_ingest: false,
        only_collector: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => o.out = args.next().context("--out FILE")?.into(),
            "--command" => o.command = args.next().context("--command TEXT")?,
            "--ingest-bin" => o.ingest_bin = args.next().context("--ingest-bin PATH")?.into(),
            "--skip-rss" => o.skip_rss = true,
            "--only-ingest" => o.only_ingest = true,
            "--only-collector" => o.only_collector = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(o)
}
