//! Criterion micro-benchmarks of the hot paths: the whole ingest CPU path on the 6 MB event,
//! its stages (event JSON parse, gzip of the planned objects at several levels), and the
//! transform of one raw object. Run with `cargo bench -p sluice-bench`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::io::Read;

use kinesis_ingest::KinesisBatch;
use sluice_bench::{demo_config, hash_key, ingest, ingest_event, raw_objects, transform_object};
use sluice_core::env::Zones;

fn benches(c: &mut Criterion) {
    let cfg = demo_config().expect("pipeline.toml");
    let zones = Zones::default();
    let (event, records) = ingest_event().expect("event");

    let mut g = c.benchmark_group("ingest");
    g.sample_size(20);
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function("plan_batch_6mb_event", |b| {
        b.iter(|| ingest(&cfg, &zones, black_box(&event)).expect("plan"))
    });
    g.bench_function("parse_kinesis_event_6mb", |b| {
        b.iter(|| serde_json::from_slice::<KinesisBatch>(black_box(&event)).expect("event"))
    });
    let plan = ingest(&cfg, &zones, &event).expect("plan");
    let raw: Vec<Vec<u8>> = plan
        .objects
        .iter()
        .map(|o| {
            let mut v = Vec::new();
            flate2::read::MultiGzDecoder::new(&o.body[..])
                .read_to_end(&mut v)
                .expect("gunzip");
            v
        })
        .collect();
    let raw_bytes: usize = raw.iter().map(Vec::len).sum();
    g.throughput(Throughput::Bytes(raw_bytes as u64));
    for level in [1u32, 3, 6] {
        g.bench_function(format!("gzip_level_{level}"), |b| {
            b.iter(|| {
                for r in &raw {
                    black_box(sluice_core::ndjson::gzip(r, level).expect("gzip"));
                }
            })
        });
    }
    g.finish();

    let objs = raw_objects(&cfg, 5_000, 5_000).expect("raw objects");
    let key = hash_key().expect("key");
    let rows: usize = objs
        .iter()
        .map(|o| {
            transform_object(&cfg, o, Some(&key))
                .expect("transform")
                .0
                .row_count()
        })
        .sum();
    let mut g = c.benchmark_group("transform");
    g.sample_size(20);
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("raw_objects_to_parquet_5000_events", |b| {
        b.iter_batched(
            || (),
            |()| {
                for o in &objs {
                    black_box(transform_object(&cfg, o, Some(&key)).expect("transform"));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
