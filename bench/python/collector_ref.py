"""A Python reference of http-collector's CPU path, standard library only.

Does what a careful Python Lambda behind API Gateway does for one `POST /v1/events` NDJSON
body: check the API key (SHA-256, constant-time compare), split the body into lines, decode and
parse each (a record must be one JSON object of at most 1 MiB minus 256 bytes), take the
partition key from a field (a non-empty string of at most 256 bytes, or a number's JSON text)
or else the first 128 bits of the record's SHA-256 in hex, build the PutRecords entries
(`{"Data": bytes, "PartitionKey": str}`, as boto3 takes them) and cut them into calls of at
most 500 entries and 5 MiB. Serialisation, signing and the network are left out, as on the
Rust side.

It checks less than sluice: Python's `json` accepts NaN/Infinity and lone surrogates and has no
depth limit of 100, so a record sluice refuses for those would be accepted here (the benchmark
input has none).

Usage: collector_ref.py BODY_NDJSON [--partition-key FIELD] [--iterations N]
Prints one JSON object: the median seconds per request, the counts and a SHA-256 over
`partition key \\t data \\n` of every accepted record, to compare with sluice's.
"""

import hashlib
import hmac
import json
import statistics
import sys
import time

MAX_RECORD = 1024 * 1024 - 256
MAX_KEY = 256
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
API_KEY = "sluice-bench-api-key-0001"
KEYS = {"bench": hashlib.sha256(API_KEY.encode()).digest()}


def authenticate(presented):
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for name, want in KEYS.items():
        if hmac.compare_digest(digest, want):
            found = name
    return found


def partition_key(obj, line, field):
    v = obj.get(field) if field else None
    if isinstance(v, str) and v and len(v.encode()) <= MAX_KEY:
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return json.dumps(v)
    return hashlib.sha256(line).hexdigest()[:32]


def handle(body, headers, field):
    if authenticate(headers.get("x-api-key", "")) is None:
        return 403, None, None
    entries, rejected = [], []
    for i, line in enumerate(l for l in body.split(b"\n") if l.strip()):
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > MAX_RECORD:
            rejected.append({"index": i, "reason": "too large"})
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            rejected.append({"index": i, "reason": str(e)})
            continue
        if not isinstance(obj, dict):
            rejected.append({"index": i, "reason": "not a JSON object"})
            continue
        entries.append({"Data": line, "PartitionKey": partition_key(obj, line, field)})
    calls, batch, size = [], [], 0
    for e in entries:
        n = len(e["Data"]) + len(e["PartitionKey"].encode())
        if not batch or len(batch) == MAX_BATCH_RECORDS or size + n > MAX_BATCH_BYTES:
            batch, size = [], 0
            calls.append(batch)
        batch.append(e)
        size += n
    answer = json.dumps({"accepted": len(entries), "rejected": rejected, "failed": []})
    return (400 if rejected else 200), calls, answer


def main():
    args = sys.argv[1:]
    path, field, iterations = args[0], None, 21
    if "--partition-key" in args:
        field = args[args.index("--partition-key") + 1]
    if "--iterations" in args:
        iterations = int(args[args.index("--iterations") + 1])
    with open(path, "rb") as f:
        body = f.read()
    headers = {"content-type": "application/x-ndjson", "x-api-key": API_KEY}
    for _ in range(2):
        handle(body, headers, field)
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        status, calls, _ = handle(body, headers, field)
        times.append(time.perf_counter() - t)
    h = hashlib.sha256()
    accepted = 0
    for batch in calls:
        for e in batch:
            h.update(e["PartitionKey"].encode() + b"\t" + e["Data"] + b"\n")
            accepted += 1
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "status": status,
                "seconds_median": statistics.median(times),
                "accepted": accepted,
                "put_records_calls": len(calls),
                "entries_sha256": h.hexdigest(),
            }
        )
    )


if __name__ == "__main__":
    main()
