#!/usr/bin/env python3
"""Drift end to end, against scipy on the same data.

A reference profile is computed here with numpy from reference data and pushed through the
aggregator's API. A synthetic model then sends 6,000 events whose numeric features are shifted,
through a real agent sampling payloads at 50 % (deterministically, by a hash of the prediction
id), to the aggregator. The test knows every event sent (loadgen --dump-csv) and which ones the
agent kept (the same hash, reimplemented here), so it computes every drift statistic with
numpy/scipy from the raw values kept and their weights, and compares within the accuracy the
aggregator states (signals_drift.h; test_drift_accuracy.py covers every kind of distribution).
Counts, weights, latency percentiles, per-feature thresholds and /metrics are checked too.
"""
import csv
import json
import os
import time

import numpy as np
from drift_oracle import (categorical_profile, close, expected_categorical, expected_numeric,
                          ks_p_value, numeric_profile, profile_document, unit)
from harness import api_data, metrics, run, wait_for
from harness import http_put_json as put

EVENTS = 6_000
RATE = 0.5
NUMERIC = [f"f{k}" for k in range(10)]
REF_CATEGORIES = {"fr": 0.4, "de": 0.35, "us": 0.25}  # jp and br are unseen on purpose


def reference_profile():
    """The profile (built here with numpy from raw values) and the raw reference samples."""
    rng = np.random.default_rng(7)
    features, samples = {}, {}
    for k, name in enumerate(NUMERIC):
        samples[name] = rng.uniform(0, 100, 20000) + k
        features[name] = numeric_profile(samples[name])
    features["country"] = categorical_profile(REF_CATEGORIES, 0.0, 20000)
    return profile_document("churn", "v1", features, 20000), samples


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    # f1's own thresholds are set so that nothing can flag it: the override must win.
    # Drift on the fine windows: /metrics exports the latest closed one's within seconds.
    agg = cluster.start_aggregator(extra="slo:\n  latency_threshold: 3ms\n"
                                         "drift:\n  windows: fine\n"
                                         "drift_features:\n  - feature: f1\n"
                                         "    psi_possible: 100\n    psi_drift: 100\n"
                                         "    js: 1\n    wasserstein: 1000\n    p_value: 0\n")
    agent = cluster.start_agent(extra=f'models:\n  - name: churn\n    sample_rate: {RATE}\n'
                                      '    keep_errors: false\n')
    profile, ref_samples = reference_profile()
    tap.check(put(agg.http_port, "/api/v1/models/churn/profiles/v1", profile) == 200,
              "profile pushed through the API")
    versions = api_data(agg.http_port, "/api/v1/models/churn/profiles")["versions"]
    tap.check(versions == ["v1"], "profile listed", versions)

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
    window = api_data(agg.http_port,
                      f"/api/v1/models/churn/windows?from={start_ms}&to={start_ms}")["windows"][0]
    tap.check(window["count"] == EVENTS, "exact count whatever the sampling",
              json.dumps(window)[:300])
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

    drift_doc = api_data(agg.http_port, f"/api/v1/models/churn/drift?version=v1&window={start_ms}")
    drift = {f["feature"]: f for f in drift_doc["features"]}
    weights = np.full(len(kept), weight)
    for name in NUMERIC:
        values = np.array([float(r[name]) for r in kept])
        f = profile["features"][name]
        want = expected_numeric(ref_samples[name], f, values, weights)
        got = drift[name]
        for stat in ("psi", "js_distance", "out_of_range_rate", "weighted_count"):
            tap.check(close(got[stat], want[stat], rel=0.01, abs_=1e-9),
                      f"{name} {stat} matches scipy on the raw values",
                      f"got {got[stat]!r} want {want[stat]!r}")
        tap.check(abs(got["ks"] - want["ks"]) <= 0.01, f"{name} KS D within 0.01 of ks_2samp",
                  f"got {got['ks']!r} want {want['ks']!r}")
        tap.check(abs(got["wasserstein"] - want["wasserstein"]) <=
                  max(0.02 * want["wasserstein"], 0.01 * f["std"]),
                  f"{name} Wasserstein within 2 % or 0.01 sd of scipy's",
                  f"got {got['wasserstein']!r} want {want['wasserstein']!r}")
        tap.check(got["observed"] == len(kept), f"{name}: the test's sample is the records kept")
        want_p = ks_p_value(got["ks"], f["count"], len(kept))
        tap.check(close(got["ks_p_value"], want_p, rel=1e-9, abs_=1e-10),
                  f"{name} KS p-value: the Kolmogorov distribution at the observed size",
                  f"{got['ks_p_value']!r} vs {want_p!r}")
    want = expected_categorical(profile["features"]["country"], [r["country"] for r in kept],
                                weights)
    got = drift["country"]
    for stat in ("psi", "js_distance", "unseen_share", "weighted_count"):
        tap.check(close(got[stat], want[stat]), f"country {stat} equals the oracle",
                  f"got {got[stat]!r} want {want[stat]!r}")
    tap.check(got["chi2_p_value"] == 0.0 and got["chi2_statistic"] == "inf",
              "unseen categories with a zero reference share make chi-squared infinite",
              json.dumps(got))
    tap.check(drift["f0"]["psi"] > 0.2, "a 20-point shift is flagged as drift (PSI > 0.2)")
    tap.check(drift["f1"]["verdict"] == "none" and drift["f1"]["psi"] > 0.2,
              "a feature's own thresholds override the global ones", json.dumps(drift["f1"]))
    tap.check(all(drift[n]["verdict"] == "drift" for n in NUMERIC if n != "f1") and
              drift["country"]["verdict"] == "drift" and
              drift_doc["verdict"] == "drift",
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
