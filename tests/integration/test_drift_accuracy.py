#!/usr/bin/env python3
"""Drift accuracy for every kind of distribution, through the real pipeline, against scipy on
the raw values.

A reference sample per feature (normal, lognormal, uniform that turns beta, exponential, a
constant, negatives with a mass of zeros, and a feature whose values all leave the reference
range; two categorical features with unseen categories) makes the profile (format 2, built here
with numpy from the raw values). A Python model server (the ctypes binding of libmodelwatch)
then sends drifted events through a real agent, devkafka and the aggregator, for:

  acc    every payload shipped: PSI and JS on the 10 decile regions plus below- and above-range
         regions within 1 % relative, KS D within 0.01 of ks_2samp, Wasserstein within 2 %
         relative or 0.01 reference standard deviations (whichever is larger), chi-squared p and
         unseen share within 1e-6, out-of-range shares exact; verdicts;
  acc10  payloads sampled at 10 %: the same statistics on the records shipped, and test sample
         sizes equal to the records shipped (not their weights): chi-squared p within 1e-6 of
         scipy's on those records, the KS p-value that of the Kolmogorov distribution at a D
         within the stated 0.01;
  few    50 events, under drift.min_values: insufficient_data, never none;
  late   traffic sent before its model had any profile: the profile pushed afterwards reads the
         window through the profile-independent sketch, within the accuracy signals_drift.h
         states, with the same verdicts as the grid gives for the same distributions;
and a profile corrected after the traffic: by default the window has no sketch (a profile was in
force) and says unknown rather than another grid's numbers; with drift.sketch_always numeric
features are read through the sketch (basis "sketch") and categorical ones say unknown; the
original profile pushed again reads the grid's numbers again.
"""
import json
import os
import sys
import time

import numpy as np

from drift_oracle import (categorical_profile, close, expected_categorical, expected_numeric,
                          ks_p_value, numeric_profile, profile_document, unit)
from harness import TestFailure, api_data, metrics, run, wait_for
from harness import http_put_json as put

BUILD_DIR = os.path.abspath(os.environ.get("MW_BUILD_DIR") or
                            (sys.argv[1] if len(sys.argv) > 1 else "build"))
os.environ["MODELWATCH_LIB"] = os.path.join(BUILD_DIR, "agent", "client", "libmodelwatch.so")
sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "..", "agent", "client", "python")))
import modelwatch  # noqa: E402

REF_N = 20_000
EVENTS = 5_000
FEW = 50
COUNTRY_REF = {"fr": 0.4, "de": 0.3, "us": 0.25}  # other: 0.05
PLAN_REF = {"basic": 0.5, "pro": 0.5}  # other: 0: an unseen plan is impossible


def reference_samples(rng):
    zeros = rng.random(REF_N) < 0.3
    return {
        "normal": rng.normal(10, 2, REF_N),
        "lognormal": rng.lognormal(0, 1, REF_N),
        "beta": rng.uniform(0, 1, REF_N),
        "expo": rng.exponential(1.0, REF_N),
        "const": np.full(REF_N, 5.0),
        "negzero": np.where(zeros, 0.0, np.round(rng.normal(-2, 3, REF_N), 1)),
        "outside": rng.uniform(0, 10, REF_N),
    }


def window_samples(rng, n):
    zeros = rng.random(n) < 0.4
    return {
        "normal": rng.normal(10.6, 2.4, n),
        "lognormal": rng.lognormal(0.15, 1.1, n),
        "beta": rng.beta(2, 5, n),
        "expo": rng.exponential(1.3, n),
        "const": np.full(n, 5.0),
        "negzero": np.where(zeros, 0.0, np.round(rng.normal(-1, 3, n), 1)),
        "outside": rng.uniform(20, 30, n),
        "country": rng.choice(["fr", "de", "us", "jp", "br"], n, p=[0.35, 0.3, 0.25, 0.06, 0.04]),
        "plan": rng.choice(["basic", "pro", "gold"], n, p=[0.45, 0.45, 0.1]),
    }


NUMERIC = ["normal", "lognormal", "beta", "expo", "const", "negzero", "outside"]
CATEGORICAL = ["country", "plan"]


def profile_for(model, refs):
    features = {name: numeric_profile(refs[name]) for name in NUMERIC}
    features["country"] = categorical_profile(COUNTRY_REF, 0.05, REF_N)
    features["plan"] = categorical_profile(PLAN_REF, 0.0, REF_N)
    return profile_document(model, "v1", features, REF_N)


