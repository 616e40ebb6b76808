//! One benchmark run, in the order the progress lines number it: build the event, measure
//! every stage and collect its table rows, then print the table and write BENCHMARKS.md (or,
//! with `--only-ingest`, print the ingest figures and keep sluice's objects).

use anyhow::Result;
use sluice_bench::{demo_config, ingest, ingest_event, repo_root};
use sluice_core::env::Zones;

use crate::opts::Opts;
use crate::{collector, ingest, postgres, process, python, report, transform, zips};

pub fn run(o: &Opts) -> Result<()> {
    let machine = report::machine();
    let root = repo_root();
    let cfg = demo_config()?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();

    if o.only_collector {
        let dir = root.join("target/bench");
        std::fs::create_dir_all(&dir)?;
        let mut lines = Vec::new();
        let note = collector::measure(&dir, &mut lines)?;
        for l in &lines {
            println!("{}: {}", l.figure, l.value);
        }
        println!("{note}");
        return Ok(());
    }

    eprintln!("[1/8] building the 6 MB Kinesis event");
    let (event, records) = ingest_event()?;
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let event_path = dir.join("kinesis-6mb.json");
    std::fs::write(&event_path, &event)?;
    let payload: usize = sluice_bench::records(records)
        .iter()
        .map(|r| r.data.len())
        .sum();
    notes.push(format!(
        "Input: one Kinesis event of {} bytes ({records} records, {:.0} B average decoded record, \
         ~3 % malformed; `target/bench/kinesis-6mb.json`), the largest that fits Lambda's 6 MiB payload.",
        event.len(),
        payload as f64 / records as f64
    ));

    eprintln!("[2/8] ingest CPU path (Rust)");
    let ing = ingest::bench_ingest(&cfg, &event, records)?;
    ingest::rows(&mut lines, &ing);

    eprintln!("[3/8] ingest CPU path (Python reference)");
    python::rows(
        &mut lines,
        &cfg,
        &ing,
        python::bench_python(&event_path, &ing),
    );

    if o.only_ingest {
        // Keep sluice's objects for comparison with the reference (target/bench/rust/).
        let zones = Zones::default();
        let out = dir.join("rust");
        std::fs::create_dir_all(&out)?;
        for ob in ingest(&cfg, &zones, &event)?.objects {
            std::fs::write(
                out.join(ob.key.replace('/', "_")),
                ingest::gunzip(&ob.body)?,
            )?;
        }
        for l in &lines {
            println!("{}: {}", l.figure, l.value);
        }
        return Ok(());
    }

    eprintln!("[4/8] transform CPU path");
    let (tf, pv_rows, pv_cols) = transform::bench_transform(&cfg)?;
    transform::rows(&mut lines, &tf);

    eprintln!("[5/8] PostgreSQL load");
    postgres::rows(
        &mut lines,
        postgres::bench_postgres(&cfg, &pv_rows, &pv_cols),
    );

    eprintln!("[6/8] collector CPU path (Rust, then the Python reference)");
    notes.push(collector::measure(&dir, &mut lines)?);

    eprintln!("[7/8] init time and peak RSS ({})", o.ingest_bin.display());
    process::rows(&mut lines, o, &cfg, &event)?;

    eprintln!("[8/8] zip sizes");
    zips::rows(&mut lines, &root);

    let table = report::table(&lines);
    report::print(&table, &notes);
    report::write(o, &root, &machine, &table, &notes)
}
