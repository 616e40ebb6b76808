"""A Python reference of kinesis-ingest's CPU path, standard library only.

Does the same work as `kinesis_ingest::plan_batch` on a Lambda Kinesis event: parse the event
JSON, base64-decode each record, split it into JSON objects, validate each against the pipeline
config (the rules of `sluice_core::record::validate` and `sluice_core::schema::coerce`), group
valid records by (dataset, event hour, shard) and rejects by (dataset or _unrouted, arrival
hour, shard), build the same NDJSON lines (metadata spliced in first; quarantine lines with the
same fields) and gzip each object at the pipeline's `gzip_level` with mtime 0.

Not implemented: KPL aggregates (the benchmark input has none; they are quarantined here as
corrupt). Reasons of invalid-JSON rejects may differ in column numbers from serde_json's.

Usage: ingest_ref.py EVENT_JSON PIPELINE_TOML [--iterations N]
Prints one JSON object: timings (median seconds of N runs) and per-object sizes and hashes.
"""

import base64
import gzip
import hashlib
import json
import re
import statistics
import sys
import time
import tomllib
from datetime import datetime, timezone

RESERVED_PREFIX = "_sluice"
MIN_EVENT_TIME_MICROS = 946_684_800_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KPL_MAGIC = b"\xf3\x89\x9a\xc2"
WS = re.compile(r"[ \t\n\r]*")
SAFE = re.compile(r"^[A-Za-z0-9._=-]+$")
DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Reject(Exception):
    def __init__(self, kind, reason, dataset=None):
        super().__init__(reason)
        self.kind, self.reason, self.dataset = kind, reason, dataset


class Coerce(Exception):
    pass


def debug(s):
    """Rust's `{:?}` of a plain string."""
    return DUMPS(s)


def type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def is_safe_component(s):
    return 0 < len(s) <= 255 and s not in (".", "..") and SAFE.match(s) is not None


def load_config(path):
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    p = raw.get("pipeline", {})
    datasets = []
    for d in raw.get("dataset", []):
        fields = [(f["name"], f["type"], bool(f.get("required", False))) for f in d["fields"]]
        names = [f[0] for f in fields]
        et = d.get("event_time")
        datasets.append(
            {
                "name": d["name"],
                "route": d.get("route", d["name"]),
                "fields": fields,
                "event_time": names.index(et) if et is not None else None,
            }
        )
    return {
        "routing_field": p.get("routing_field", "type"),
        "max_record_bytes": p.get("max_record_bytes", 1024 * 1024),
        "max_future_skew_secs": p.get("max_future_skew_secs", 86400),
        "gzip_level": p.get("gzip_level", 6),
        "routes": {d["route"]: d for d in datasets},
    }


def unparseable(ty, reason):
    return Coerce(f"not a valid {ty}: {reason}")


class Num(float):
    """A JSON float that remembers its text."""

    __slots__ = ("text",)

    def __new__(cls, text):
        o = float.__new__(cls, text)
        o.text = text
        return o


def decimal_spec(ty):
    """(precision, scale) of a `decimal(p,s)` type name, else None."""
    m = re.fullmatch(r"decimal\((\d+)(?:,\s*(\d+))?\)", ty)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def parse_decimal(ty, text, precision, scale):
    """The unscaled integer of `text` at `scale`, exactly, or raises Coerce (sluice's rules)."""
    t = text.strip()
    neg = t[:1] == "-"
    if t[:1] in ("-", "+"):
        t = t[1:]
    mant, exp = t, 0
    m = re.search(r"[eE]", t)
    if m:
        mant = t[: m.start()]
        try:
            exp = int(t[m.start() + 1 :])
        except ValueError:
            raise unparseable(ty, "not a decimal number") from None
    if not -10_000 <= exp <= 10_000:
        raise unparseable(ty, "not a decimal number")
    int_part, _, frac = mant.partition(".")
    if (not int_part and not frac) or not all(c in "0123456789" for c in int_part + frac):
        raise unparseable(ty, "not a decimal number")
    digits = (int_part + frac).lstrip("0")
    shift = exp - len(frac) + scale
    if shift >= 0:
        digits = digits + "0" * shift if digits else digits
    else:
        keep = max(len(digits) + shift, 0)
        if digits[keep:].strip("0"):
            raise unparseable(ty, "more digits after the point than the scale (it would be rounded)")
        digits = digits[:keep]
    if len(digits) > min(precision, 38):
        raise unparseable(ty, "more digits than the precision")
    value = int(digits) if digits else 0
    return ("dec", -value if neg else value)


