#!/usr/bin/env python3
"""Drift end to end, against scipy on the same data.

A reference profile is computed here with numpy from reference data and pushed through the
aggregator's API. A synthetic model then sends 6,000 events whose numeric features are shifted,
through a real agent sampling payloads at 50 % (deterministically, by a hash of the prediction
id), to the aggregator. The test knows every event sent (loadgen --dump-csv) and which ones the
agent kept (the same hash, reimplemented here), so it computes every drift statistic with
numpy/scipy on exactly the weighted counts the aggregator should hold, and compares.

Tolerances: the aggregator computes in double precision from the same integer counts, so the
statistics agree to ~1e-12; 1e-9 relative (1e-12 absolute near zero) leaves room for summation
order and no room for a wrong formula.
"""
import csv
import json
import math
import os
import time
import urllib.request

import numpy as np
from scipy import stats
from scipy.spatial import distance

from harness import TestFailure, http_get, metrics, run, wait_for

EVENTS = 6_000
RATE = 0.5
NUMERIC = [f"f{k}" for k in range(10)]
REF_CATEGORIES = {"fr": 0.4, "de": 0.35, "us": 0.25}  # jp and br are unseen on purpose
EPS = 1e-4  # PSI floor, as documented in aggregator/drift.h


def unit(prediction_id):
    """mw_sampler_unit: FNV-1a 64 + splitmix64 finalizer, top 53 bits / 2^53."""
    mask = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in prediction_id.encode():
        h = ((h ^ b) * 0x100000001b3) & mask
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & mask
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & mask
    h ^= h >> 31
    return (h >> 11) / float(1 << 53)


def reference_profile():
    rng = np.random.default_rng(7)
    features = {}
    for k, name in enumerate(NUMERIC):
        values = rng.uniform(0, 100, 20000) + k
        edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
        regions = np.searchsorted(edges, values, side="right")
        props = np.bincount(regions, minlength=len(edges) + 1) / len(values)
        features[name] = {"type": "numeric", "count": len(values), "missing": 0,
                          "min": float(values.min()), "max": float(values.max()),
                          "mean": float(values.mean()), "std": float(values.std()),
                          "edges": edges.tolist(), "proportions": props.tolist()}
    features["country"] = {"type": "categorical", "count": 20000, "missing": 0,
                           "categories": REF_CATEGORIES, "other": 0.0}
    return {"model": "churn", "version": "v1", "created_ms": 1, "rows": 20000,
            "features": features}


def put(port, path, doc):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PUT",
                                 data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def close(got, want, rel=1e-9, abs_=1e-12):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got is not None and abs(got - want) <= max(abs_, rel * abs(want))


def expected_numeric(f, values, weight):
    edges = np.array(f["edges"])
    counts = np.bincount(np.searchsorted(edges, values, side="right"),
                         minlength=len(edges) + 1) * weight
    ref = np.array(f["proportions"])
    cur = counts / counts.sum()
    r, c = np.maximum(ref, EPS), np.maximum(cur, EPS)
    mids = [min(f["min"], edges[0])] + list((edges[:-1] + edges[1:]) / 2) + \
        [max(f["max"], edges[-1])]
    oor = float(((values < f["min"]) | (values > f["max"])).sum())
    ks = float(np.max(np.abs(np.cumsum(ref) - np.cumsum(cur))))
    n_ref, n_cur = f["count"], float(counts.sum())
    wd = float(stats.wasserstein_distance(mids, mids, ref, counts))
    return {"psi": float(np.sum((c - r) * np.log(c / r))),
            "js_distance": float(distance.jensenshannon(ref, cur, base=2)),
            "ks": ks,
            "ks_p_value": float(stats.kstwobign.sf(math.sqrt(n_ref * n_cur / (n_ref + n_cur))
                                                   * ks)),
            "wasserstein": wd, "wasserstein_normed": wd / f["std"],
            "out_of_range_rate": oor / len(values), "count": n_cur}


