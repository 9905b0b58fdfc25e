#!/usr/bin/env python3
"""Redis memory per sampled prediction waiting for its label.

Applies N sampled predictions of one binary classifier (UUID ids, 36 bytes; a score and a
class; event times over one hour) to a private redis-server through the aggregator's own apply
plans (mw-apply-plan) and apply.lua, in batches of 1,000, once with the model expecting labels
and once without (labels.models not matching it), and reports:

  - used_memory (INFO memory) with pending predictions minus without, per prediction: what
    the waiting predictions cost, windows and dedup bitmaps cancelling out;
  - the sum of MEMORY USAGE ... SAMPLES 0 over the pending hashes, per prediction;
  - for comparison, the same measures for the layout before (one string key
    mw:{M}:p:<id> per prediction holding its spec, with a TTL), written directly.

  pending_memory.py BUILD_DIR [--predictions N] [--shards S]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import free_port  # noqa: E402
from resp import Redis  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
T0 = 1795699980000
BATCH = 1000


def start_redis(tmp):
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(200):
        try:
            r = Redis(port)
            r("PING")
            return proc, r
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def used_memory(r):
    info = r("INFO", "memory").decode()
    return int(next(line.split(":")[1] for line in info.splitlines()
                    if line.startswith("used_memory:")))


def apply_all(exe, r, n, expect, shards):
    rng = random.Random(7)
    for seq in range(n // BATCH):
        recs = []
        for i in range(BATCH):
            score = rng.random()
            recs.append({"event": {"model": "churn", "version": "v3",
                                   "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                   "t": T0 + rng.randrange(3_600_000), "score": score,
                                   "class": "1" if score >= 0.5 else "0", "latency_us": 900}})
        spec = {"sequence": seq + 1, "agent": "bench", "boot": "b1", "records": recs,
                "options": {"now_ms": T0 + 3_600_000, "shards": shards,
                            "labels_models": ["churn"] if expect else []}}
        out = subprocess.run([exe], input=json.dumps(spec).encode(), capture_output=True,
                             check=True)
        for rep in r.pipeline(out.stdout, json.loads(out.stderr)["commands"]):
            if not isinstance(rep, (list, int)):
                raise SystemExit(f"apply failed: {rep}")


def measure(exe, n, expect, shards):
    tmp = tempfile.mkdtemp(prefix="mw-bench-mem-")
    proc, r = start_redis(tmp)
    try:
        r("SCRIPT", "LOAD", open(os.path.join(SRC, "aggregator", "apply.lua"), "rb").read())
        apply_all(exe, r, n, expect, shards)
        keys = r.scan_all("mw:{churn}:jp:*")
        usage = sum(r("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys)
        entries = sum(r("HLEN", k) for k in keys)
        enc = sorted({r("OBJECT", "ENCODING", k).decode() for k in keys})
        return used_memory(r), usage, entries, len(keys), enc
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def measure_before(n):
    """The layout before: SET mw:{M}:p:<id> <spec> PX <horizon>, spec as window_apply built it."""
    tmp = tempfile.mkdtemp(prefix="mw-bench-mem-")
    proc, r = start_redis(tmp)
    try:
        base = used_memory(r)
        rng = random.Random(7)
        cmds = []
        for i in range(n):
            pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            t = T0 + rng.randrange(3_600_000)
            score = rng.random()
            spec = "\x1f".join([f"mw:{{churn}}:w:60:{t - t % 60000}:v3",
                                f"mw:{{churn}}:w:3600:{t - t % 3600000}:v3", str(t), "1",
                                "1" if score >= 0.5 else "0", str(min(int(score * 1000), 999)),
                                repr(score), "1" if score >= 0.5 else "0", "0", "0"])
            cmds.append(Redis.encode("SET", f"mw:{{churn}}:p:{pid}", spec, "PX", 1209600000))
            if len(cmds) == 1000:
                r.pipeline(b"".join(cmds), len(cmds))
                cmds = []
        keys = r.scan_all("mw:{churn}:p:*")
        usage = sum(r("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys)
        return used_memory(r) - base, usage
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--predictions", type=int, default=100_000)
    ap.add_argument("--shards", type=int, default=256)
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "mw-apply-plan")
    n = a.predictions - a.predictions % BATCH
    with_p, usage, entries, n_keys, enc = measure(exe, n, True, a.shards)
    without_p = measure(exe, n, False, a.shards)[0]
    before_used, before_usage = measure_before(n)
    print(json.dumps({
        "pending_predictions": entries, "hashes": n_keys, "encodings": enc,
        "used_memory_delta_per_prediction": round((with_p - without_p) / n, 1),
        "memory_usage_per_prediction": round(usage / n, 1),
        "before_used_memory_delta_per_prediction": round(before_used / n, 1),
        "before_memory_usage_per_prediction": round(before_usage / n, 1)}, indent=1))


if __name__ == "__main__":
    main()