def micros_of(dt):
    return (dt - EPOCH) // (datetime.resolution)


def parse_timestamp(s):
    t = s.strip()
    if len(t) >= 19 and t[10] in "Tt ":
        try:
            dt = datetime.fromisoformat(t)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return micros_of(dt)
        except ValueError:
            pass
    raise unparseable(
        "timestamp",
        "expected RFC 3339 (e.g. 2026-11-22T10:15:00Z) or epoch seconds/milliseconds",
    )


def epoch_number_to_micros(n):
    n = float(n)
    if n != n or n in (float("inf"), float("-inf")):
        return None
    micros = n * 1000.0 if abs(n) >= 1e11 else n * 1_000_000.0
    if abs(micros) < 8.0e18:
        return int(micros + (0.5 if micros >= 0 else -0.5))
    return None


def coerce_str(ty, s):
    """Returns the typed value (None for null) or raises Coerce."""
    if s == "" and ty != "string":
        return None
    if ty == "string":
        return s
    if ty == "int":
        try:
            return int(s.strip())
        except ValueError:
            raise unparseable(ty, "invalid digit found in string") from None
    if ty == "float":
        try:
            f = float(s.strip())
        except ValueError:
            raise unparseable(ty, "invalid float literal") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise unparseable(ty, "not finite")
        return f
    if ty == "bool":
        v = s.strip()
        if v in ("true", "TRUE", "True"):
            return True
        if v in ("false", "FALSE", "False"):
            return False
        raise unparseable(ty, "expected true or false")
    if ty == "timestamp":
        return ("ts", parse_timestamp(s))
    if ty == "date":
        try:
            return datetime.strptime(s.strip(), "%Y-%m-%d").date()
        except ValueError:
            raise unparseable(ty, "input contains invalid characters") from None
    spec = decimal_spec(ty)
    if spec:
        return parse_decimal(ty, s, *spec)
    return s


def coerce(ty, v):
    if v is None:
        return None
    if ty == "string":
        if isinstance(v, str):
            return v
    elif isinstance(v, str):
        return coerce_str(ty, v)
    elif ty == "int" and isinstance(v, (int, float)) and not isinstance(v, bool):
        if isinstance(v, int):
            if -(2**63) <= v < 2**63:
                return v
            if v < 2**64:
                raise unparseable(ty, "out of the 64-bit signed range")
            v = float(v)
        if v == v and v not in (float("inf"), float("-inf")) and v == int(v) and -9.2e18 <= v <= 9.2e18:
            return int(v)
        raise unparseable(ty, "has a fractional part or is out of range")
    elif ty == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    elif ty == "bool" and isinstance(v, bool):
        return v
    elif decimal_spec(ty) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return parse_decimal(ty, v.text if isinstance(v, Num) else str(v), *decimal_spec(ty))
    elif ty == "timestamp" and isinstance(v, (int, float)) and not isinstance(v, bool):
        m = epoch_number_to_micros(v)
        if m is None:
            raise unparseable(ty, "epoch number out of range")
        return ("ts", m)
    raise Coerce(f"expected {ty}, found {type_name(v)}")


def get_path(obj, name):
    """The value at a dotted path through nested objects (sluice's nested fields)."""
    v = obj
    for seg in name.split("."):
        if not isinstance(v, dict):
            return None
        v = v.get(seg)
    return v