def send(client, model, window, start_ms):
    """Every event of `window`, retried while the connection forms (a False is a drop: the
    event never left, so a retry cannot duplicate it)."""
    n = len(window["normal"])
    for i in range(n):
        features = {name: float(window[name][i]) for name in NUMERIC}
        features.update({name: str(window[name][i]) for name in CATEGORICAL})
        pid = f"{model}-{i}"
        deadline = time.monotonic() + 30
        while not client.capture(model, pid, version="v1", latency_us=1000 + i % 97,
                                 event_time_ms=start_ms + i % 50_000, features=features):
            if time.monotonic() > deadline:
                raise TestFailure(f"{model}: event {i} still dropped after 30 s")
            time.sleep(0.001)
    return n


def get_drift(port, model, start_ms):
    doc = api_data(port, f"/api/v1/models/{model}/drift?version=v1&window={start_ms}")
    return doc, {f["feature"]: f for f in doc["features"]}


def within(got, want, rel, abs_):
    return got is not None and abs(got - want) <= max(abs_, rel * abs(want))


def check_numeric(tap, model, name, got, want, std, observed):
    tap.check(close(got["psi"], want["psi"], rel=0.01), f"{model} {name}: PSI on 10+2 regions",
              f"got {got['psi']!r} want {want['psi']!r}")
    tap.check(close(got["js_distance"], want["js_distance"], rel=0.01, abs_=1e-9),
              f"{model} {name}: JS distance on 10+2 regions",
              f"got {got['js_distance']!r} want {want['js_distance']!r}")
    tap.check(within(got["ks"], want["ks"], 0, 0.01), f"{model} {name}: KS D within 0.01",
              f"got {got['ks']!r} want {want['ks']!r}")
    tap.check(within(got["wasserstein"], want["wasserstein"], 0.02, 0.01 * std),
              f"{model} {name}: Wasserstein within 2 % or 0.01 sd",
              f"got {got['wasserstein']!r} want {want['wasserstein']!r} (sd {std!r})")
    if want["wasserstein_normed"] is None:
        tap.check(got["wasserstein_normed"] is None, f"{model} {name}: no normed Wasserstein "
                  "for a reference without spread", repr(got["wasserstein_normed"]))
    else:
        tap.check(within(got["wasserstein_normed"], want["wasserstein_normed"], 0.02, 0.01),
                  f"{model} {name}: normed Wasserstein",
                  f"got {got['wasserstein_normed']!r} want {want['wasserstein_normed']!r}")
    for stat in ("below_range_rate", "above_range_rate", "out_of_range_rate"):
        tap.check(close(got[stat], want[stat]), f"{model} {name}: {stat} exact",
                  f"got {got[stat]!r} want {want[stat]!r}")
    tap.check(got["observed"] == observed and
              close(got["weighted_count"], want["weighted_count"]),
              f"{model} {name}: observed {observed}, weighted count {want['weighted_count']}",
              f"observed {got['observed']!r} weighted_count {got['weighted_count']!r}")


def check_categorical(tap, model, name, got, want, observed):
    for stat in ("psi", "js_distance"):
        tap.check(close(got[stat], want[stat], rel=0.01, abs_=1e-9),
                  f"{model} {name}: categorical {stat}", f"got {got[stat]!r} want {want[stat]!r}")
    tap.check(within(got["unseen_share"], want["unseen_share"], 0, 1e-6),
              f"{model} {name}: unseen share", f"got {got['unseen_share']!r} "
              f"want {want['unseen_share']!r}")
    tap.check(within(got["chi2_p_value"], want["chi2_p_value"], 0, 1e-6),
              f"{model} {name}: chi-squared p-value on the values observed",
              f"got {got['chi2_p_value']!r} want {want['chi2_p_value']!r}")
    tap.check(got["chi2_statistic"] == want["chi2_statistic"] if want["chi2_statistic"] == "inf"
              else within(got["chi2_statistic"], want["chi2_statistic"], 1e-6, 1e-6),
              f"{model} {name}: chi-squared statistic",
              f"got {got['chi2_statistic']!r} want {want['chi2_statistic']!r}")
    tap.check(got["observed"] == observed, f"{model} {name}: observed {observed}",
              repr(got["observed"]))


