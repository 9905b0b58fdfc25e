#!/usr/bin/env python3
"""bench/compression_layouts.py — how small the agent's batches would be under other layouts.

One command (from the repository root, after `ninja -C BUILD`; needs python3-zstandard):

    /usr/bin/python3 bench/compression_layouts.py BUILD [--events 200000] [--mix both]

For each event mix of modelwatch-loadgen (uniform, realistic) it starts modelwatch-devkafka and
one agent (every payload shipped: sample rate 1.0; otherwise the agent's defaults: batches of
960 KiB / 1 s, zstd level 1) in a private temp dir, takes the mock's brokers down once the agent
is ready, and lets loadgen send --events predictions. The agent writes every sealed batch to its
spool before it produces it (agent/shipper.c), and with no broker none is acknowledged, so the
spool ends up holding every batch exactly as the agent ships it: one zstd frame of one encoded
Batch. The agent is then stopped and the spool's segment files (format in agent/spool.h) read.

Each batch is decompressed and decoded (proto/telemetry.proto, wire format read here) and
compressed again with zstd at levels 1, 3 and 19 in several layouts:

  - row-wise: the Batch as the agent encodes it (the frame the agent wrote is the sanity check:
    its ratio must be bench/README.md's);
  - row-wise + dictionary: the same, with a zstd dictionary trained on the records of the first
    --train-batches batches, applied to the later batches only (the dictionary's own size is not
    counted: it would be shipped once);
  - columnar: one column per field — prediction ids concatenated with their lengths, event
    times as zigzag varint deltas, latencies and status as varints, model, version, error code,
    categorical features and predicted class as a per-batch dictionary and varint indices, each
    numeric feature, the score and the weight as a packed column; the record's shape (which
    fields, which features in which order) as an index into a per-batch dictionary of shapes;
    the Batch's header and snapshot as they are. Columns are concatenated, each preceded by its
    length, into one zstd frame. Numbers are packed three ways: raw little-endian doubles;
    doubles byte-transposed (all first bytes, then all second bytes...); and "exact", where a
    column whose every value is an integer after scaling by 10^s (-6 <= s <= 6, checked value
    by value to decode back to the same double) is stored as zigzag varints, one that is all
    float32 values as byte-transposed float32, and anything else as byte-transposed doubles;
    the exact layout also stores a prediction id column that is all canonical UUIDs as their
    16 bytes. Every layout keeps every value; none is lossy.

With --uuid-ids (the default) the same batches are measured again with every prediction id
replaced by a random UUID: loadgen numbers its predictions ("churn-42"), which costs a column
store almost nothing, while many model servers name them with random UUIDs.

Ratios are the row-wise Batch bytes over each layout's compressed bytes, summed over batches,
so that every layout is compared with the same original. Speeds are row-wise megabytes (10^6
bytes) per second of zstd (python3-zstandard, one thread, best of --repeat runs; building the
columns in Python is not timed: that would be C in the agent). A per-column table gives each
column of the exact layout compressed alone, in bytes per record.

Prints the tables, and with --json one JSON document. Standard library + python3-zstandard.
"""
import argparse
import glob
import json
import os
import random
import re
import struct
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Run, devkafka_cmd, free_port, machine, metrics  # noqa: E402
from procstat import wait_for as _wait_for  # noqa: E402

try:
    import zstandard
except ImportError:
    raise SystemExit("compression_layouts: needs python3-zstandard (apt-get install "
                     "python3-zstandard)")

MODELS = ["churn:v3", "fraud:v1"]
LEVELS = (1, 3, 19)
SPOOL_MAGIC = b"MWSP"
SPOOL_HEADER_BYTES = 24
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def wait_for(pred, timeout_s, what, interval_s=0.05):
    _wait_for(pred, timeout_s, what, "compression_layouts", interval_s)


# ---------------------------------------------------------------------------------------------
# Collecting the batches the agent ships