def expected_categorical(f, values, weight):
    cats = sorted(f["categories"])
    counts = np.array([sum(v == c for v in values) for c in cats] +
                      [sum(v not in f["categories"] for v in values)], dtype=float) * weight
    ref = np.array([f["categories"][c] for c in cats] + [f["other"]])
    cur = counts / counts.sum()
    r, c = np.maximum(ref, EPS), np.maximum(cur, EPS)
    return {"psi": float(np.sum((c - r) * np.log(c / r))),
            "js_distance": float(distance.jensenshannon(ref, cur, base=2)),
            "unseen_share": float(counts[-1] / counts.sum()), "count": float(counts.sum())}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    # f1's own thresholds are set so that nothing can flag it: the override must win.
    agg = cluster.start_aggregator(extra="slo:\n  latency_threshold: 3ms\n"
                                         "drift_features:\n  - feature: f1\n"
                                         "    psi_possible: 100\n    psi_drift: 100\n"
                                         "    js: 1\n    wasserstein: 1000\n    p_value: 0\n")
    agent = cluster.start_agent(extra=f'models:\n  - name: churn\n    sample_rate: {RATE}\n'
                                      '    keep_errors: false\n')
    profile = reference_profile()
    tap.check(put(agg.http_port, "/api/v1/models/churn/profiles/v1", profile) == 200,
              "profile pushed through the API")
    status, body = http_get(agg.http_port, "/api/v1/models/churn/profiles")
    tap.check(status == 200 and json.loads(body)["versions"] == ["v1"], "profile listed", body)

    start_ms = (int(time.time() * 1000) // 60000 - 10) * 60000
    dump = os.path.join(cluster.dir, "sent.csv")
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS, start_ms=start_ms,
                           extra=["--shift", "20", "--dump-csv", dump])
    tap.check(sent["sent"] == EVENTS, "loadgen sent every event")
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == EVENTS, 60, "the aggregator to apply every batch")

    with open(dump) as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if unit(r["prediction_id"]) < RATE]
    weight = 1.0 / RATE
    status, body = http_get(agg.http_port, f"/api/v1/models/churn/windows?from={start_ms}"
                                          f"&to={start_ms}")
    window = json.loads(body)["windows"][0]
    tap.check(window["count"] == EVENTS, "exact count whatever the sampling", body[:300])
    tap.check(window["records"] == len(kept), "the agent kept exactly the hash-selected records",
              f"records={window['records']} expected={len(kept)}")
    tap.check(window["weighted_records"] == len(kept) * weight, "weights are 1 / rate")
    # Latency percentiles come from the exact log-bucketed histograms of all 6,000 events:
    # nearest-rank quantiles within the histogram's stated 1 % relative error.
    latencies = np.array([float(r["latency_us"]) for r in rows])
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        want = float(np.quantile(latencies, q, method="inverted_cdf"))
        got = window["latency_us"][name]
        tap.check(abs(got - want) <= 0.01 * want, f"latency {name} within 1 % of numpy's",
                  f"got {got!r} want {want!r}")
    # Latency objective: whole histogram buckets up to 3 ms, so the attainment lies between the
    # share of events within 3 ms / gamma and within 3 ms (gamma = 1.01 / 0.99).
    got = window["slo"]["latency_attainment"]
    low = float(np.mean(latencies <= 3000 / (1.01 / 0.99)))
    high = float(np.mean(latencies <= 3000))
    tap.check(low <= got <= high and 0.05 < got < 0.95,
              "latency SLO attainment matches the events within the histogram's resolution",
              f"got {got!r}, expected within [{low!r}, {high!r}]")
    tap.check(window["slo"]["latency_met"] == (got >= 0.99), "latency objective verdict")

    status, body = http_get(agg.http_port, f"/api/v1/models/churn/drift?version=v1"
                                          f"&window={start_ms}")
    if status != 200:
        raise TestFailure(f"drift API answered {status}: {body}")
    drift = {f["feature"]: f for f in json.loads(body)["features"]}
    for name in NUMERIC:
        values = np.array([float(r[name]) for r in kept])
        want = expected_numeric(profile["features"][name], values, weight)
        got = drift[name]
        for stat in ("psi", "js_distance", "ks", "wasserstein", "wasserstein_normed",
                     "out_of_range_rate", "count"):
            tap.check(close(got[stat], want[stat]), f"{name} {stat} equals the oracle",
                      f"got {got[stat]!r} want {want[stat]!r}")
    want = expected_categorical(profile["features"]["country"], [r["country"] for r in kept],
                                weight)
    got = drift["country"]
    for stat in ("psi", "js_distance", "unseen_share", "count"):
        tap.check(close(got[stat], want[stat]), f"country {stat} equals the oracle",
                  f"got {got[stat]!r} want {want[stat]!r}")
    tap.check(got["chi2_p_value"] == 0.0 and got["chi2_statistic"] == "inf",
              "unseen categories with a zero reference share make chi-squared infinite",
              json.dumps(got))
    tap.check(drift["f0"]["psi"] > 0.2, "a 20-point shift is flagged as drift (PSI > 0.2)")
    # KS p-value: scipy's Kolmogorov distribution at the same statistic; 1e-10 absolute (the
    # series is cut where its terms fall below that).
    for name in NUMERIC:
        values = np.array([float(r[name]) for r in kept])
        want = expected_numeric(profile["features"][name], values, weight)["ks_p_value"]
        tap.check(abs(drift[name]["ks_p_value"] - want) <= 1e-10,
                  f"{name} KS p-value equals scipy's kstwobign", f"{drift[name]['ks_p_value']!r}"
                  f" vs {want!r}")
    tap.check(drift["f1"]["verdict"] == "none" and drift["f1"]["psi"] > 0.2,
              "a feature's own thresholds override the global ones", json.dumps(drift["f1"]))
    tap.check(all(drift[n]["verdict"] == "drift" for n in NUMERIC if n != "f1") and
              drift["country"]["verdict"] == "drift" and
              json.loads(body)["verdict"] == "drift",
              "verdicts: every shifted feature and the model have drifted",
              json.dumps({n: drift[n]["verdict"] for n in drift}))

    # /metrics exports the latest closed window's signals as gauges (refreshed every second
    # in this test's configuration): the window above is closed, the watermark being far past.
    def exported():
        m = metrics(agg.http_port)
        return m.get('modelwatch_model_drift_psi{model="churn",version="v1",feature="f0"}')
    wait_for(lambda: exported() is not None, 30, "the drift gauges on /metrics")
    tap.check(close(exported(), drift["f0"]["psi"]), "/metrics exports the window's PSI per feature",
              f"{exported()} vs {drift['f0']['psi']}")
    m = metrics(agg.http_port)
    tap.check(m.get('modelwatch_model_requests{model="churn",version="v1"}') == EVENTS,
              "/metrics exports the window's request count")
    tap.check(close(m.get('modelwatch_model_latency_attainment{model="churn",version="v1"}'),
                    window["slo"]["latency_attainment"]),
              "/metrics exports the window's latency attainment")


if __name__ == "__main__":
    run(main)
