#!/usr/bin/python3
"""bench/redis_memory: Redis memory a model costs per day of traffic, through the real pipeline.

One model with 50 numeric and 10 categorical features (a profile of format 2 with the default
100-percentile grid for each numeric one) sends RECORDS sampled records into one minute through
a real agent, devkafka and the aggregator. The script then reads MEMORY USAGE of the model's
1-minute and 1-hour window hashes and counts their fields by kind (grid, sketch, categories,
service and performance counters), and extrapolates:

  written per model-day   1440 x (1 m window) + 24 x (1 h window)
  resident at the default retentions (windows.fine_retention 2d, coarse_retention 30d)
                          2 x 1440 x (1 m window) + 30 x 24 x (1 h window)

A window that sees this many records fills every slot it will ever fill, so a busier hour's
1 h window is the same size; quieter minutes are smaller (the fields are sparse).

  /usr/bin/python3 bench/redis_memory.py [BUILD_DIR] [RECORDS_PER_MINUTE ...]
  MW_AGGREGATOR_EXTRA='drift:\n  sketch_always: true' ... to measure another configuration
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from drift_oracle import categorical_profile, numeric_profile, profile_document  # noqa: E402
from harness import Cluster, metrics, wait_for  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
os.environ["MODELWATCH_LIB"] = os.path.join(BUILD, "agent", "client", "libmodelwatch.so")
sys.path.insert(0, os.path.join(HERE, "..", "agent", "client", "python"))
import modelwatch  # noqa: E402

N_NUMERIC, N_CATEGORICAL = 50, 10


def draw(rng, k, n):
    """Feature k's values: a mix of shapes and scales, as real feature vectors have."""
    kind = k % 5
    if kind == 0:
        return rng.normal(40 + k, 12, n)
    if kind == 1:
        return rng.lognormal(0, 1, n) * (k + 1)
    if kind == 2:
        return rng.uniform(0, 1, n)
    if kind == 3:
        return np.round(rng.exponential(3, n), 2)
    return rng.normal(0, 1, n)


def categories(k):
    return [f"v{j}" for j in range(5 + 2 * k)]


def profile(rng):
    features = {f"f{k:02d}": numeric_profile(draw(rng, k, 20000)) for k in range(N_NUMERIC)}
    for k in range(N_CATEGORICAL):
        cats = categories(k)
        features[f"c{k}"] = categorical_profile({c: 1 / len(cats) for c in cats}, 0.0, 20000)
    return profile_document("mem", "v1", features, 20000)


def kind_of(field):
    if field.startswith("d|"):
        parts = field.split("|")
        if len(parts) < 3:
            return "cost"
        suffix = parts[2]
        if suffix.startswith("k"):
            return "sketch"
        if suffix[:1] in ("g", "s"):
            return "grid"
        if suffix == "c":
            return "categories"
        return "feature totals"
    return "service and performance"


def redis(cluster, *args):
    return subprocess.run(["redis-cli", "-p", str(cluster.redis_port), *map(str, args)],
                          capture_output=True, text=True, check=True).stdout.strip()


def measure(cluster, agg, agent, records, start_ms, rng, applied_before):
    with modelwatch.Client(agent.endpoint) as client:
        for i in range(records):
            features = {f"f{k:02d}": float(draw(rng, k, 1)[0]) for k in range(N_NUMERIC)}
            features.update({f"c{k}": categories(k)[i % len(categories(k))]
                             for k in range(N_CATEGORICAL)})
            while not client.capture("mem", f"p{start_ms}-{i}", version="v1", latency_us=900,
                                     event_time_ms=start_ms + i * 50_000 // records,
                                     features=features, score=0.3):
                time.sleep(0.001)
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total", 0)
             >= applied_before + records, 120, "the aggregator to apply every batch")
    out = {}
    for res in (60, 3600):
        start = start_ms // (res * 1000) * res * 1000
        key = f"mw:{{mem}}:w:{res}:{start}:v1"
        fields = redis(cluster, "HKEYS", key).split("\n")
        kinds = {}
        for f in fields:
            kinds[kind_of(f)] = kinds.get(kind_of(f), 0) + 1
        out[res] = {"bytes": int(redis(cluster, "MEMORY", "USAGE", key, "SAMPLES", "0")),
                    "fields": len(fields), "by_kind": kinds}
    return out


def main():
    levels = [int(x) for x in sys.argv[2:]] or [600, 6000]
    cluster = Cluster(BUILD, name="redis_memory")
    try:
        cluster.start_redis()
        cluster.start_devkafka()
        agg = cluster.start_aggregator(
            extra=os.environ.get("MW_AGGREGATOR_EXTRA", "").replace("\\n", "\n"))
        agent = cluster.start_agent(extra="models:\n  - name: mem\n    sample_rate: 1.0\n"
                                          "    max_events_per_second: 0\n")
        rng = np.random.default_rng(1)
        doc = json.dumps(profile(rng)).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{agg.http_port}/api/v1/models/mem/"
                                     "profiles/v1", method="PUT", data=doc)
        urllib.request.urlopen(req, timeout=10).read()
        hour = (int(time.time() * 1000) // 3_600_000 - 5) * 3_600_000
        applied = 0
        for n, records in enumerate(levels):
            m = measure(cluster, agg, agent, records, hour + n * 3_600_000, rng, applied)
            applied += records
            w1m, w1h = m[60]["bytes"], m[3600]["bytes"]
            print(json.dumps({
                "records_per_minute": records,
                "window_1m": m[60], "window_1h": m[3600],
                "written_per_model_day_mib": round((1440 * w1m + 24 * w1h) / 2**20, 1),
                "resident_at_default_retentions_mib":
                    round((2 * 1440 * w1m + 30 * 24 * w1h) / 2**20, 1)}), flush=True)
    finally:
        cluster.stop_all()


if __name__ == "__main__":
    main()
