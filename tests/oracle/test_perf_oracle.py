#!/usr/bin/python3
"""test_perf_oracle.py - modelwatch's performance metrics against scikit-learn and numpy.

Usage: test_perf_oracle.py PATH_TO_perf_driver

Generates cases with numpy (fixed seeds), runs them through perf_driver (aggregator/
perf_metrics.c: accumulate pair by pair, merge halves, round-trip through the Redis fields) and
compares the results with sklearn.metrics / numpy. TAP on stdout; exit status 1 on any failure.

Conventions being checked (aggregator/perf_metrics.h): an empty accumulator gives NaN (null in
the driver's JSON) for every metric; otherwise precision/recall/F1 follow sklearn's
zero_division=0; ROC AUC is NaN with one class only; MAPE leaves out pairs with y == 0.

Tolerances (u = 2**-53, the unit roundoff of a double):
- Counts (confusion, bins, supports, fields): exact. They are integers on both sides.
- RATIO_TOL = 1e-12 relative, for accuracy, precision, recall, F1 (binary, per class, macro,
  weighted), coverage, mean delay, the AUC tie share. Both sides compute them from the same
  exact integer counts with at most ~70 correctly rounded operations (macro/weighted: a sum
  over <= 65 classes, in a different order), so they differ by < 70 u ~ 8e-15 relative; 1e-12
  leaves a wide margin for numpy versions that order sums differently.
- AUC_TOL = 1e-12 absolute, for ROC AUC of the quantised scores against roc_auc_score on the
  same quantised scores. modelwatch's value is exact (integer arithmetic in doubles, exact while
  2 P N < 2**53) up to the final division; sklearn's trapezoid over <= B + 1 ROC points (B =
  bins) accumulates at most ~(3B + 10) u ~ 3.4e-13 for B = 1000.
- Raw-score ROC AUC: |AUC_modelwatch - roc_auc_score(raw)| <= S / 2 + AUC_TOL, where S is the
  share of positive-negative pairs whose scores share a bin (computed here with numpy). Binning
  is monotone, so pairs in different bins are ordered identically by raw and binned scores; a
  same-bin pair counts 1/2 binned and 0, 1/2 or 1 raw, i.e. differs by at most 1/2. (The brief's
  looser bound "at most S" follows.)
- Log loss: LL_ABS = 1e-14 absolute + SUM_REL relative. Inputs are clipped identically to
  [1e-15, 1 - 1e-15] (the clipped scores are what sklearn gets, so its own eps, 2.2e-16 in
  sklearn 1.2, changes nothing). Per pair the two sides differ only by log1p(-p) versus
  log(fl(1 - p)) and sklearn's row normalisation, each < 2u absolute; the mean therefore
  differs by < 1e-15 absolute plus the sums' relative error below.
- SUM_REL = 1e-12 relative, for MAE, RMSE, MAPE, mean log loss and merged float fields: every
  per-pair term is computed by the same IEEE operations on both sides; modelwatch's sums are
  compensated (error <= ~2u relative for terms of one sign), numpy's pairwise (<= log2(n) u ~
  2.2e-15 at n = 1e6). The signed error sum (bias) is compared with SUM_REL times the sum of
  |error|, its condition number.
- Delay quantiles: DELAY_REL = 1% (+1e-9 for log rounding at bucket edges), the latency
  histogram's guaranteed relative error, against numpy's nearest-rank (inverted_cdf) quantile;
  delays <= 1 ms are reported as 1 ms.
- Round trip through the Redis fields: exact (the fields hold hi + lo, which is what compute
  uses), except multi-class macro/weighted averages, whose class order may change (RATIO_TOL).
"""

import json
import math
import subprocess
import sys
import time
import warnings

import numpy as np
from sklearn import metrics as skm

warnings.simplefilter("ignore")  # sklearn's UndefinedMetricWarning for zero_division cases

U = 2.0**-53
RATIO_TOL = 1e-12
AUC_TOL = 1e-12
LL_ABS = 1e-14
SUM_REL = 1e-12
DELAY_REL = 0.01 * (1 + 1e-9)
LL_EPS = 1e-15

