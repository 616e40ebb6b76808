#!/usr/bin/env bash
# make invoke FN=<function> EVENT=events/<file>: one function through `cargo lambda watch` +
# `cargo lambda invoke`, against the local stack (moto + PostgreSQL, seeded by sluice-stack).
# Everything started here stops when the script ends, also on Ctrl-C and on failure.
set -euo pipefail
fn="${1:?usage: invoke.sh FUNCTION EVENT_FILE}"
event="${2:?usage: invoke.sh FUNCTION EVENT_FILE}"
case "$fn" in
  kinesis-ingest|s3-transform|glue-catalog|failure-notifier|http-collector) ;;
  *) echo "unknown function $fn (kinesis-ingest, s3-transform, glue-catalog, failure-notifier, http-collector)" >&2; exit 2 ;;
esac
[ -f "$event" ] || { echo "no such event file: $event" >&2; exit 2; }
command -v cargo-lambda >/dev/null || { echo "cargo-lambda is not on PATH (make invoke installs it)" >&2; exit 2; }

work=$(mktemp -d)
watch_pid=""
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  exec 9>&- 2>/dev/null || true   # closing the stack's stdin stops moto and PostgreSQL
  wait 2>/dev/null || true
  if [ "${KEEP_LOGS:-}" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

cargo build --quiet --locked -p sluice-local --bin sluice-stack
mkfifo "$work/stack.in"
target/debug/sluice-stack "$work/env" < "$work/stack.in" &
exec 9>"$work/stack.in"
for _ in $(seq 1 600); do [ -s "$work/env" ] && break; sleep 0.2; done
[ -s "$work/env" ] || { echo "the local stack did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/env"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Loopback only: the invoke API is unauthenticated and the functions hold secrets.
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.5
done
cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$event"
echo
echo "(function logs: KEEP_LOGS=1 keeps $work/watch.log)"