def check_model(tap, port, model, refs, profile, window, shipped, weight, start_ms):
    doc, drift = get_drift(port, model, start_ms)
    weights = np.full(len(shipped), weight)
    for name in NUMERIC:
        cur = window[name][shipped]
        want = expected_numeric(refs[name], profile["features"][name], cur, weights)
        check_numeric(tap, model, name, drift[name], want, profile["features"][name]["std"],
                      len(shipped))
        # The test's sample size is the values observed: the p-value of a D within 0.01 of
        # scipy's, at n = records shipped, never at their weighted count.
        lo = ks_p_value(want["ks"] + 0.01, REF_N, len(shipped))
        hi = ks_p_value(max(want["ks"] - 0.01, 0), REF_N, len(shipped))
        got = drift[name]["ks_p_value"]
        tap.check(got is not None and lo - 1e-12 <= got <= hi + 1e-12,
                  f"{model} {name}: KS p-value at the observed sample size",
                  f"got {got!r}, expected within [{lo!r}, {hi!r}]")
    for name in CATEGORICAL:
        values = [str(v) for v in window[name][shipped]]
        want = expected_categorical(profile["features"][name], values, weights)
        check_categorical(tap, model, name, drift[name], want, len(shipped))
    return doc, drift


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    rules = "".join(f"  - name: {m}\n    sample_rate: {r}\n    keep_errors: false\n"
                    f"    max_events_per_second: 0\n"
                    for m, r in (("acc", 1.0), ("acc10", 0.1), ("few", 1.0), ("late", 1.0),
                                 ("always", 1.0)))
    agent = cluster.start_agent(extra="models:\n" + rules)
    rng = np.random.default_rng(2026)
    refs = reference_samples(rng)
    profiles = {m: profile_for(m, refs) for m in ("acc", "acc10", "few")}
    for m, doc in profiles.items():
        tap.check(put(agg.http_port, f"/api/v1/models/{m}/profiles/v1", doc) == 200,
                  f"{m}: profile pushed")
    windows = {"acc": window_samples(rng, EVENTS), "acc10": window_samples(rng, EVENTS),
               "few": window_samples(rng, FEW), "late": window_samples(rng, EVENTS)}
    start_ms = (int(time.time() * 1000) // 3_600_000 - 3) * 3_600_000
    total = 0
    with modelwatch.Client(agent.endpoint) as client:
        for m, window in windows.items():
            total += send(client, m, window, start_ms)
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == total, 90, "the aggregator to apply every batch")

    every = np.arange(EVENTS)
    doc, drift = check_model(tap, agg.http_port, "acc", refs, profiles["acc"], windows["acc"],
                             every, 1.0, start_ms)
    for name in ["normal", "lognormal", "beta", "expo", "negzero", "outside", "plan"]:
        tap.check(drift[name]["verdict"] == "drift", f"acc {name}: verdict drift",
                  json.dumps(drift[name]))
    tap.check(drift["const"]["verdict"] == "none" and drift["const"]["psi"] == 0 and
              drift["const"]["ks"] == 0 and drift["const"]["wasserstein"] == 0,
              "acc const: an unchanged constant is no drift", json.dumps(drift["const"]))
    tap.check(drift["outside"]["above_range_rate"] == 1.0 and
              drift["outside"]["js_distance"] == 1.0,
              "acc outside: every value above the range is disjoint (JS 1)",
              json.dumps(drift["outside"]))
    tap.check(doc["verdict"] == "drift", "acc: the model has drifted", doc["verdict"])

    shipped = np.array([i for i in range(EVENTS) if unit(f"acc10-{i}") < 0.1])
    check_model(tap, agg.http_port, "acc10", refs, profiles["acc10"], windows["acc10"], shipped,
                10.0, start_ms)

    doc, drift = get_drift(agg.http_port, "few", start_ms)
    tap.check(all(f["verdict"] == "insufficient_data" and f["observed"] == FEW and
                  f["min_values"] == 100 for f in drift.values()) and
              doc["verdict"] == "insufficient_data",
              "few: 50 values under min_values 100 is insufficient_data, never none",
              json.dumps({n: (f["verdict"], f["observed"]) for n, f in drift.items()}))

    # A profile pushed after the traffic reads the window through the sketch.
    late_profile = profile_for("late", refs)
    tap.check(put(agg.http_port, "/api/v1/models/late/profiles/v1", late_profile) == 200,
              "late: profile pushed after the traffic")
    doc, drift = get_drift(agg.http_port, "late", start_ms)
    _, grid = get_drift(agg.http_port, "acc", start_ms)
    for name in NUMERIC:
        check_sketch(tap, "late", name, drift[name], refs[name], late_profile["features"][name],
                     windows["late"][name])
        tap.check(drift[name]["verdict"] == grid[name]["verdict"],
                  f"late {name}: the sketch's verdict is the grid's for the same distribution",
                  f"{drift[name]['verdict']} vs {grid[name]['verdict']}")
    tap.check(all(drift[n]["verdict"] == "unknown" and drift[n]["basis"] is None
                  for n in CATEGORICAL),
              "late: categorical features have no sketch: unknown",
              json.dumps({n: drift[n]["verdict"] for n in CATEGORICAL}))
    tap.check(doc["verdict"] == "drift", "late: the model has drifted", doc["verdict"])

    # A profile corrected after the traffic: the window was binned on the old grid and, by
    # default, has no sketch (a profile was in force): unknown, never another grid's numbers.
    corrected_refs = reference_samples(np.random.default_rng(7))
    put(agg.http_port, "/api/v1/models/acc/profiles/v1", profile_for("acc", corrected_refs))
    doc, drift = get_drift(agg.http_port, "acc", start_ms)
    tap.check(all(f["verdict"] == "unknown" and f["psi"] is None for f in drift.values()) and
              doc["verdict"] == "unknown",
              "a profile corrected after the traffic reads unknown without drift.sketch_always",
              json.dumps({n: (f["verdict"], f["psi"]) for n, f in drift.items()}))
    put(agg.http_port, "/api/v1/models/acc/profiles/v1", profiles["acc"])
    doc2, drift2 = get_drift(agg.http_port, "acc", start_ms)
    tap.check(drift2["normal"]["basis"] == "profile_grid" and doc2["verdict"] == "drift",
              "the original profile pushed again reads the grid again",
              json.dumps(drift2["normal"]))

    # With drift.sketch_always, a replica sketches even under a profile: a corrected profile
    # reads numeric features through the sketch.
    cluster.stop(agg)
    agg = cluster.start_aggregator(name="aggregator-sketch",
                                   extra="drift:\n  sketch_always: true\n")
    profiles["always"] = profile_for("always", refs)
    put(agg.http_port, "/api/v1/models/always/profiles/v1", profiles["always"])
    window = window_samples(rng, EVENTS)
    with modelwatch.Client(agent.endpoint) as client:
        total += send(client, "always", window, start_ms)
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == EVENTS, 90, "the restarted aggregator to apply the new model's batches")
    corrected = profile_for("always", corrected_refs)
    put(agg.http_port, "/api/v1/models/always/profiles/v1", corrected)
    doc, drift = get_drift(agg.http_port, "always", start_ms)
    for name in NUMERIC:
        check_sketch(tap, "always corrected", name, drift[name], corrected_refs[name],
                     corrected["features"][name], window[name])
    tap.check(all(drift[n]["verdict"] == "unknown" and drift[n]["psi"] is None
                  for n in CATEGORICAL),
              "a corrected profile: categorical features have no sketch and say unknown",
              json.dumps({n: (drift[n]["verdict"], drift[n]["psi"]) for n in CATEGORICAL}))


def check_sketch(tap, model, name, got, ref, entry, values):
    """The accuracy signals_drift.h states for a window read through the sketch."""
    want = expected_numeric(ref, entry, values)
    tap.check(got["basis"] == "sketch" and got["observed"] == len(values),
              f"{model} {name}: read through the sketch, {len(values)} values observed",
              f"basis {got['basis']!r} observed {got['observed']!r}")
    for stat in ("psi", "js_distance"):
        tap.check(within(got[stat], want[stat], 0.05, 0.005),
                  f"{model} {name}: sketch {stat} within 5 % or 0.005",
                  f"got {got[stat]!r} want {want[stat]!r}")
    tap.check(within(got["ks"], want["ks"], 0, 0.02), f"{model} {name}: sketch KS D within 0.02",
              f"got {got['ks']!r} want {want['ks']!r}")
    bound = 0.01 * float(np.mean(np.abs(values))) + 0.01 * entry["std"]
    tap.check(within(got["wasserstein"], want["wasserstein"], 0, bound),
              f"{model} {name}: sketch Wasserstein within 1 % of mean |x| + 0.01 sd",
              f"got {got['wasserstein']!r} want {want['wasserstein']!r} bound {bound!r}")


if __name__ == "__main__":
    run(main)