MW_EINVAL = -1
MW_ETOOBIG = -6


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, desc, detail=""):
        self.n += 1
        if ok:
            print(f"ok {self.n} - {desc}")
        else:
            self.failed += 1
            print(f"not ok {self.n} - {desc}")
            for line in str(detail).splitlines() or [""]:
                print(f"# {line}")
        sys.stdout.flush()

    def finish(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


def isnan(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def close(got, want, rel=0.0, abs_=0.0):
    """True when both are NaN/None, or |got - want| <= abs_ + rel |want|."""
    if isnan(got) or isnan(want):
        return isnan(got) and isnan(want)
    return abs(got - want) <= abs_ + rel * abs(want)


def check_close(tap, desc, got, want, rel=0.0, abs_=0.0):
    tap.check(close(got, want, rel, abs_), desc, f"got {got!r} want {want!r} rel {rel} abs {abs_}")


def score_bins(s, n_bins):
    """The bin definition of mw_perf_score_bin: the largest k with fl(k / B) <= s."""
    s = np.asarray(s, dtype=np.float64)
    k = np.minimum(np.floor(s * n_bins), n_bins - 1)
    k = np.where((k + 1 < n_bins) & ((k + 1) / n_bins <= s), k + 1, k)
    k = np.where((k > 0) & (k / n_bins > s), k - 1, k)
    return k.astype(np.int64)


def sk_or_nan(fn, *args, **kwargs):
    try:
        return float(fn(*args, **kwargs))
    except ValueError:  # e.g. roc_auc_score with one class present
        return math.nan


def field_bins(fields, prefix, n_bins):
    out = np.zeros(n_bins, dtype=np.int64)
    for name, v in fields.items():
        if name.startswith(prefix):
            out[int(name[len(prefix):])] = v
    return out


# ---- generic checks shared by every kind -----------------------------------------------------

def check_merge_and_roundtrip(tap, name, res, exact_roundtrip=True, signed_sums=None):
    """Merged halves against the whole: integer fields exactly, float fields to SUM_REL (the
    signed ones relative to their absolute-value partner); metrics likewise. Round trip through
    the fields: exact (or RATIO_TOL, see the module comment)."""
    signed_sums = signed_sums or {}
    whole, rt = res["fields"], res["roundtrip"]["metrics"]
    if "merged" in res:
        merged = res["merged"]["fields"]
        bad = []
        for key in sorted(set(whole) | set(merged)):
            a, b = merged.get(key, 0), whole.get(key, 0)
            if isinstance(a, int) and isinstance(b, int):
                ok = a == b
            else:
                scale = abs(whole.get(signed_sums[key], 0)) if key in signed_sums else abs(b)
                ok = abs(a - b) <= SUM_REL * scale
            if not ok:
                bad.append(f"{key}: merged {a!r} whole {b!r}")
        tap.check(not bad, f"{name}: merged halves equal the whole, field by field",
                  "\n".join(bad[:20]))
        bad = compare_metrics(res["merged"]["metrics"], res["metrics"], SUM_REL)
        tap.check(not bad, f"{name}: metrics of merged halves equal the whole's", "\n".join(bad))
    bad = compare_metrics(rt, res["metrics"], 0.0 if exact_roundtrip else RATIO_TOL)
    tap.check(not bad, f"{name}: metrics survive the round trip through the Redis fields",
              "\n".join(bad))


def compare_metrics(got, want, rel, path=""):
    bad = []
    if isinstance(want, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(got)} != {sorted(want)}"]
        for k in want:
            bad += compare_metrics(got[k], want[k], rel, f"{path}.{k}")
    elif isinstance(want, bool) or isinstance(want, int):
        if got != want:
            bad.append(f"{path}: {got!r} != {want!r}")
    elif not close(got, want, rel):
        bad.append(f"{path}: {got!r} != {want!r}")
    return bad


# ---- binary ----------------------------------------------------------------------------------

def binary_case(name, scores, labels, threshold=None, bins=None, split=None, expect=None,
                invalid=None):
    case = {"name": name, "kind": "binary", "scores": [float(x) for x in scores],
            "labels": [int(x) for x in labels]}
    if threshold is not None:
        case["threshold"] = threshold
    if bins is not None:
        case["bins"] = bins
    if split is not None:
        case["split"] = split
    # Not sent to the driver: expectations and invalid pairs appended after the valid ones.
    meta = {"expect": expect or {}, "n_valid": len(case["scores"]), "invalid": invalid or []}
    for s, y in meta["invalid"]:
        case["scores"].append(s)
        case["labels"].append(y)
    return case, meta


def check_binary(tap, case, meta, res):
    name = case["name"]
    n = meta["n_valid"]
    s = np.asarray(case["scores"][:n], dtype=np.float64)
    y = np.asarray(case["labels"][:n], dtype=np.int64)
    t = case.get("threshold", 0.5)
    n_bins = case.get("bins", 1000)
    m, f = res["metrics"], res["fields"]

    want_rc = MW_EINVAL if meta["invalid"] else 0
    tap.check(res["rc"] == want_rc and res["n_rejected"] == len(meta["invalid"]),
              f"{name}: {len(meta['invalid'])} invalid pairs rejected",
              f"rc {res['rc']} n_rejected {res['n_rejected']}")

    yp = (s >= t).astype(np.int64)
    counts = {"pb:tp": int(np.sum((y == 1) & (yp == 1))),
              "pb:fp": int(np.sum((y == 0) & (yp == 1))),
              "pb:tn": int(np.sum((y == 0) & (yp == 0))),
              "pb:fn": int(np.sum((y == 1) & (yp == 0)))}
    got = {k: f.get(k, 0) for k in counts}
    tap.check(got == counts, f"{name}: confusion counts at threshold {t} (score >= t)",
              f"got {got} want {counts}")

    bins = score_bins(s, n_bins)
    pos = np.bincount(bins[y == 1], minlength=n_bins)
    neg = np.bincount(bins[y == 0], minlength=n_bins)
    tap.check(np.array_equal(field_bins(f, "pb:pos:", n_bins), pos)
              and np.array_equal(field_bins(f, "pb:neg:", n_bins), neg),
              f"{name}: score histograms ({n_bins} bins) match numpy's binning")

    if n == 0:
        bad = [k for k in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc",
                           "roc_auc_tie_share") if not isnan(m[k])]
        tap.check(not bad and m["n"] == 0, f"{name}: every metric of an empty accumulator is NaN",
                  f"not NaN: {bad}")
    else:
        check_close(tap, f"{name}: accuracy vs accuracy_score", m["accuracy"],
                    skm.accuracy_score(y, yp), RATIO_TOL)
        check_close(tap, f"{name}: precision vs precision_score(zero_division=0)",
                    m["precision"], skm.precision_score(y, yp, zero_division=0), RATIO_TOL)
        check_close(tap, f"{name}: recall vs recall_score(zero_division=0)", m["recall"],
                    skm.recall_score(y, yp, zero_division=0), RATIO_TOL)
        check_close(tap, f"{name}: F1 vs f1_score(zero_division=0)", m["f1"],
                    skm.f1_score(y, yp, zero_division=0), RATIO_TOL)
        clipped = np.clip(s, LL_EPS, 1 - LL_EPS)
        check_close(tap, f"{name}: log loss vs log_loss(labels=[0,1]) on scores clipped at 1e-15",
                    m["log_loss"], skm.log_loss(y, clipped, labels=[0, 1]), SUM_REL, LL_ABS)

        auc_q = sk_or_nan(skm.roc_auc_score, y, bins)
        check_close(tap, f"{name}: ROC AUC vs roc_auc_score on the quantised scores",
                    m["roc_auc"], auc_q, 0.0, AUC_TOL)
        n_pos, n_neg = int(pos.sum()), int(neg.sum())
        tie_share = (float(np.dot(pos.astype(np.float64), neg)) / (n_pos * n_neg)
                     if n_pos and n_neg else math.nan)
        check_close(tap, f"{name}: tie share (same-bin positive-negative pairs)",
                    m["roc_auc_tie_share"], tie_share, RATIO_TOL)
        auc_raw = sk_or_nan(skm.roc_auc_score, y, s)
        if isnan(auc_raw):
            tap.check(isnan(m["roc_auc"]), f"{name}: ROC AUC is NaN with one class only",
                      f"got {m['roc_auc']!r}")
        else:
            bound = tie_share / 2 + AUC_TOL
            err = abs(m["roc_auc"] - auc_raw)
            tap.check(err <= bound, f"{name}: |AUC - roc_auc_score(raw)| = {err:.3g} <= "
                      f"tie share / 2 = {tie_share / 2:.3g}",
                      f"got {m['roc_auc']!r} raw {auc_raw!r}")

    for key, want in meta["expect"].items():
        check_close(tap, f"{name}: {key} is {want!r} (by hand)", m[key], want, 1e-15, 1e-15)
    check_merge_and_roundtrip(tap, name, res)


# ---- multi-class -----------------------------------------------------------------------------

def multiclass_case(name, pred, true, split=None, expect=None, invalid=None):
    case = {"name": name, "kind": "multiclass", "pred": list(pred), "true": list(true)}
    if split is not None:
        case["split"] = split
    meta = {"expect": expect or {}, "n_valid": len(case["pred"]), "invalid": invalid or []}
    for p, t in meta["invalid"]:
        case["pred"].append(p)
        case["true"].append(t)
    return case, meta


def overflow_classes(pred, true, limit=64):
    """Classes in modelwatch's slot order (predicted then actual, first appearance)."""
    order = {}
    for p, t in zip(pred, true):
        for c in ((p,) if p == t else (p, t)):
            if c not in order:
                order[c] = len(order)
    return [c for c, i in order.items() if i >= limit]


def check_multiclass(tap, case, meta, res):
    name = case["name"]
    n = meta["n_valid"]
    y, p = case["true"][:n], case["pred"][:n]
    m = res["metrics"]
    def code(a, b):
        if not a or not b:
            return MW_EINVAL
        return MW_ETOOBIG if max(len(a.encode()), len(b.encode())) > 63 else 0
    codes = [code(a, b) for a, b in meta["invalid"]]
    want_rc = codes[0] if codes else 0  # the driver reports the first refusal
    tap.check(res["rc"] == want_rc and res["n_rejected"] == len(codes)
              and all(codes), f"{name}: {len(codes)} invalid pairs rejected",
              f"rc {res['rc']} n_rejected {res['n_rejected']} want rc {want_rc}")

    if n == 0:
        bad = [k for k in ("accuracy",) if not isnan(m[k])]
        bad += [f"{a}.{k}" for a in ("macro", "weighted") for k, v in m[a].items() if not isnan(v)]
        tap.check(not bad, f"{name}: every metric of an empty accumulator is NaN", f"{bad}")
        check_merge_and_roundtrip(tap, name, res, exact_roundtrip=False)
        return

    labels = sorted(set(y) | set(p))
    over = set(overflow_classes(p, y))
    tap.check(m["overflowed"] == bool(over) and m["n_classes"] == len(labels) - len(over)
              + (1 if over else 0), f"{name}: {len(labels)} classes, overflow {len(over)}",
              f"got n_classes {m['n_classes']} overflowed {m['overflowed']}")
    check_close(tap, f"{name}: accuracy vs accuracy_score", m["accuracy"],
                skm.accuracy_score(y, p), RATIO_TOL)

    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, p, labels=labels, average=None,
                                                             zero_division=0)
    bad = []
    for i, c in enumerate(labels):
        if c in over:
            continue
        got = m["classes"].get(c)
        if got is None:
            bad.append(f"{c}: missing")
            continue
        if got["support"] != int(sup[i]):
            bad.append(f"{c}: support {got['support']} want {sup[i]}")
        for key, want in (("precision", prec[i]), ("recall", rec[i]), ("f1", f1[i])):
            if not close(got[key], float(want), RATIO_TOL):
                bad.append(f"{c}: {key} {got[key]!r} want {want!r}")
    tap.check(not bad, f"{name}: per-class precision/recall/F1/support vs "
              "precision_recall_fscore_support(average=None)", "\n".join(bad[:20]))

    if over:
        yt, yp = np.asarray(y, dtype=object), np.asarray(p, dtype=object)
        in_over = np.vectorize(lambda c: c in over, otypes=[bool])
        ot, op = in_over(yt), in_over(yp)
        same = yt == yp
        want = {"pm:other:tp": int(np.sum(same & ot)), "pm:other:fp": int(np.sum(~same & op)),
                "pm:other:fn": int(np.sum(~same & ot))}
        got = {k: res["fields"].get(k, 0) for k in want}
        tap.check(got == want, f"{name}: 'other' counts are the sums over the "
                  f"{len(over)} overflow classes", f"got {got} want {want}")
    else:
        for avg in ("macro", "weighted"):
            for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                            ("f1", skm.f1_score)):
                check_close(tap, f"{name}: {avg} {key} vs {fn.__name__}(average='{avg}')",
                            m[avg][key], fn(y, p, average=avg, zero_division=0), RATIO_TOL)

    for key, want in meta["expect"].items():
        got = m
        for part in key.split("."):
            got = got[part]
        check_close(tap, f"{name}: {key} is {want!r} (by hand)", got, want, 1e-15)
    check_merge_and_roundtrip(tap, name, res, exact_roundtrip=False)


