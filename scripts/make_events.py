"""Writes the committed sample events in events/ (deterministic; run after changing them).

The KPL aggregate is encoded here independently of the Rust encoder, so the tests that feed
these samples also check the de-aggregator against a second implementation of the format.
"""

import base64
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARRIVAL = 1763805600.123  # 2025-11-22T10:00:00.123Z
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/sluice-events"
SHARD = "shardId-000000000000"


def seq(n: int) -> str:
    return f"4959{n:052d}"


def record(n: int, data: bytes, pk: str | None = None) -> dict:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": pk or f"user-{n % 7}",
            "sequenceNumber": seq(n),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": round(ARRIVAL + n / 1000, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:{seq(n)}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/sluice-kinesis-ingest",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM,
    }


def js(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def page_view(i: int, ts: str = "2025-11-22T09:41:07.250Z") -> dict:
    return {"type": "page_view", "event_id": f"pv-{i:04d}", "ts": ts, "session_id": f"s-{i % 3}",
            "user_id": f"u-{i % 5}", "url": f"https://shop.example.com/p/{i}", "referrer": None,
            "duration_ms": 1200 + i, "ip": "203.0.113.42"}


def signup(i: int) -> dict:
    return {"type": "signup", "event_id": f"su-{i:04d}", "ts": "2025-11-22T09:58:00Z",
            "user_id": f"u-{i}", "email": f"pii-marker-{i}@example.com", "ip": "198.51.100.77",
            "phone": "+1-555-0100", "country": "NZ", "plan": "pro", "marketing_opt_in": True,
            "birth_date": "1990-04-01"}


def purchase(i: int) -> dict:
    return {"type": "purchase", "order_id": f"o-{i:04d}", "ts": "2025-11-22T08:15:30+00:00",
            "user_id": f"u-{i % 5}", "amount": round(19.99 + i, 2), "currency": "EUR", "items": 1 + i % 3,
            "coupon": None, "payment": {"method": "card", "brand": "visa"}}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(tag: int, wire: int, payload: bytes) -> bytes:
    key = varint(tag << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def kpl(records: list[tuple[str, bytes]]) -> bytes:
    keys: list[str] = []
    body = b""
    for pk, _ in records:
        if pk not in keys:
            keys.append(pk)
    for pk in keys:
        body += field(1, 2, pk.encode())
    for pk, data in records:
        rec = field(1, 0, varint(keys.index(pk))) + field(3, 2, data)
        body += field(3, 2, rec)
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def write(name: str, records: list[dict]) -> None:
    path = ROOT / "events" / name
    path.write_text(json.dumps({"Records": records}, indent=2) + "\n")


def s3_key(key: str) -> str:
    """Encodes a key the way S3 event notifications do."""
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.*/")
    return "".join("+" if b == 0x20 else chr(b) if b in safe else f"%{b:02X}" for b in key.encode())


def s3_event(bucket: str, key: str, size: int, config_id: str) -> dict:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2025-11-22T10:00:01.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:sluice"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                             "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": config_id,
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": s3_key(key), "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "sequencer": "0055AED6DCD90281E5"}}}]}


def write_obj(name: str, obj: dict) -> None:
    (ROOT / "events" / name).write_text(json.dumps(obj, indent=2) + "\n")


def main() -> None:
    clean = [page_view(1), signup(2), purchase(3), page_view(4, "2025-11-22T10:00:00.000Z"),
             purchase(5)]
    write("kinesis-clean.json", [record(i + 1, js(r)) for i, r in enumerate(clean)])

    bad = [
        js(page_view(10)),                                     # valid
        b"\xff\xfe not utf-8",                                 # invalid_utf8
        b'{"type": "page_view", "event_id": ',                 # invalid_json
        b"[1, 2, 3]",                                          # not_an_object
        js({"event_id": "x"}),                                 # unrouted
        js({"type": "refund", "id": 1}),                       # unknown_dataset
        js({k: v for k, v in signup(16).items() if k != "email"}),          # missing_field
        js({**purchase(17), "amount": "lots"}),                # wrong_type
        js({**page_view(18), "ts": "yesterday"}),              # bad_event_time
        js({**page_view(19), "ts": "1999-12-31T23:59:59Z"}),   # event_time_out_of_range
        js({**page_view(20), "ts": "2025-11-24T10:00:00Z"}),   # event_time_out_of_range (future)
        js(signup(21)) + b"\n" + js(purchase(21)),             # two valid NDJSON lines
        b"\xf3\x89\x9a\xc2" + b"\x00" * 20,                    # corrupt_aggregate
    ]
    write("kinesis-mixed.json", [record(i + 10, d) for i, d in enumerate(bad)])

    agg = kpl([("user-1", js(page_view(30))), ("user-2", js(signup(31))),
               ("user-1", js(purchase(32))), ("user-3", b"{broken")])
    write("kinesis-kpl.json", [record(30, agg, "agg-1"), record(31, js(page_view(33)))])

    raw = f"raw/page_views/dt=2025-11-22/hr=09/{SHARD}-{seq(1)}-{seq(1)}.json.gz"
    write_obj("s3-put-raw.json", s3_event("sluice-data", raw, 341, "raw-to-transform"))
    write_obj("s3-put-csv.json", s3_event("sluice-data", "raw/purchases/manual import café.csv", 220,
                                          "raw-to-transform"))
    write_obj("s3-test-event.json", {"Service": "Amazon S3", "Event": "s3:TestEvent",
                                     "Time": "2025-11-22T10:00:00.000Z", "Bucket": "sluice-data",
                                     "RequestId": "5582815E1AEA5ADF",
                                     "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"})


if __name__ == "__main__":
    main()