def validate(cfg, obj, arrival_micros):
    rf = cfg["routing_field"]
    route = obj.get(rf)
    if route is None:
        raise Reject("unrouted", f"routing field {debug(rf)} is missing")
    if not isinstance(route, str):
        raise Reject("unrouted", f"routing field {debug(rf)} is {type_name(route)}, expected a string")
    ds = cfg["routes"].get(route)
    if ds is None:
        shown = f" {debug(route)}" if len(route) <= 64 and is_safe_component(route) else ""
        raise Reject("unknown_dataset", f"routing value{shown} matches no dataset")
    name = ds["name"]
    if any(k.startswith(RESERVED_PREFIX) for k in obj):
        raise Reject("reserved_field", f"fields starting with {RESERVED_PREFIX} are reserved", name)
    event_micros = arrival_micros
    for i, (fname, ty, required) in enumerate(ds["fields"]):
        v = get_path(obj, fname)
        if v is None:
            if required:
                raise Reject("missing_field", f"required field {debug(fname)} is missing or null", name)
            continue
        if ty == "json":
            continue
        is_event_time = ds["event_time"] == i
        try:
            t = coerce(ty, v)
        except Coerce as e:
            if is_event_time:
                raise Reject("bad_event_time", f"event time field {debug(fname)}: {e}", name) from None
            raise Reject("wrong_type", f"field {debug(fname)}: {e}", name) from None
        if is_event_time and isinstance(t, tuple):
            limit = arrival_micros + cfg["max_future_skew_secs"] * 1_000_000
            if t[1] < MIN_EVENT_TIME_MICROS or t[1] > limit:
                raise Reject(
                    "event_time_out_of_range",
                    f"event time field {debug(fname)} is before 2000-01-01 or more than "
                    f"{cfg['max_future_skew_secs']} s after arrival",
                    name,
                )
            event_micros = t[1]
    return ds, event_micros


def split_json(data, cfg):
    """Yields (sub_offset, payload_bytes, obj_or_None, text_or_Reject)."""
    max_bytes = cfg["max_record_bytes"]
    if len(data) > max_bytes:
        yield data, None, Reject("oversized", f"record is {len(data)} bytes, the limit is {max_bytes}")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield data, None, Reject("invalid_utf8", f"invalid UTF-8 at byte {e.start}")
        return
    if not text.strip():
        yield data, None, Reject("invalid_json", "record is empty")
        return
    # Floats keep their text (Num) so decimal(p,s) fields are checked exactly, as sluice does.
    decode = json.JSONDecoder(parse_float=Num).raw_decode
    pos, n = 0, len(text)
    while True:
        begin = WS.match(text, pos).end()
        if begin >= n:
            return
        try:
            obj, end = decode(text, begin)
        except json.JSONDecodeError as e:
            eof = e.pos >= len(text)
            col = e.colno - 1 if eof else e.colno
            what = "unexpected end of input" if eof else "syntax error"
            yield text[begin:].encode(), None, Reject(
                "invalid_json", f"invalid JSON at line {e.lineno} column {col}: {what}"
            )
            return
        chunk = text[begin:end]
        if isinstance(obj, dict):
            yield chunk.encode(), obj, chunk
        else:
            yield chunk.encode(), None, Reject("not_an_object", f"expected a JSON object, found {type_name(obj)}")
        pos = end