# ---- regression ------------------------------------------------------------------------------

def regression_case(name, pred, true, split=None, expect=None, invalid=None):
    case = {"name": name, "kind": "regression", "pred": [float(x) for x in pred],
            "true": [float(x) for x in true]}
    if split is not None:
        case["split"] = split
    meta = {"expect": expect or {}, "n_valid": len(case["pred"]), "invalid": invalid or []}
    for p, t in meta["invalid"]:
        case["pred"].append(p)
        case["true"].append(t)
    return case, meta


def check_regression(tap, case, meta, res):
    name = case["name"]
    n = meta["n_valid"]
    yp = np.asarray(case["pred"][:n], dtype=np.float64)
    yt = np.asarray(case["true"][:n], dtype=np.float64)
    m = res["metrics"]
    want_rc = MW_EINVAL if meta["invalid"] else 0
    tap.check(res["rc"] == want_rc and res["n_rejected"] == len(meta["invalid"]),
              f"{name}: {len(meta['invalid'])} invalid pairs rejected",
              f"rc {res['rc']} n_rejected {res['n_rejected']}")
    nz = yt != 0
    tap.check(m["n"] == n and m["n_ape"] == int(nz.sum()),
              f"{name}: n = {n}, pairs with y != 0 = {int(nz.sum())}",
              f"got n {m['n']} n_ape {m['n_ape']}")
    if n == 0:
        bad = [k for k in ("mean_error", "mae", "rmse", "mape") if not isnan(m[k])]
        tap.check(not bad, f"{name}: every metric of an empty accumulator is NaN", f"{bad}")
    else:
        e = yp - yt
        check_close(tap, f"{name}: mean error (bias) vs numpy, to 1e-12 of mean |e|",
                    m["mean_error"], float(np.mean(e)), 0.0, SUM_REL * float(np.mean(np.abs(e))))
        check_close(tap, f"{name}: MAE vs mean_absolute_error", m["mae"],
                    skm.mean_absolute_error(yt, yp), SUM_REL)
        check_close(tap, f"{name}: RMSE vs sqrt(mean_squared_error)", m["rmse"],
                    math.sqrt(skm.mean_squared_error(yt, yp)), SUM_REL)
        if nz.any():
            # sklearn divides by max(|y|, eps) instead of leaving y == 0 out: compare on y != 0.
            check_close(tap, f"{name}: MAPE vs mean_absolute_percentage_error on the pairs "
                        "with y != 0", m["mape"],
                        skm.mean_absolute_percentage_error(yt[nz], yp[nz]), SUM_REL)
        else:
            tap.check(isnan(m["mape"]), f"{name}: MAPE is NaN when every y is 0",
                      f"got {m['mape']!r}")
    for key, want in meta["expect"].items():
        check_close(tap, f"{name}: {key} is {want!r} (by hand)", m[key], want, 1e-15)
    check_merge_and_roundtrip(tap, name, res, signed_sums={"pr:err": "pr:abs"})


