#!/usr/bin/env bash
# The benchmark table generator (`make bench`): builds the release binaries it measures, then
# runs `sluice-bench`, which measures every figure in one run, prints the table and writes
# BENCHMARKS.md (date, machine, command). Extra arguments go to sluice-bench, e.g.
#   bench/run.sh --out /tmp/B.md --skip-rss
# The criterion micro-benchmarks are separate: `cargo bench -p sluice-bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
# kinesis-ingest on its own, so its features resolve exactly as in a production build.
"$CARGO" build --release --locked -p kinesis-ingest
"$CARGO" build --release --locked -p sluice-bench --bin sluice-bench
exec target/release/sluice-bench --command "${BENCH_COMMAND:-bench/run.sh}" "$@"
