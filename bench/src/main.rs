//! `sluice-bench`: measures every figure of the benchmark table in one run, prints the table
//! and writes BENCHMARKS.md (date, machine, command, table, notes from `bench/NOTES.md`).
//!
//! Usage: `sluice-bench [--out FILE] [--command TEXT] [--ingest-bin PATH] [--skip-rss] [--only-ingest] [--only-collector]`
//! (`bench/run.sh`, i.e. `make bench`, builds the release binaries and runs it).

mod collector;
mod ingest;
mod opts;
mod postgres;
mod process;
mod python;
mod report;
mod run;
mod stats;
mod transform;
mod zips;

fn main() -> anyhow::Result<()> {
    let o = opts::opts()?;
    run::run(&o)
}