# ---- coverage --------------------------------------------------------------------------------

def coverage_case(name, predictions, pred_ms, label_ms, split=None, expect=None):
    case = {"name": name, "kind": "coverage", "predictions": int(predictions),
            "pred_ms": [int(x) for x in pred_ms], "label_ms": [int(x) for x in label_ms]}
    if split is not None:
        case["split"] = split
    return case, {"expect": expect or {}}


def check_coverage(tap, case, meta, res):
    name = case["name"]
    m = res["metrics"]
    d = np.asarray(case["label_ms"], dtype=np.int64) - np.asarray(case["pred_ms"], dtype=np.int64)
    n_pred, n_lab = case["predictions"], len(d)
    want = {"n_predictions": n_pred, "n_labelled": n_lab, "n_skewed": int(np.sum(d < 0))}
    got = {k: m[k] for k in want}
    tap.check(got == want, f"{name}: prediction, label and skew counts", f"got {got} want {want}")
    check_close(tap, f"{name}: coverage = labelled / predictions", m["coverage"],
                n_lab / n_pred if n_pred else math.nan, RATIO_TOL)
    d = np.maximum(d, 0)  # labels stamped before their prediction count as delay 0
    check_close(tap, f"{name}: mean delay vs numpy (negative delays as 0)", m["mean_delay_ms"],
                float(np.mean(d)) if n_lab else math.nan, RATIO_TOL)
    for q in (50, 90, 99):
        key = f"p{q}_delay_ms"
        if n_lab == 0:
            tap.check(isnan(m[key]), f"{name}: {key} is NaN without labels", f"got {m[key]!r}")
            continue
        want = float(np.quantile(d, q / 100, method="inverted_cdf"))
        if want <= 1:
            ok, what = m[key] == 1.0, "1 ms (delays <= 1 ms)"
        else:
            ok, what = close(m[key], want, DELAY_REL), f"{want:g} ms within 1%"
        tap.check(ok, f"{name}: {key} = nearest-rank quantile, {what}", f"got {m[key]!r}")
    for key, want in meta["expect"].items():
        check_close(tap, f"{name}: {key} is {want!r} (by hand)", m[key], want, 1e-15)
    check_merge_and_roundtrip(tap, name, res)