def collect(build, mix, events, keep):
    """Run devkafka, the agent and loadgen; return the payloads of the agent's sealed batches
    (zstd frames), in sequence order, and what the agent counted."""
    r = Run(build, keep, f"compression-{mix}")
    try:
        bootstrap = os.path.join(r.dir, "bootstrap")
        control = os.path.join(r.dir, "control")
        devkafka = r.spawn("devkafka", [r.exe("tools/modelwatch-devkafka"), "--bootstrap-file",
                                        bootstrap, "--control-file", control,
                                        "--log-level", "warn"])
        wait_for(lambda: os.path.exists(bootstrap) and os.path.exists(control), 20, "devkafka")
        http_port = free_port()
        endpoint = f"ipc://{r.dir}/agent.sock"
        spool_dir = os.path.join(r.dir, "spool")
        cfg = os.path.join(r.dir, "agent.yaml")
        with open(cfg, "w") as f:
            f.write(f"""agent_id: bench-agent
log_level: warn
intake:
  endpoint: "{endpoint}"
kafka:
  bootstrap_file: {bootstrap}
spool:
  dir: {spool_dir}
  fsync: false
http:
  port: {http_port}
models:
  - name: "*"
    sample_rate: 1.0
""")
        agent = r.spawn("agent", [r.exe("agent/modelwatch-agent"), "--config", cfg])
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz",
                                                timeout=2).status == 200, 120, "agent /readyz")
        reply = devkafka_cmd(control, "down all")
        if not reply.startswith("ok"):
            raise SystemExit(f"compression_layouts: devkafka 'down all': {reply}")
        with open(os.path.join(r.dir, "loadgen.json"), "wb") as out:
            loadgen = r.spawn("loadgen", [r.exe("tools/modelwatch-loadgen"), "--endpoint",
                                          endpoint, "--events", str(events)] +
                              (["--mix", mix] if mix != "uniform" else []) +
                              [a for m in MODELS for a in ("--model", m)], stdout=out)
        wait_for(lambda: metrics(http_port)["modelwatch_agent_events_accepted_total"] >= events,
                 600, "the agent to accept every event")
        rc, _ = r.reap(loadgen)
        if rc != 0:
            raise SystemExit(f"compression_layouts: loadgen exited {rc}")
        # The last batch is sealed by age (batch.max_age, 1 s); every sealed batch is in the
        # spool once the spool holds as many as were sealed and not delivered.
        time.sleep(1.5)

        def all_spooled():
            m = metrics(http_port)
            sealed = m["modelwatch_agent_batches_sealed_total"]
            delivered = m["modelwatch_agent_batches_delivered_total"]
            return sealed > 0 and m["modelwatch_agent_spool_batches"] == sealed - delivered
        wait_for(all_spooled, 60, "every sealed batch in the spool")
        m = metrics(http_port)
        r.stop(agent, timeout_s=30)
        r.stop(devkafka)
        counted = {k: m[f"modelwatch_agent_{k}"] for k in
                   ("events_accepted_total", "records_shipped_total", "batches_sealed_total",
                    "batches_delivered_total", "spool_batches")}
        return read_spool(spool_dir), counted
    finally:
        r.cleanup()


