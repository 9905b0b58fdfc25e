#!/usr/bin/env python3
"""Model performance from delayed labels, end to end, against scikit-learn.

A synthetic binary classifier sends 8,000 predictions through a real agent sampling payloads at
50 %; ground-truth labels follow for 60 % of them (one in ten arriving before its prediction,
the rest after every prediction). The agent keeps a label exactly when it keeps its prediction
(same hash), the aggregator joins them in Redis, and the API's metrics for the window must equal
scikit-learn's on exactly the joined pairs, which the test reconstructs from what it sent.

Tolerances: counts exact; accuracy/precision/recall/F1 1e-12 (ratios of the same integers);
log loss 1e-12 relative (sums of the same terms in another order); ROC AUC within half the
share of positive-negative pairs that share one of the 1000 score bins (the aggregator ranks
binned scores; see aggregator/perf_metrics.h), plus 1e-12.
"""
import csv
import json
import os
import time

import numpy as np
from sklearn import metrics as skm

from harness import api_data, run, wait_for
from drift_oracle import unit

EVENTS = 8_000
RATE = 0.5
LABELS = 0.6


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    # Errors are always kept: they ship without their labels (the rate did not select them),
    # and the join must neither wait for those labels nor count them as unlabelled.
    agent = cluster.start_agent(extra=f'models:\n  - name: churn\n    sample_rate: {RATE}\n'
                                      '    keep_errors: true\n')
    start_ms = (int(time.time() * 1000) // 60000 - 10) * 60000
    dump = os.path.join(cluster.dir, "sent.csv")
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS, start_ms=start_ms,
                           extra=["--labels", str(LABELS), "--dump-csv", dump,
                                  "--error-share", "0.2"])
    rows = [r for r in csv.DictReader(open(dump))]
    pairs = [r for r in rows if r["label"] != "" and unit(r["prediction_id"]) < RATE]
    tap.check(sent["labels_sent"] == sum(r["label"] != "" for r in rows), "labels sent")
    y = np.array([int(r["label"]) for r in pairs])
    score = np.array([float(r["prediction"]) for r in pairs])

    def window():
        ws = api_data(agg.http_port,
                      f"/api/v1/models/churn/windows?from={start_ms}&to={start_ms}")["windows"]
        return ws[0] if ws else None
    wait_for(lambda: (window() or {}).get("performance", {}).get("labels", {}).get("labelled")
             == len(pairs), 60, "every kept label to join its prediction")
    perf = window()["performance"]
    b = perf["binary"]
    tap.check(b["n"] == len(pairs), "every sampled prediction with a label joined, once",
              f"n={b['n']} expected={len(pairs)}")
    pred = (score >= 0.5).astype(int)
    for name, want in (("accuracy", skm.accuracy_score(y, pred)),
                       ("precision", skm.precision_score(y, pred, zero_division=0)),
                       ("recall", skm.recall_score(y, pred, zero_division=0)),
                       ("f1", skm.f1_score(y, pred, zero_division=0))):
        tap.check(abs(b[name] - want) <= 1e-12, f"{name} equals scikit-learn's",
                  f"got {b[name]!r} want {want!r}")
    p = np.clip(score, 1e-15, 1 - 1e-15)
    want_ll = float(np.mean(-(y * np.log(p) + (1 - y) * np.log1p(-p))))
    tap.check(abs(b["log_loss"] - want_ll) <= 1e-12 * want_ll, "log loss equals the definition",
              f"got {b['log_loss']!r} want {want_ll!r} (sklearn {skm.log_loss(y, p)!r})")
    bins = np.minimum((score * 1000).astype(int), 999)
    pos, neg = np.bincount(bins[y == 1], minlength=1000), np.bincount(bins[y == 0], minlength=1000)
    tie_share = float(np.sum(pos * neg)) / (len(pos.nonzero()[0]) and pos.sum() * neg.sum())
    want_auc = skm.roc_auc_score(y, score)
    tap.check(abs(b["roc_auc"] - want_auc) <= tie_share / 2 + 1e-12,
              "ROC AUC within the binning bound of scikit-learn's",
              f"got {b['roc_auc']!r} want {want_auc!r} bound {tie_share / 2!r}")
    m = perf["multiclass"]
    tap.check(m["n"] == len(pairs) and abs(m["accuracy"] - skm.accuracy_score(y, pred)) <= 1e-12,
              "multi-class view (classes \"0\"/\"1\") agrees", json.dumps(m))
    want_macro = skm.f1_score(y, pred, average="macro", zero_division=0)
    tap.check(abs(m["macro_f1"] - want_macro) <= 1e-12, "macro F1 equals scikit-learn's",
              f"got {m['macro_f1']!r} want {want_macro!r}")
    want_weighted = skm.f1_score(y, pred, average="weighted", zero_division=0)
    tap.check(abs(m["weighted_f1"] - want_weighted) <= 1e-12, "weighted F1 equals scikit-learn's",
              f"got {m['weighted_f1']!r} want {want_weighted!r}")
    p_, r_, f_, s_ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1],
                                                         zero_division=0)
    for k, cls in enumerate(("0", "1")):
        got = m["per_class"][cls]
        tap.check(got["support"] == s_[k] and abs(got["precision"] - p_[k]) <= 1e-12 and
                  abs(got["recall"] - r_[k]) <= 1e-12 and abs(got["f1"] - f_[k]) <= 1e-12,
                  f"class {cls}: precision, recall, F1 and support equal scikit-learn's",
                  f"{got} vs {(p_[k], r_[k], f_[k], s_[k])}")
    kept = sum(1 for r in rows if unit(r["prediction_id"]) < RATE)
    forced = sum(1 for r in rows if unit(r["prediction_id"]) >= RATE and r["status"] == "error")
    tap.check(window()["records"] == kept + forced and forced > 0,
              "records: every rate-selected prediction plus every error",
              f"records={window()['records']} kept={kept} forced={forced}")
    cov = perf["labels"]
    tap.check(abs(cov["coverage"] - len(pairs) / kept) <= 1e-12,
              "label coverage = labelled / sampled predictions", json.dumps(cov))
    tap.check(perf["regression"] is None, "no regression metrics for a classifier")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