# ---- cases -----------------------------------------------------------------------------------

def binary_cases():
    rng = np.random.default_rng(20240601)
    out = []

    def realistic(n, rng, pos_rate=0.3):
        y = (rng.random(n) < pos_rate).astype(np.int64)
        s = np.where(y == 1, rng.beta(3.0, 2.0, n), rng.beta(2.0, 3.0, n))
        return s, y

    s, y = realistic(20000, rng)
    out.append(binary_case("binary_random", s, y, split=7919))
    s, y = realistic(5000, rng)
    # 10 bins: the tie share is large, so the raw-score bound is tested where it matters.
    out.append(binary_case("binary_coarse_bins", s, y, threshold=0.3, bins=10, split=2500))
    s, y = realistic(3000, rng)
    out.append(binary_case("binary_rejects_invalid", s, y, split=1000,
                           invalid=[(1.5, 1), (-0.25, 0), (0.5, 2), (0.5, -1)]))
    # Scores on a 0.05 grid, each grid value in its own bin: same-bin pairs are exactly the raw
    # ties, so raw and quantised AUC agree.
    y = (rng.random(4000) < 0.5).astype(np.int64)
    s = np.round(np.clip(rng.normal(0.45 + 0.1 * y, 0.2), 0, 1) * 20) / 20
    out.append(binary_case("binary_tied_scores", s, y, split=2000))

    # Edges: every bin edge k/B, the doubles just below and above it, 0, 1, the threshold.
    n_bins = 100
    edges = np.arange(n_bins + 1) / n_bins
    below = np.nextafter(edges[1:], 0.0)
    above = np.nextafter(edges[:-1], 1.0)
    s = np.concatenate([edges, below, above, [0.5, 0.5, 0.0, 1.0]])
    y = (rng.random(len(s)) < 0.5).astype(np.int64)
    want_bins = np.concatenate([np.minimum(np.arange(n_bins + 1), n_bins - 1),
                                np.arange(n_bins), np.arange(n_bins), [50, 50, 0, n_bins - 1]])
    out.append(binary_case("binary_edges", s, y, bins=n_bins, split=150))
    out[-1][1]["want_bins"] = want_bins
    # Threshold exactly at a score that is not a dyadic number (0.3 as a double).
    s = np.array([0.3, 0.3, np.nextafter(0.3, 0.0), np.nextafter(0.3, 1.0), 0.0, 1.0])
    out.append(binary_case("binary_on_threshold", s, [1, 0, 1, 0, 0, 1], threshold=0.3,
                           expect={"precision": 2 / 4, "recall": 2 / 3}))
    out.append(binary_case("binary_threshold_0", [0.0, 0.2, 0.9], [0, 1, 1], threshold=0.0,
                           expect={"precision": 2 / 3, "recall": 1.0}))
    out.append(binary_case("binary_threshold_1", [0.99, 1.0, 1.0], [1, 1, 0], threshold=1.0,
                           expect={"precision": 0.5, "recall": 0.5}))

    # One class only.
    s = rng.random(500) * 0.49
    out.append(binary_case("binary_only_negatives_none_predicted", s, np.zeros(500),
                           split=200, expect={"accuracy": 1.0, "precision": 0.0, "recall": 0.0,
                                              "f1": 0.0, "roc_auc": math.nan}))
    s = rng.random(500)
    out.append(binary_case("binary_only_positives", s, np.ones(500), split=100,
                           expect={"precision": 1.0, "roc_auc": math.nan}))
    out.append(binary_case("binary_single_positive", [0.7], [1],
                           expect={"accuracy": 1.0, "precision": 1.0, "recall": 1.0,
                                   "log_loss": -math.log(0.7), "roc_auc": math.nan}))
    out.append(binary_case("binary_single_negative_predicted", [0.7], [0],
                           expect={"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                   "roc_auc": math.nan}))
    y = (rng.random(1000) < 0.4).astype(np.int64)
    out.append(binary_case("binary_all_correct", y.astype(np.float64), y, split=500,
                           expect={"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0,
                                   "roc_auc": 1.0, "roc_auc_tie_share": 0.0}))
    out.append(binary_case("binary_all_wrong", 1.0 - y, y, split=500,
                           expect={"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                   "roc_auc": 0.0, "roc_auc_tie_share": 0.0,
                                   # positives clip to 1e-15, negatives to 1 - fl(1 - 1e-15)
                                   "log_loss": (np.sum(y) * -math.log(LL_EPS) + np.sum(1 - y)
                                                * -math.log1p(-(1 - LL_EPS))) / len(y)}))
    out.append(binary_case("binary_empty", [], []))

    # Large: 1e6 pairs through the driver and sklearn.
    s, y = realistic(1_000_000, rng)
    out.append(binary_case("binary_1e6", s, y, split=400_000))
    return out


def multiclass_cases():
    rng = np.random.default_rng(7)
    out = []
    names = ["cat", "dog", "bird", "fish", "a:b", "ünïcode", "x" * 63, "0"]
    probs = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    n = 50000
    yt = rng.choice(len(names), n, p=probs)
    wrong = rng.random(n) < 0.3
    yp = np.where(wrong, rng.choice(len(names), n), yt)
    out.append(multiclass_case("mc_random", [names[i] for i in yp], [names[i] for i in yt],
                               split=12345))
    # "never" is never predicted, "ghost" never true: zero_division on both sides.
    yt = rng.choice(3, 2000)
    yp = np.where(rng.random(2000) < 0.2, 3, yt)
    cls = ["a", "b", "never", "ghost"]
    yp = np.where(yp == 2, 0, yp)
    out.append(multiclass_case("mc_unpredicted_and_unseen", [cls[i] for i in yp],
                               [cls[i] for i in yt], split=999))
    # 70 classes: 6 share the "other" slot.
    k = 70
    yt = rng.choice(k, 20000)
    yp = np.where(rng.random(20000) < 0.4, rng.choice(k, 20000), yt)
    out.append(multiclass_case("mc_overflow_70_classes", [f"c{i}" for i in yp],
                               [f"c{i}" for i in yt]))
    out.append(multiclass_case("mc_rejects_invalid", ["a", "b", "a"], ["a", "a", "b"],
                               invalid=[("", "a"), ("a", "y" * 64)]))
    out.append(multiclass_case("mc_single_pair", ["a"], ["b"],
                               expect={"accuracy": 0.0, "macro.precision": 0.0,
                                       "weighted.recall": 0.0}))
    labels = [names[i] for i in rng.choice(len(names), 300)]
    out.append(multiclass_case("mc_all_correct", labels, labels, split=100,
                               expect={"accuracy": 1.0, "macro.f1": 1.0, "weighted.f1": 1.0}))
    shifted = [names[(names.index(c) + 1) % len(names)] for c in labels]
    out.append(multiclass_case("mc_all_wrong", shifted, labels, split=100,
                               expect={"accuracy": 0.0, "macro.f1": 0.0, "weighted.f1": 0.0}))
    out.append(multiclass_case("mc_empty", [], []))
    return out


def regression_cases():
    rng = np.random.default_rng(99)
    out = []
    n = 200_000
    yt = rng.lognormal(3.0, 1.0, n) * np.where(rng.random(n) < 0.1, -1, 1)
    yp = yt + rng.normal(0.5, 5.0, n)
    out.append(regression_case("reg_random", yp, yt, split=77777))
    yt = rng.normal(0, 10, 5000)
    yt[rng.random(5000) < 0.05] = 0.0
    yp = yt + rng.normal(0, 1, 5000)
    out.append(regression_case("reg_with_zero_targets", yp, yt, split=2500))
    out.append(regression_case("reg_all_targets_zero", [1.0, -2.0, 0.0], [0.0, 0.0, 0.0],
                               expect={"mae": 1.0, "mean_error": -1.0 / 3}))
    out.append(regression_case("reg_single_pair", [3.0], [2.0],
                               expect={"mae": 1.0, "rmse": 1.0, "mape": 0.5}))
    v = rng.normal(0, 100, 1000)
    out.append(regression_case("reg_exact", v, v, split=300,
                               expect={"mae": 0.0, "rmse": 0.0, "mape": 0.0, "mean_error": 0.0}))
    out.append(regression_case("reg_rejects_invalid", rng.normal(size=100), rng.normal(size=100),
                               split=50, invalid=[(1e308, -1e308), (1e200, 0.0), (1.0, 1e-310)]))
    out.append(regression_case("reg_empty", [], []))
    return out


def coverage_cases():
    rng = np.random.default_rng(5)
    out = []
    # 7001 labels: q * n is not an integer for q = .5, .9, .99, so nearest rank is unambiguous.
    n_lab = 7001
    pred = 1_717_000_000_000 + rng.integers(0, 3_600_000, n_lab)
    delay = np.round(rng.lognormal(11.0, 1.5, n_lab)).astype(np.int64)
    delay[rng.random(n_lab) < 0.01] *= -1  # clock skew
    out.append(coverage_case("cov_random", 10000, pred, pred + delay, split=3000))
    pred = np.full(9, 1000)
    tiny = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1])
    out.append(coverage_case("cov_tiny_delays", 9, pred, pred + tiny,
                             expect={"coverage": 1.0, "p50_delay_ms": 1.0}))
    out.append(coverage_case("cov_no_labels", 100, [], [], expect={"coverage": 0.0}))
    out.append(coverage_case("cov_empty", 0, [], []))
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: test_perf_oracle.py PATH_TO_perf_driver", file=sys.stderr)
        return 2
    tap = Tap()
    t0 = time.monotonic()
    checks = {"binary": check_binary, "multiclass": check_multiclass,
              "regression": check_regression, "coverage": check_coverage}
    cases = binary_cases() + multiclass_cases() + regression_cases() + coverage_cases()
    payload = json.dumps({"cases": [c for c, _ in cases]})
    proc = subprocess.run([sys.argv[1]], input=payload.encode(), capture_output=True)
    tap.check(proc.returncode == 0, "perf_driver ran", proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        return tap.finish()
    results = json.loads(proc.stdout)["results"]
    tap.check(len(results) == len(cases), f"perf_driver answered all {len(cases)} cases")
    for (case, meta), res in zip(cases, results):
        checks[case["kind"]](tap, case, meta, res)
        if "want_bins" in meta:
            s = np.asarray(case["scores"], dtype=np.float64)
            y = np.asarray(case["labels"])
            n_bins = case["bins"]
            got = field_bins(res["fields"], "pb:pos:", n_bins) + field_bins(res["fields"],
                                                                         "pb:neg:", n_bins)
            want = np.bincount(meta["want_bins"], minlength=n_bins)
            tap.check(np.array_equal(got, want) and len(s) == len(y),
                      f"{case['name']}: an edge k/B falls in bin k, the double below it in k-1, "
                      "score 1 in the last bin")
    print(f"# {time.monotonic() - t0:.1f} s")
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
