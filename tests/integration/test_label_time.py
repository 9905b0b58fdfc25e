#!/usr/bin/env python3
"""Labels with their own event time, a binary threshold per model, and models that expect no
labels: Python client -> agent -> Kafka -> aggregator -> Redis -> API.

A binary classifier "churn" (threshold 0.7 in the aggregator's config; some predictions name
their class) sends 200 predictions ten minutes in the past; each label says when its ground
truth became known (prediction time + 1..50 s), through the binding's event_time_ms, so label
delay must be exactly those delays, not the moment the label was sent. A model outside
labels.models ("clicks") sends predictions and labels too: nothing of it waits or joins.

Tolerances: counts and the mean delay exact (sums of integers); the median delay within the
delay histogram's 1 %; accuracy, precision and recall 1e-12 (ratios of the same integers).
"""
import json
import os
import sys
import time

from harness import TestFailure, api_data, run, wait_for

BUILD_DIR = os.path.abspath(os.environ.get("MW_BUILD_DIR") or
                            (sys.argv[1] if len(sys.argv) > 1 else "build"))
LIB_PATH = os.path.join(BUILD_DIR, "agent", "client", "libmodelwatch.so")
PY_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                       "agent", "client", "python"))
os.environ["MODELWATCH_LIB"] = LIB_PATH
sys.path.insert(0, PY_DIR)

N = 200
THRESHOLD = 0.7


def send(call, what):
    deadline = time.monotonic() + 30
    while not call():  # False: dropped before the connection formed, never sent
        if time.monotonic() > deadline:
            raise TestFailure(f"{what}: still dropped after 30 s")
        time.sleep(0.001)


def binary(text):
    return {"1": 1, "0": 0}.get(text)


def main(tap, cluster):
    import modelwatch

    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=f"""labels:
  models: [churn]
  binary_thresholds:
    - model: "ch*"
      threshold: {THRESHOLD}
""")
    agent = cluster.start_agent()
    start_ms = (int(time.time() * 1000) // 60000 - 10) * 60000
    delays, pairs = [], []
    with modelwatch.Client(agent.endpoint) as mw:
        for i in range(N):
            t = start_ms + 100 * i
            score = ((i * 37) % 100) / 100
            cls = ("1" if score >= 0.5 else "0") if i % 4 == 0 else None
            label = "1" if (i * 7) % 3 else "0"
            delay = 1000 * (1 + i % 50)
            send(lambda: mw.capture("churn", f"c-{i}", version="v1", event_time_ms=t,
                                    score=score, predicted_class=cls), "capture")
            send(lambda: mw.feedback("churn", f"c-{i}", label, version="v1",
                                     event_time_ms=t + delay), "feedback")
            send(lambda: mw.capture("clicks", f"k-{i}", version="v1", event_time_ms=t,
                                    score=score), "capture")
            send(lambda: mw.feedback("clicks", f"k-{i}", label, version="v1",
                                     event_time_ms=t + delay), "feedback")
            delays.append(delay)
            predicted = binary(cls) if cls is not None else int(score >= THRESHOLD)
            pairs.append((predicted, int(label)))

    def window(model):
        ws = api_data(agg.http_port,
                      f"/api/v1/models/{model}/windows?from={start_ms}&to={start_ms}")["windows"]
        ws = [w for w in ws if w["version"] == "v1"]
        return ws[0] if ws else None
    wait_for(lambda: (window("churn") or {}).get("performance", {}).get("labels", {})
             .get("labelled") == N, 60, "every label to join its prediction")
    wait_for(lambda: (window("clicks") or {}).get("count") == N, 60, "clicks' window")
    perf = window("churn")["performance"]
    lab = perf["labels"]
    want_mean = sum(delays) / N
    tap.check(abs(lab["mean_delay_ms"] - want_mean) <= 1e-9 * want_mean,
              "mean label delay is measured from the labels' own event times",
              f"got {lab['mean_delay_ms']!r} want {want_mean!r}")
    median = sorted(delays)[(N + 1) // 2 - 1]
    tap.check(abs(lab["p50_delay_ms"] - median) <= 0.01 * median,
              "median label delay within the histogram's 1 %",
              f"got {lab['p50_delay_ms']!r} want {median}")
    b = perf["binary"]
    tp = sum(p == 1 and y == 1 for p, y in pairs)
    fp = sum(p == 1 and y == 0 for p, y in pairs)
    fn = sum(p == 0 and y == 1 for p, y in pairs)
    tn = N - tp - fp - fn
    tap.check(b["n"] == N and abs(b["accuracy"] - (tp + tn) / N) <= 1e-12 and
              abs(b["precision"] - tp / (tp + fp)) <= 1e-12 and
              abs(b["recall"] - tp / (tp + fn)) <= 1e-12,
              f"binary metrics at the model's threshold {THRESHOLD}, named classes deciding",
              f"{b} vs tp={tp} fp={fp} fn={fn} tn={tn}")
    m = perf["multiclass"]
    named = [(p, y) for i, (p, y) in enumerate(pairs) if i % 4 == 0]
    tap.check(m["n"] == len(named) and
              abs(m["accuracy"] - sum(p == y for p, y in named) / len(named)) <= 1e-12,
              "the multi-class view of the named classes agrees", json.dumps(m))
    clicks = window("clicks")["performance"]
    tap.check(clicks["labels"]["labelled"] == 0 and clicks["labels"]["coverage"] is None and
              clicks["binary"] is None,
              "a model outside labels.models joins nothing and claims no coverage",
              json.dumps(clicks))
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