def fmt_millis(micros):
    dt = datetime.fromtimestamp(micros // 1_000_000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(micros // 1000) % 1000:03d}Z"


def partition(micros):
    dt = datetime.fromtimestamp(micros // 1_000_000, timezone.utc)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%H")


def handle(event_bytes, cfg, raw_prefix="raw/", quarantine_prefix="quarantine/"):
    """The whole CPU path; returns [(key, ndjson_bytes, gzip_bytes, records)] in key order."""
    event = json.loads(event_bytes)
    groups = {}
    b64 = base64.b64decode
    level = cfg["gzip_level"]

    def group(zone, dataset, part, shard, idx, seq):
        k = (zone, dataset, part, shard)
        g = groups.get(k)
        if g is None:
            g = groups[k] = {"lines": [], "first": seq, "last": seq, "n": 0}
        g["last"] = seq
        g["n"] += 1
        return g["lines"]

    for idx, r in enumerate(event["Records"]):
        kin = r["kinesis"]
        eid = r.get("eventID") or ""
        shard = eid.split(":", 1)[0] if ":" in eid else "unknown-shard"
        seq = kin["sequenceNumber"]
        pk = kin["partitionKey"]
        arrival_micros = round(kin["approximateArrivalTimestamp"] * 1000) * 1000
        arrival = fmt_millis(arrival_micros)
        arrival_part = partition(arrival_micros)
        data = b64(kin["data"])

        def quarantine(rej, sub, payload):
            lines = group(1, rej.dataset or "_unrouted", arrival_part, shard, idx, seq)
            lines.append(
                DUMPS(
                    {
                        "error_kind": rej.kind,
                        "reason": rej.reason,
                        "dataset": rej.dataset,
                        "shard": shard,
                        "seq": seq,
                        "sub": sub,
                        "partition_key": pk,
                        "arrival": arrival,
                        "payload_b64": base64.b64encode(payload).decode("ascii"),
                    }
                )
                + "\n"
            )

        if data[:4] == KPL_MAGIC:
            quarantine(Reject("corrupt_aggregate", "KPL aggregates are not implemented here"), 0, data)
            continue
        for sub, (payload, obj, text) in enumerate(split_json(data, cfg)):
            if obj is None:
                quarantine(text, sub, payload)
                continue
            try:
                ds, event_micros = validate(cfg, obj, arrival_micros)
            except Reject as rej:
                quarantine(rej, sub, payload)
                continue
            meta = DUMPS({"shard": shard, "seq": seq, "sub": sub, "pk": pk, "arrival": arrival})
            body = text[1:]
            comma = "" if body.lstrip().startswith("}") else ","
            line = '{"_sluice":' + meta + comma + body.replace("\n", " ").replace("\r", " ") + "\n"
            group(0, ds["name"], partition(event_micros), shard, idx, seq).append(line)

    out = []
    for (zone, dataset, (dt, hr), shard) in sorted(groups):
        g = groups[(zone, dataset, (dt, hr), shard)]
        prefix = raw_prefix if zone == 0 else quarantine_prefix
        safe = shard if is_safe_component(shard) else "unknown-shard"
        key = f"{prefix}{dataset}/dt={dt}/hr={hr}/{safe}-{g['first']}-{g['last']}.json.gz"
        ndjson = "".join(g["lines"]).encode()
        out.append((key, ndjson, gzip.compress(ndjson, compresslevel=level, mtime=0), g["n"]))
    return out


def main():
    args = sys.argv[1:]
    iterations = 5
    if "--iterations" in args:
        i = args.index("--iterations")
        iterations = int(args[i + 1])
        del args[i : i + 2]
    # Other gzip levels to time on the same objects (what-if lines: both sides at one level).
    levels = []
    if "--levels" in args:
        i = args.index("--levels")
        levels = [int(x) for x in args[i + 1].split(",") if x]
        del args[i : i + 2]
    event_path, config_path = args
    cfg = load_config(config_path)
    with open(event_path, "rb") as f:
        event_bytes = f.read()
    times = []
    out = None
    for _ in range(iterations):
        t0 = time.perf_counter()
        out = handle(event_bytes, cfg)
        times.append(time.perf_counter() - t0)
    # Time of the gzip step alone, on the same objects, at the pipeline's level and the others.
    def gzip_at(level):
        times = []
        size = 0
        for _ in range(iterations):
            t0 = time.perf_counter()
            size = sum(len(gzip.compress(nd, compresslevel=level, mtime=0)) for _, nd, _, _ in out)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), size

    gz_median, _ = gzip_at(cfg["gzip_level"])
    other_levels = []
    for level in levels:
        secs, size = gzip_at(level)
        other_levels.append({"level": level, "gzip_seconds_median": secs, "gz_bytes": size})
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "iterations": iterations,
                "seconds_median": statistics.median(times),
                "gzip_seconds_median": gz_median,
                "levels": other_levels,
                "records": len(json.loads(event_bytes)["Records"]),
                "objects": [
                    {
                        "key": k,
                        "records": n,
                        "raw_bytes": len(nd),
                        "gz_bytes": len(gz),
                        "sha256": hashlib.sha256(nd).hexdigest(),
                    }
                    for k, nd, gz, n in out
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