def read_spool(spool_dir):
    """Payloads of every entry of every segment, oldest first, ordered by sequence."""
    entries = {}
    for path in sorted(glob.glob(os.path.join(spool_dir, "*.seg"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + SPOOL_HEADER_BYTES <= len(data):
            if data[pos:pos + 4] != SPOOL_MAGIC:
                raise SystemExit(f"compression_layouts: {path}: no entry at offset {pos}")
            key_len, payload_len, sequence = struct.unpack_from("<HIQ", data, pos + 6)
            start = pos + SPOOL_HEADER_BYTES + key_len
            entries[sequence] = data[start:start + payload_len]
            pos = start + payload_len
    return [entries[s] for s in sorted(entries)]


# ---------------------------------------------------------------------------------------------
# Protobuf wire format (only what telemetry.proto uses)


def varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """(field number, wire type, value, raw bytes of the whole field) for each field of buf."""
    pos, n = 0, len(buf)
    while pos < n:
        start = pos
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"wire type {wire} at {start}")
        yield number, wire, value, buf[start:pos]


def put_varint(out, v):
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def zigzag(v):
    return (v << 1) ^ (v >> 63)


def signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def put_len_field(out, number, payload):
    put_varint(out, number << 3 | 2)
    put_varint(out, len(payload))
    out += payload


def with_uuid_ids(raw, rng):
    """The Batch raw with every event's prediction id replaced by a random UUID (36 characters),
    as many model servers name their predictions; everything else as it was."""
    out = bytearray()
    for number, wire, value, whole in fields(raw):
        if number != 5 or wire != 2:
            out += whole
            continue
        rec = bytearray()
        for rn, rw, rv, rwhole in fields(value):
            if rn != 1 or rw != 2:
                rec += rwhole
                continue
            ev = bytearray()
            for en, ew, evalue, ewhole in fields(rv):
                if en == 3 and ew == 2:
                    put_len_field(ev, 3, str(uuid.UUID(int=rng.getrandbits(128),
                                                       version=4)).encode())
                else:
                    ev += ewhole
            put_len_field(rec, 1, bytes(ev))
        put_len_field(out, 5, bytes(rec))
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Decoding a Batch into columns of values


class Columns:
    """The values of one batch, column by column, in record order. A column is a list of
    (kind, value): kind "int" (varint), "zint" (zigzag delta), "str" (bytes), "dict" (bytes
    stored as a per-batch dictionary index), "f64" (8 bytes of a double as on the wire),
    "f32" (4 bytes)."""

    def __init__(self):
        self.cols = {}
        self.kinds = {}
        self.n_records = 0

    def add(self, name, kind, value):
        col = self.cols.get(name)
        if col is None:
            col = self.cols[name] = []
            self.kinds[name] = kind
        col.append(value)


FEATURE_KINDS = {2: "num", 3: "cat"}


def decode_batch(raw, cols):
    """Spread one encoded Batch over cols; returns the records' encoded bytes (for dictionary
    training)."""
    records = []
    for number, wire, value, whole in fields(raw):
        if number == 5 and wire == 2:
            records.append(value)
            decode_record(value, cols)
        else:
            cols.add("batch header + snapshot", "raw", whole)
    return records


def decode_record(rec, cols):
    cols.n_records += 1
    shape = []
    for number, wire, value, whole in fields(rec):
        if number == 1 and wire == 2:
            shape.append("event{")
            decode_event(value, cols, shape)
            shape.append("}")
        elif number == 3 and wire == 1:
            shape.append("weight")
            cols.add("weight", "f64", value)
        elif number == 4 and wire == 0:
            shape.append("label_sampled")
            cols.add("label_sampled", "int", value)
        else:  # feedback and anything unknown, kept whole
            shape.append("other")
            cols.add("other fields", "raw", whole)
    cols.add("record shape", "dict", "|".join(shape).encode())


def decode_event(ev, cols, shape):
    for number, wire, value, whole in fields(ev):
        if number == 1 and wire == 2:
            shape.append("model")
            cols.add("model", "dict", value)
        elif number == 2 and wire == 2:
            shape.append("version")
            cols.add("version", "dict", value)
        elif number == 3 and wire == 2:
            shape.append("id")
            cols.add("prediction_id", "str", value)
        elif number == 4 and wire == 0:
            shape.append("time")
            cols.add("event_time_ms", "zint", signed64(value))
        elif number == 5 and wire == 0:
            shape.append("latency")
            cols.add("latency_us", "int", value)
        elif number == 6 and wire == 0:
            shape.append("status")
            cols.add("status", "int", value)
        elif number == 7 and wire == 2:
            shape.append("error")
            cols.add("error_code", "dict", value)
        elif number == 8 and wire == 2:
            decode_feature(value, cols, shape)
        elif number == 9 and wire == 2:
            shape.append("output{")
            decode_output(value, cols, shape)
            shape.append("}")
        elif number in (10, 11) and wire == 0:
            name = "input_tokens" if number == 10 else "output_tokens"
            shape.append(name)
            cols.add(name, "int", value)
        else:
            shape.append(f"other{number}")
            cols.add("other fields", "raw", whole)


def decode_feature(feat, cols, shape):
    name, kind, val, rest = b"?", None, None, []
    for number, wire, value, whole in fields(feat):
        if number == 1 and wire == 2:
            name = value
        elif number in FEATURE_KINDS and wire == (1 if number == 2 else 2):
            kind, val = FEATURE_KINDS[number], value
        else:
            rest.append(whole)
    label = name.decode(errors="replace")
    shape.append(f"{label}:{kind}" + ("+" if rest else ""))
    if kind == "num":
        cols.add(f"feature {label}", "f64", val)
    elif kind == "cat":
        cols.add(f"feature {label}", "dict", val)
    for whole in rest:
        cols.add(f"feature {label} flags", "raw", whole)


def decode_output(out, cols, shape):
    for number, wire, value, whole in fields(out):
        if number == 1 and wire == 2:
            shape.append("class")
            cols.add("predicted_class", "dict", value)
        elif number == 2 and wire == 1:
            shape.append("score")
            cols.add("score", "f64", value)
        elif number == 5 and wire == 1:
            shape.append("value")
            cols.add("output value", "f64", value)
        else:  # score vectors and class names: kept as encoded
            shape.append(f"out{number}")
            cols.add(f"output field {number}", "raw", whole)


# ---------------------------------------------------------------------------------------------
# Encoding columns


def transpose(chunks, width):
    """Byte planes: byte 0 of every value, then byte 1..."""
    joined = b"".join(chunks)
    return b"".join(joined[i::width] for i in range(width))


def exact_decimal_scale(values):
    """The scale s (-6 <= s <= 6) such that every double is an integer m with m / 10^s == value
    (m * 10^-s for s < 0), so that the column decodes back bit for bit: the smallest s >= 0 that
    works, made negative while every m is a multiple of ten. None when there is none."""
    for s in range(7):
        p = 10 ** s
        ints = []
        for v in values:
            if v != v or v in (float("inf"), float("-inf")):
                return None
            m = round(v * p)
            if abs(m) >= 1 << 53 or m / p != v:
                break
            ints.append(m)
        else:
            while s == 0 or s < 0:
                if s <= -6 or any(m % 10 for m in ints):
                    break
                ints = [m // 10 for m in ints]
                s -= 1
            return s
    return None


def encode_numbers(chunks, how):
    """A packed column of 8-byte doubles, as `how` says: raw, transposed or exact."""
    if how == "raw":
        return b"".join(chunks)
    if how == "transposed":
        return transpose(chunks, 8)
    values = [struct.unpack("<d", c)[0] for c in chunks]
    scale = exact_decimal_scale(values)
    out = bytearray()
    if scale is not None:
        out.append(scale & 0x7F)
        for v in values:
            m = round(v * 10 ** scale) if scale >= 0 else round(v) // 10 ** -scale
            put_varint(out, zigzag(m) & ((1 << 64) - 1))
        return bytes(out)
    f32 = [struct.pack("<f", v) for v in values]
    if all(struct.unpack("<f", b)[0] == v for b, v in zip(f32, values)):
        out.append(0x80)  # float32
        return bytes(out) + transpose(f32, 4)
    out.append(0x81)  # double
    return bytes(out) + transpose(chunks, 8)


def encode_column(kind, values, how):
    out = bytearray()
    if kind == "int":
        for v in values:
            put_varint(out, v)
    elif kind == "zint":
        prev = 0
        for v in values:
            put_varint(out, zigzag(v - prev) & ((1 << 64) - 1))
            prev = v
    elif kind == "str" and how == "exact" and all(UUID_RE.fullmatch(v) for v in values):
        out.append(16)  # canonical lowercase UUIDs, as their 16 bytes
        out += b"".join(bytes.fromhex(v.replace(b"-", b"").decode()) for v in values)
    elif kind == "str":
        out.append(0)  # as they are, lengths first
        lengths = bytearray()
        for v in values:
            put_varint(lengths, len(v))
        out += lengths + b"".join(values)
    elif kind == "dict":
        index, words = {}, []
        for v in values:
            i = index.get(v)
            if i is None:
                i = index[v] = len(words)
                words.append(v)
            put_varint(out, i)
        head = bytearray()
        put_varint(head, len(words))
        for w in words:
            put_varint(head, len(w))
            head += w
        out = head + out
    elif kind == "f64":
        out += encode_numbers(values, how)
    else:  # raw: as encoded
        out += b"".join(values)
    return bytes(out)


def columnar(cols, how):
    """{column name: bytes} of one batch."""
    return {name: encode_column(cols.kinds[name], values, how)
            for name, values in cols.cols.items()}


def join_columns(encoded):
    out = bytearray()
    for name, data in encoded.items():
        put_varint(out, len(name))
        out += name.encode()
        put_varint(out, len(data))
        out += data
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Measuring


def compressor(level, dict_data=None):
    # As common/zframe.c: content size and checksum in the frame.
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True,
                                    dict_data=dict_data)


def measure_layout(inputs, raw_total, repeat, dict_data=None):
    """Compressed bytes and speeds of one layout's inputs (one per batch) at each level."""
    res = {}
    dctx = zstandard.ZstdDecompressor(dict_data=dict_data)
    for level in LEVELS:
        cctx = compressor(level, dict_data)
        best_c = best_d = float("inf")
        frames = None
        for _ in range(1 if level >= 10 else repeat):
            t0 = time.perf_counter()
            frames = [cctx.compress(b) for b in inputs]
            best_c = min(best_c, time.perf_counter() - t0)
            t0 = time.perf_counter()
            back = [dctx.decompress(f) for f in frames]
            best_d = min(best_d, time.perf_counter() - t0)
            if back != inputs:
                raise SystemExit("compression_layouts: zstd round trip failed")
        size = sum(len(f) for f in frames)
        res[level] = {"compressed_bytes": size, "ratio": raw_total / size,
                      "compress_mb_s": raw_total / best_c / 1e6,
                      "decompress_mb_s": raw_total / best_d / 1e6}
    return res


def measure_layouts(raws, args, dictionary_too):
    """Every layout of the encoded Batches raws: {layout: {level: ...}}, the exact layout's
    columns each compressed alone, and the number of records."""
    batches = []
    for raw in raws:
        cols = Columns()
        records = decode_batch(raw, cols)
        batches.append((cols, records))
    n_records = sum(c.n_records for c, _ in batches)
    raw_total = sum(len(r) for r in raws)
    layouts = {"row-wise (protobuf Batch, as shipped)": measure_layout(raws, raw_total,
                                                                       args.repeat)}
    names = {"raw": "columnar, doubles raw",
             "transposed": "columnar, doubles byte-transposed",
             "exact": "columnar, exact: decimals as varints, float32 transposed"}
    exact = None
    for how, label in names.items():
        encoded = [columnar(c, how) for c, _ in batches]
        inputs = [join_columns(e) for e in encoded]
        layouts[label] = measure_layout(inputs, raw_total, args.repeat)
        if how == "exact":
            exact = encoded
    # The exact columns, each its own zstd frame (zstd then fits its entropy tables to each).
    layouts["columnar, exact, one frame per column"] = measure_layout(
        [data for enc in exact for data in enc.values()], raw_total, args.repeat)

    # Row-wise with a dictionary: trained on the first batches' records, measured on the rest
    # (and the plain row-wise layout on the same rest, for the comparison).
    k = args.train_batches
    if dictionary_too and len(batches) > k:
        samples = [rec for _, recs in batches[:k] for rec in recs]
        dictionary = zstandard.train_dictionary(args.dict_bytes, samples, level=1)
        rest = raws[k:]
        rest_total = sum(len(r) for r in rest)
        layouts[f"row-wise, batches {k + 1}..{len(raws)} only (no dictionary)"] = \
            measure_layout(rest, rest_total, args.repeat)
        layouts[f"row-wise + {args.dict_bytes // 1024} KiB dictionary (trained on batch"
                f"{'es 1..' if k > 1 else ' '}{k}), batches {k + 1}..{len(raws)}"] = \
            measure_layout(rest, rest_total, args.repeat, dictionary)

    per_column = {}
    for level in (1, 3):
        cctx = compressor(level)
        for enc in exact:
            for name, data in enc.items():
                pc = per_column.setdefault(name, {"input_bytes": 0, 1: 0, 3: 0})
                if level == 1:
                    pc["input_bytes"] += len(data)
                pc[level] += len(cctx.compress(data))
    return layouts, per_column, n_records


def analyse(mix, payloads, counted, args):
    dctx = zstandard.ZstdDecompressor()
    raws = [dctx.decompress(p) for p in payloads]
    layouts, per_column, n_records = measure_layouts(raws, args, True)
    raw_total = sum(len(r) for r in raws)
    res = {
        "mix": mix,
        "batches": len(raws),
        "records": n_records,
        "agent": counted,
        "shipped_bytes": sum(len(p) for p in payloads),
        "row_bytes": raw_total,
        "row_bytes_per_record": raw_total / n_records,
        "shipped_ratio": raw_total / sum(len(p) for p in payloads),
        "layouts": layouts,
        "per_column": per_column,
    }
    if args.uuid_ids:
        rng = random.Random(1)
        uraws = [with_uuid_ids(r, rng) for r in raws]
        ulayouts, uper_column, _ = measure_layouts(uraws, args, False)
        res["uuid_ids"] = {"row_bytes": sum(len(r) for r in uraws), "layouts": ulayouts,
                           "per_column": uper_column}
    return res


# ---------------------------------------------------------------------------------------------
# Reporting


def layout_table(layouts):
    lines = ["| layout | ratio L1 | ratio L3 | ratio L19 | compress MB/s L1 | L3 | L19 "
             "| decompress MB/s L1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, lv in layouts.items():
        lines.append(f"| {name} | " + " | ".join(f"{lv[lvl]['ratio']:.2f}x" for lvl in LEVELS) +
                     " | " + " | ".join(f"{lv[lvl]['compress_mb_s']:.0f}" for lvl in LEVELS) +
                     f" | {lv[1]['decompress_mb_s']:.0f} |")
    return lines


def column_table(per_column, n_records, row_bytes):
    total3 = sum(c[3] for c in per_column.values())
    lines = ["| column | encoded | zstd L1 | zstd L3 | share of L3 |",
             "|---|---:|---:|---:|---:|"]
    for name, c in sorted(per_column.items(), key=lambda kv: -kv[1][3]):
        lines.append(f"| {name} | {c['input_bytes'] / n_records:.2f} | {c[1] / n_records:.2f} | "
                     f"{c[3] / n_records:.2f} | {100 * c[3] / total3:.1f} % |")
    lines.append(f"| all columns | "
                 f"{sum(c['input_bytes'] for c in per_column.values()) / n_records:.2f} | "
                 f"{sum(c[1] for c in per_column.values()) / n_records:.2f} | "
                 f"{total3 / n_records:.2f} | |")
    lines.append(f"| (row-wise record, uncompressed) | {row_bytes / n_records:.2f} | | | |")
    return lines


def tables(res):
    n = res["records"]
    lines = [f"### {res['mix']} mix: {res['batches']} batches, {n:,} records, "
             f"{res['row_bytes']:,} row-wise bytes ({res['row_bytes_per_record']:.1f} per "
             f"record); the agent's own frames (level 1): {res['shipped_ratio']:.2f}x", ""]
    lines += layout_table(res["layouts"])
    lines += ["", "Columns of the exact layout, each compressed alone, bytes per record:", ""]
    lines += column_table(res["per_column"], n, res["row_bytes"])
    u = res.get("uuid_ids")
    if u:
        lines += ["", f"The same batches with every prediction id a random UUID "
                      f"({u['row_bytes'] / n:.1f} row-wise bytes per record; ratios against "
                      f"that):", ""]
        lines += layout_table(u["layouts"])
        lines += ["", "Columns of the exact layout with UUID ids, bytes per record:", ""]
        lines += column_table(u["per_column"], n, u["row_bytes"])
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.environ.get("MW_BUILD_DIR", "build"))
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--mix", choices=("uniform", "realistic", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs of each layout at levels 1 and 3 (the best counts)")
    ap.add_argument("--train-batches", type=int, default=1,
                    help="batches whose records train the dictionary")
    ap.add_argument("--dict-bytes", type=int, default=112640, help="dictionary size")
    ap.add_argument("--uuid-ids", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the batches with every prediction id a random UUID")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs and their logs")
    args = ap.parse_args()
    mixes = ("uniform", "realistic") if args.mix == "both" else (args.mix,)
    doc = {"machine": machine(), "events": args.events, "zstd": zstandard.ZSTD_VERSION,
           "results": []}
    for mix in mixes:
        payloads, counted = collect(args.build, mix, args.events, args.keep)
        if not payloads:
            raise SystemExit(f"compression_layouts: the spool held no batch ({counted})")
        doc["results"].append(analyse(mix, payloads, counted, args))
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return
    m = doc["machine"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu']} (1-min load {m['loadavg_1m_at_start']:.2f} "
          f"at start); zstd {'.'.join(map(str, doc['zstd']))}; {args.events:,} events per mix, "
          f"sample rate 1.0\n")
    for res in doc["results"]:
        print(tables(res) + "\n", flush=True)


if __name__ == "__main__":
    main()
