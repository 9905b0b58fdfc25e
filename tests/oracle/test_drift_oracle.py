#!/usr/bin/python3
"""test_drift_oracle.py — modelwatch's drift statistics against numpy/scipy.

Usage: test_drift_oracle.py PATH_TO_drift_driver

Generates numeric and categorical test cases with numpy (fixed seeds), bins them the way the
aggregator does (aggregator/drift.h), sends every case in one JSON array to drift_driver, and
compares each result with an oracle computed independently ON THE SAME BINNED DATA:

  PSI          the definition, written here in numpy with the same epsilon flooring
  JS distance  scipy.spatial.distance.jensenshannon(ref_p, counts, base=2)
  KS binned    max |cumsum(ref_p) - cumsum(cur_p)| with numpy
  Wasserstein  scipy.stats.wasserstein_distance(ref_x, cur_x, ref_w, cur_w) on point sets
               (random ones with ties, heavy tails and fractional or zero weights, and the
               slot positions of the aggregator's grid)
  chi-squared  scipy.stats.chisquare(counts, ref_p * N), scipy.stats.chi2.sf, special.gammaincc
  KS p-value   scipy.stats.kstwobign.sf(sqrt(n m / (n + m)) D) over a grid of D, n, m
  binning      numpy.searchsorted(edges, x, side='right'), numpy.unique; the grid slot as
               0 below min, k + 2 above max, else 1 + searchsorted(cuts, x, side='right')

Window counts are doubles (weighted counts): integer ones from samples and fractional ones
from weighted samples (weights such as 2.5 and 0.3).

Separately, on the aggregator's grid (the reference's 99 percentiles as cuts, plus a slot below
its min and one above its max; reference shares from the reference sample, window counts from
the window sample), how far the slot-level KS and Wasserstein are from scipy's ks_2samp and
wasserstein_distance on the raw samples: the binning error, bounded as stated below.

Prints TAP (one line per check, a '# ' detail line under each failure, the plan last) and exits
non-zero on any failure. Runs in a few seconds.
"""
import json
import math
import subprocess
import sys
import time

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

U = np.finfo(float).eps / 2  # unit roundoff, 2^-53

# Tolerances. Each statistic is a short closed form evaluated in double on both sides, so the
# only differences are rounding: every proportion carries 1-2 roundings (count / N, ref / sum),
# each log or division one more, and the sums of at most 52 terms add n*u of the summed
# magnitudes (numpy sums pairwise, C sequentially). That is ~1e-14 relative at worst; 1e-9
# leaves five orders of magnitude of slack while still catching any formula mistake (a wrong
# floor, log base, bin offset or normalization changes results at the 1e-4 level or more).
REL_CLOSED = 1e-9
# PSI near 0 (identical distributions): relative error means nothing there; the absolute
# error is a few u times sum |terms| <= ~1e-14.
ABS_PSI = 1e-13
# JS is compared as the divergence d^2: sqrt magnifies a rounding error e of the divergence into
# e / (2d) near d = 0, so comparing d itself would need a data-dependent tolerance. The
# divergence's absolute error is n*u-sized, below 1e-13.
ABS_JS_DIVERGENCE = 1e-13
# KS binned: a difference of two cumulative sums of <= 52 terms in [0, 1]: <= 52*2u ~ 1.2e-14.
ABS_KS = 1e-12
# Wasserstein: sum of |dF| * width; absolute error ~ n*u times the value span, plus relative.
ABS_W_PER_SPAN = 1e-12
# Wasserstein over the grid's slots against scipy on the raw samples: the accuracy the product
# promises for normal, lognormal, exponential and shifted data, max(2 % of the raw distance,
# 1 % of the reference's standard deviation).
W_GRID_REL = 0.02
W_GRID_ABS_PER_STD = 0.01
# The aggregator's grid: the reference's percentiles 1..99 as cuts.
GRID_PERCENTILES = np.arange(1, 100)
# chi-squared statistic: e_i = r_i N carries ~2 roundings; the term (o - e)^2 / e then moves by
# about 2|o - e| * (2u), which dominates when o ~ e (a near-zero statistic with 1e9 counts). So
# |d stat| <= REL_CLOSED * stat + 16u * sum |o_i - e_i| (4x slack on that bound).
CHI2_STAT_ABS_PER_RESIDUAL = 16 * U
# chi2.sf and Q(a, x): both sides (cephes igamc, our series/continued fraction) are accurate to
# ~u * |log prefactor| (observed worst 6e-13 at df = 1000, 8e-12 at df = 1e4 deep in the tail:
# the function's own condition number there is ~x). The continued fraction stops on a relative
# criterion (|delta - 1| < 2.2e-16), so tails keep relative accuracy down to the subnormal
# range; below 1e-300 precision itself runs out and only |difference| <= 1e-300 is asked.
REL_SF = 1e-9
ABS_SF_SUBNORMAL = 1e-300
# A p-value inherits the statistic's tolerance through the density: |dp| <= pdf(stat) * dstat.
# KS asymptotic p-value Q_KS(en D) against scipy.stats.kstwobign.sf. The differences are (a) the
# cutoff: below lambda = 0.2 the C side returns 1 while Q_KS = 1 - K(lambda) with K(0.2) =
# 5.05e-13 (K falls like exp(-pi^2 / (8 lambda^2)), so that is the largest); (b) rounding of
# en = sqrt(nm/(n+m)), which the C side computes as sqrt(1/(1/n + 1/m)): a few u relative in
# lambda, moving p by pdf(lambda) * lambda * few u <= ~1e-15 (lambda * pdf <= 1.1); (c) the
# series themselves, at most 5 terms of magnitude <= 1 each, a few u. The worst case is (a), so
# 1e-10 absolute leaves a factor of ~200 while a wrong constant (2 j^2 vs j^2, a missing factor
# 2, en = sqrt(n + m)) changes p by 1e-2 or more.
ABS_KS_P = 1e-10
# In the tail (p < 1e-3, lambda > 1.36) both sides sum 2 exp(-2 j^2 lambda^2), so the relative
# error is that of exp's argument, 4 lambda^2 * few u <= ~1e-12 up to p ~ 1e-300 (lambda ~ 19):
# the p-value of a large shift is also checked to 1e-9 relative, down to the subnormal range.
REL_KS_P_TAIL = 1e-9


def enc(v):
    """JSON-ready form of v: numpy scalars/arrays to Python, non-finite doubles to strings."""
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [enc(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return v


def dec(v):
    if isinstance(v, list):
        return [dec(x) for x in v]
    if v == "nan":
        return math.nan
    if v == "inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    return v


def close(got, want, rel, abs_):
    """True when got ~ want: both NaN, equal infinities, or |got - want| <= max(rel|want|, abs_)."""
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if math.isinf(want) or math.isinf(got):
        return got == want
    return abs(got - want) <= max(rel * abs(want), abs_)


class Suite:
    """Cases for one driver run; each has a TAP description and a check returning None (pass) or
    a failure detail."""

    def __init__(self):
        self.cases = []

    def add(self, desc, case, check):
        self.cases.append((desc, case, check))

    def run(self, driver):
        payload = json.dumps([enc(c) for _, c, _ in self.cases])
        proc = subprocess.run([driver], input=payload, capture_output=True, text=True,
                              timeout=120)
        try:
            results = json.loads(proc.stdout)
        except ValueError:
            print("not ok 1 - drift_driver produced JSON")
            print(f"# exit {proc.returncode}, stderr: {proc.stderr.strip()[:500]}")
            print("1..1")
            return 1
        failures = 0
        n = 0
        for (desc, _, check), res in zip(self.cases, results):
            n += 1
            if "error" in res:
                detail = f"driver error: {res['error']}"
            else:
                try:
                    detail = check({k: dec(v) for k, v in res.items()})
                except Exception as e:  # a checker bug is a failure, not a crash
                    detail = f"checker raised {e!r}"
            if detail is None:
                print(f"ok {n} - {desc}")
            else:
                failures += 1
                print(f"not ok {n} - {desc}")
                print(f"# {detail}")
        if len(results) != len(self.cases):
            n += 1
            failures += 1
            print(f"not ok {n} - driver answered every case")
            print(f"# {len(results)} results for {len(self.cases)} cases")
        if proc.returncode != 0:
            n += 1
            failures += 1
            print(f"not ok {n} - drift_driver exit status")
            print(f"# exit {proc.returncode}, stderr: {proc.stderr.strip()[:500]}")
        print(f"1..{n}")
        return 1 if failures else 0


# ----------------------------------------------------------------------------- oracles

def normalize_ref(ref_p):
    ref_p = np.asarray(ref_p, dtype=float)
    return ref_p / math.fsum(ref_p)


def oracle_psi(ref_p, counts, eps):
    r = np.maximum(normalize_ref(ref_p), eps)
    c = np.maximum(np.asarray(counts, dtype=float) / float(np.sum(counts)), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def oracle_ks(ref_p, counts):
    r = normalize_ref(ref_p)
    c = np.asarray(counts, dtype=float) / float(np.sum(counts))
    return float(np.max(np.abs(np.cumsum(r) - np.cumsum(c)), initial=0.0))


def oracle_chi2(ref_p, counts):
    """(statistic, p, residual_sum) by scipy; the unseen rule (ref 0, count > 0) by drift.h."""
    ref_p = np.asarray(ref_p, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if np.any((ref_p == 0) & (counts > 0)):
        return math.inf, 0.0, 0.0
    keep = ref_p > 0
    n = float(np.sum(counts))
    f_exp = normalize_ref(ref_p)[keep] * n
    f_obs = counts[keep]
    res = stats.chisquare(f_obs, f_exp)
    return float(res.statistic), float(res.pvalue), float(np.sum(np.abs(f_obs - f_exp)))


# ----------------------------------------------------------------------------- checks

def check_value(want, rel, abs_):
    def check(res):
        if close(res["value"], want, rel, abs_):
            return None
        return f"got {res['value']!r}, oracle {want!r} (rel {rel:g}, abs {abs_:g})"
    return check


def check_js(want):
    def check(res):
        got = res["value"]
        if math.isnan(want):
            return None if math.isnan(got) else f"got {got!r}, want NaN"
        if not 0.0 <= got <= 1.0:
            return f"JS distance {got!r} outside [0, 1]"
        if close(got * got, want * want, REL_CLOSED, ABS_JS_DIVERGENCE):
            return None
        return f"got {got!r}, scipy {want!r} (compared squared: rel {REL_CLOSED:g}, " \
               f"abs {ABS_JS_DIVERGENCE:g})"
    return check


def check_chi2(want_stat, want_p, resid, df):
    tol_stat_abs = CHI2_STAT_ABS_PER_RESIDUAL * resid

    def check(res):
        if res["rc"] != 0:
            return f"rc {res['rc']}"
        got_s, got_p = res["statistic"], res["p_value"]
        if not close(got_s, want_stat, REL_CLOSED, tol_stat_abs):
            return f"statistic {got_s!r}, scipy {want_stat!r} (abs tol {tol_stat_abs:g})"
        dstat = max(REL_CLOSED * abs(want_stat), tol_stat_abs) if math.isfinite(want_stat) else 0
        pdf = float(stats.chi2.pdf(want_stat, df)) if df > 0 and math.isfinite(want_stat) else 0
        tol_p = pdf * dstat + ABS_SF_SUBNORMAL
        if not close(got_p, want_p, REL_SF, tol_p):
            return f"p {got_p!r}, scipy {want_p!r} (rel {REL_SF:g}, abs {tol_p:g})"
        return None
    return check


def check_exact(key, want):
    want = dec(enc(want))

    def check(res):
        got = res[key]
        same = len(got) == len(want) and all(
            (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
            or a == b for a, b in zip(got, want))
        if same:
            return None
        bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b][:5]
        return f"{key}: lengths {len(got)}/{len(want)}, first differences at {bad}: " \
               f"{[got[i] for i in bad]} vs {[want[i] for i in bad]}"
    return check


def check_fields(**want):
    def check(res):
        for key, w in want.items():
            got = res[key]
            if isinstance(w, float) and math.isnan(w):
                if not (isinstance(got, float) and math.isnan(got)):
                    return f"{key}: got {got!r}, want NaN"
            elif got != w:
                return f"{key}: got {got!r}, want {w!r}"
        return None
    return check


def check_pred(desc, pred):
    def check(res):
        return None if pred(res) else f"{desc}: got {res!r}"
    return check


def add_binned(suite, name, ref_p, counts, ordered=True, eps=1e-4, expect_zero=False):
    """The statistics of one (ref_p, counts) pair against their oracles; counts are doubles."""
    counts = np.asarray(counts, dtype=float)
    base = {"ref_p": ref_p, "counts": counts}
    suite.add(f"{name}: PSI (eps {eps:g}) = numpy definition",
              dict(base, op="psi", epsilon=eps),
              check_value(oracle_psi(ref_p, counts, eps), REL_CLOSED, ABS_PSI))
    js = float(distance.jensenshannon(ref_p, counts, base=2))
    suite.add(f"{name}: JS distance = scipy jensenshannon(base=2)", dict(base, op="js"),
              check_js(js))
    if ordered:
        suite.add(f"{name}: KS binned = numpy cumsum", dict(base, op="ks"),
                  check_value(oracle_ks(ref_p, counts), 0.0, ABS_KS))
    stat, p, resid = oracle_chi2(ref_p, counts)
    df = int(np.sum(np.asarray(ref_p) > 0)) - 1
    suite.add(f"{name}: chi-squared statistic and p = scipy chisquare"
              + (" (unseen: inf, 0)" if math.isinf(stat) else ""),
              dict(base, op="chi2"), check_chi2(stat, p, resid, df))
    if expect_zero:
        suite.add(f"{name}: identical distributions give ~0 statistics and p ~1",
                  dict(base, op="chi2"),
                  check_pred("statistic < 1e-12 and p > 1 - 1e-9",
                             lambda r: r["statistic"] < 1e-12 and r["p_value"] > 1 - 1e-9))
        for op in ("psi", "js", "ks"):
            suite.add(f"{name}: {op} ~0 for identical distributions",
                      dict(base, op=op, epsilon=eps),
                      check_pred("value < 1e-7", lambda r: 0 <= r["value"] < 1e-7))


def bin_counts(edges, x, w=None):
    """Weighted counts (doubles) of x in the bins of mw_grid_region."""
    return np.bincount(np.searchsorted(edges, x, side="right"), weights=w,
                       minlength=len(edges) + 1).astype(float)


def bin_positions(edges, ref_min, ref_max):
    """Ordered positions for the bins of `edges` (range ends outside, midpoints inside), to give
    binned counts a place on the line in the closed-form Wasserstein checks."""
    mids = 0.5 * edges[:-1] + 0.5 * edges[1:]
    return np.concatenate([[min(ref_min, edges[0])], mids, [max(ref_max, edges[-1])]])


def add_points(suite, name, ref_x, ref_w, cur_x, cur_w):
    """mw_drift_wasserstein_points on one pair of point sets against scipy's."""
    ref_x, ref_w = np.asarray(ref_x, dtype=float), np.asarray(ref_w, dtype=float)
    cur_x, cur_w = np.asarray(cur_x, dtype=float), np.asarray(cur_w, dtype=float)
    both = np.concatenate([ref_x, cur_x])
    span = float(np.max(both) - np.min(both))
    want = float(stats.wasserstein_distance(ref_x, cur_x, ref_w, cur_w))
    suite.add(f"{name}: Wasserstein points = scipy wasserstein_distance "
              f"({len(ref_x)} and {len(cur_x)} points)",
              {"op": "wasserstein_points", "ref_x": ref_x, "ref_w": ref_w, "cur_x": cur_x,
               "cur_w": cur_w},
              check_value(want, REL_CLOSED, ABS_W_PER_SPAN * max(span, 1.0)))


def grid_cuts(ref):
    """The aggregator's grid for a reference sample: (cuts, min, max), the cuts its percentiles
    1..99, deduplicated and strictly inside [min, max]."""
    lo, hi = float(np.min(ref)), float(np.max(ref))
    q = np.unique(np.percentile(ref, GRID_PERCENTILES))
    return q[(q > lo) & (q < hi)], lo, hi


def oracle_grid_slot(cuts, lo, hi, x):
    """The slot of each x (drift.h's layout) with numpy; -1 for NaN."""
    x = np.asarray(x, dtype=float)
    k = len(cuts)
    with np.errstate(invalid="ignore"):
        slot = np.where(x < lo, 0,
                        np.where(x > hi, k + 2, 1 + np.searchsorted(cuts, x, side="right")))
    return np.where(np.isnan(x), -1, slot)


def grid_slots(cuts, lo, hi, x, w=None):
    """(weight, weighted sum of values) of x in each of the k + 3 slots."""
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    s = oracle_grid_slot(cuts, lo, hi, x)
    n = len(cuts) + 3
    return (np.bincount(s, weights=w, minlength=n).astype(float),
            np.bincount(s, weights=w * x, minlength=n).astype(float))


def grid_positions(cuts, lo, hi, ref, cur, cur_w=None):
    """Where the aggregator puts each slot's mass: for the reference, the mean of its values in
    the slot (the midpoint when it has none); for the window, its own mean in the outer slots
    0, 1, k + 1 and k + 2 and the reference's slot mean elsewhere. Returns (ref_pos, cur_pos,
    ref_weight, cur_weight) over all k + 3 slots (positions NaN where undefined); each mean is
    kept inside its slot, as rounding could move it out."""
    k = len(cuts)
    ref_weight, ref_sum = grid_slots(cuts, lo, hi, ref)
    cur_weight, cur_sum = grid_slots(cuts, lo, hi, cur, cur_w)
    bounds = np.concatenate([[lo], cuts, [hi]])  # slot s in 1..k+1 is [bounds[s-1], bounds[s]]
    ref_pos = np.full(k + 3, math.nan)
    for s in range(1, k + 2):
        a, b = bounds[s - 1], bounds[s]
        mean = ref_sum[s] / ref_weight[s] if ref_weight[s] > 0 else 0.5 * a + 0.5 * b
        ref_pos[s] = min(max(mean, a), b)
    cur_pos = ref_pos.copy()
    for s in sorted({0, 1, k + 1, k + 2}):
        if cur_weight[s] > 0:
            mean = cur_sum[s] / cur_weight[s]
            if s == 0:
                mean = min(mean, lo)
            elif s == k + 2:
                mean = max(mean, hi)
            else:
                mean = min(max(mean, bounds[s - 1]), bounds[s])
            cur_pos[s] = mean
    return ref_pos, cur_pos, ref_weight, cur_weight


def raw_ks(ref, cur, cur_w=None):
    """Two-sample KS statistic of the raw samples: scipy's ks_2samp, or for a weighted window
    the largest gap between the empirical CDFs at every sample value, with numpy."""
    if cur_w is None:
        return float(stats.ks_2samp(ref, cur, method="asymp").statistic)
    r = np.sort(ref)
    order = np.argsort(cur, kind="stable")
    c = cur[order]
    c_cdf = np.cumsum(cur_w[order]) / np.sum(cur_w)
    at = np.concatenate([r, c])
    f_ref = np.searchsorted(r, at, side="right") / len(r)
    i = np.searchsorted(c, at, side="right")
    f_cur = np.where(i > 0, c_cdf[np.maximum(i - 1, 0)], 0.0)
    return float(np.max(np.abs(f_ref - f_cur)))


def add_numeric(suite, name, ref, cur, n_quantile_bins=None, edges=None, raw=True, cur_w=None,
                accuracy=False):
    """A numeric feature: edges from reference quantiles (or given), binning, every statistic;
    the aggregator's grid of slots, its KS and Wasserstein; and the binning-error bounds against
    the raw samples. `cur_w` weights the window's values (None: 1 each); `accuracy` asserts the
    Wasserstein accuracy the product promises (W_GRID_*)."""
    if cur_w is not None:
        cur_w = np.asarray(cur_w, dtype=float)
    if edges is None:
        quantiles = np.quantile(ref, np.linspace(0.0, 1.0, n_quantile_bins + 1))
        edges = np.unique(quantiles)
        suite.add(f"{name}: edges_unique = numpy unique of the reference quantiles",
                  {"op": "edges_unique", "edges": quantiles},
                  lambda r, e=edges: check_exact("edges", e)(r) or
                  (None if r["rc"] == 0 else f"rc {r['rc']}"))
    edges = np.asarray(edges, dtype=float)
    probe = np.concatenate([ref[:3000], cur[:3000], edges, np.nextafter(edges, -np.inf),
                            np.nextafter(edges, np.inf), [-np.inf, np.inf, np.nan]])
    want_idx = np.where(np.isnan(probe), -1, np.searchsorted(edges, probe, side="right"))
    suite.add(f"{name}: bin_index = searchsorted(side='right') on {len(probe)} values",
              {"op": "bin_index", "edges": edges, "x": probe}, check_exact("index", want_idx))

    ref_p = bin_counts(edges, ref) / len(ref)
    counts = bin_counts(edges, cur, cur_w)
    add_binned(suite, name, ref_p, counts)

    # The grid: slots from the reference's percentiles and range.
    cuts, lo, hi = grid_cuts(ref)
    k = len(cuts)
    lo_hi = np.array([lo, hi])
    probe = np.concatenate([ref[:3000], cur[:3000], cuts, np.nextafter(cuts, -np.inf),
                            np.nextafter(cuts, np.inf), lo_hi, np.nextafter(lo_hi, -np.inf),
                            np.nextafter(lo_hi, np.inf), [-np.inf, np.inf, np.nan, -0.0]])
    suite.add(f"{name}: grid_slot = numpy where/searchsorted on {len(probe)} values "
              f"({k} cuts)",
              {"op": "grid_slot", "cuts": cuts, "ref_min": lo, "ref_max": hi, "x": probe},
              check_exact("slot", oracle_grid_slot(cuts, lo, hi, probe)))
    ref_pos, cur_pos, ref_weight, cur_weight = grid_positions(cuts, lo, hi, ref, cur, cur_w)
    slot_p = ref_weight / len(ref)
    suite.add(f"{name}: KS over the {k + 3} grid slots = numpy cumsum",
              {"op": "ks", "ref_p": slot_p, "counts": cur_weight},
              check_value(oracle_ks(slot_p, cur_weight), 0.0, ABS_KS))
    in_ref, in_cur = ref_weight > 0, cur_weight > 0
    w_case = {"op": "wasserstein_points", "ref_x": ref_pos[in_ref], "ref_w": slot_p[in_ref],
              "cur_x": cur_pos[in_cur], "cur_w": cur_weight[in_cur]}
    add_points(suite, f"{name}: grid slots", w_case["ref_x"], w_case["ref_w"],
               w_case["cur_x"], w_case["cur_w"])
    if not raw:
        return

    # Binning error of KS. The slot-level CDFs equal the raw empirical CDFs at the slot
    # boundaries (just below min and each cut, at max), so binned <= raw; inside slot i each raw
    # CDF moves by at most its own mass there, so raw - binned <= max_i min(r_i, c_i) <= the
    # largest reference slot proportion.
    cur_p = cur_weight / cur_weight.sum()
    ks_raw = raw_ks(ref, cur, cur_w)
    ks_slack = float(np.max(np.minimum(slot_p, cur_p)))
    raw_name = "ks_2samp" if cur_w is None else "weighted empirical CDFs"

    def check_ks_raw(res):
        gap = ks_raw - res["value"]
        if -ABS_KS <= gap <= ks_slack + ABS_KS:
            return None
        return f"binned {res['value']!r}, raw {raw_name} {ks_raw!r}: gap {gap!r} not in " \
               f"[0, {ks_slack!r}]"
    suite.add(f"{name}: KS over the grid at most max_i min(r_i, c_i) = {ks_slack:.3g} (<= "
              f"largest slot proportion {float(np.max(slot_p)):.3g}) below {raw_name} on raw "
              f"samples ({ks_raw:.3g})", {"op": "ks", "ref_p": slot_p, "counts": cur_weight},
              check_ks_raw)

    # Binning error of Wasserstein. The grid moves each sample x to its slot's position p(x);
    # the transport cost of that move is the (weighted) mean displacement mean|x - p(x)|, so by
    # the triangle inequality |W_grid - W_raw| <= mean displacement of the reference + of the
    # window. That holds for any data and is asserted everywhere; the product's promise,
    # max(2 % relative, 1 % of the reference's std), is asserted for the distributions it is
    # made for.
    w_raw = float(stats.wasserstein_distance(ref, cur, None, cur_w))
    ref_disp = float(np.mean(np.abs(ref - ref_pos[oracle_grid_slot(cuts, lo, hi, ref)])))
    cur_disp = float(np.average(np.abs(cur - cur_pos[oracle_grid_slot(cuts, lo, hi, cur)]),
                                weights=cur_w))
    w_bound = ref_disp + cur_disp

    def check_w_raw(res):
        err = abs(res["value"] - w_raw)
        if err <= w_bound * (1 + 1e-9) + 1e-12:
            return None
        return f"grid {res['value']!r}, raw {w_raw!r}: |diff| {err!r} > bound {w_bound!r}"
    suite.add(f"{name}: Wasserstein over the grid ({w_raw:.3g} raw) within the mean "
              f"displacement of the samples to their slot positions {w_bound:.3g}",
              w_case, check_w_raw)
    if not accuracy:
        return
    ref_std = float(np.std(ref))
    w_tol = max(W_GRID_REL * w_raw, W_GRID_ABS_PER_STD * ref_std)

    def check_w_accuracy(res):
        err = abs(res["value"] - w_raw)
        if err <= w_tol:
            return None
        return f"grid {res['value']!r}, raw scipy {w_raw!r}: |diff| {err!r} " \
               f"({err / w_raw:.3%} of raw, {err / ref_std:.3%} of ref std {ref_std!r}) > " \
               f"tolerance {w_tol!r}"
    suite.add(f"{name}: Wasserstein over the grid within max(2 %, 0.01 ref std) = {w_tol:.3g} "
              f"of scipy wasserstein_distance on raw samples ({w_raw:.3g})", w_case,
              check_w_accuracy)


# ----------------------------------------------------------------------------- scenarios

def numeric_scenarios(suite):
    rng = np.random.default_rng(20240601)
    ref = rng.normal(0.0, 1.0, 20000)
    add_numeric(suite, "numeric same distribution, 10 bins", ref,
                rng.normal(0.0, 1.0, 5000), 10, accuracy=True)
    add_numeric(suite, "numeric mean shift 0.5, 10 bins", ref, rng.normal(0.5, 1.0, 5000), 10,
                accuracy=True)
    add_numeric(suite, "numeric mean shift 0.1, 10 bins", ref, rng.normal(0.1, 1.0, 5000), 10,
                accuracy=True)
    add_numeric(suite, "numeric strong shift 6 sd, 10 bins", ref, rng.normal(6.0, 1.0, 5000), 10,
                accuracy=True)
    add_numeric(suite, "numeric variance x3 (out of range), 10 bins", ref,
                rng.normal(0.0, 3.0, 5000), 10, accuracy=True)
    lognormal = rng.lognormal(0.0, 1.0, 20000)
    add_numeric(suite, "numeric lognormal, 50 bins", lognormal,
                rng.lognormal(0.2, 1.1, 8000), 50, accuracy=True)
    add_numeric(suite, "numeric lognormal same distribution, 10 bins", lognormal,
                rng.lognormal(0.0, 1.0, 8000), 10, accuracy=True)
    exponential = rng.exponential(1.0, 20000)
    add_numeric(suite, "numeric exponential same distribution, 10 bins", exponential,
                rng.exponential(1.0, 5000), 10, accuracy=True)
    add_numeric(suite, "numeric exponential scale x1.3, 10 bins", exponential,
                rng.exponential(1.3, 5000), 10, accuracy=True)
    add_numeric(suite, "numeric exponential shifted by 0.5, 10 bins", exponential,
                0.5 + rng.exponential(1.0, 5000), 10, accuracy=True)
    # Weighted windows (fractional weights, as sampled events carry): values below 0 weigh 2.5,
    # the others 0.3; and random weights around 1.
    cur = rng.normal(0.3, 1.0, 5000)
    add_numeric(suite, "numeric weighted window (2.5 below 0, 0.3 above), shift 0.3", ref, cur,
                10, cur_w=np.where(cur < 0, 2.5, 0.3), accuracy=True)
    cur = rng.normal(0.0, 1.0, 5000)
    add_numeric(suite, "numeric weighted window (uniform weights in [0.1, 3]), same", ref, cur,
                10, cur_w=rng.uniform(0.1, 3.0, 5000), accuracy=True)
    cur = rng.lognormal(0.2, 1.0, 5000)
    add_numeric(suite, "numeric lognormal weighted window (weights 0.3, 1, 2.5)", lognormal, cur,
                20, cur_w=rng.choice([0.3, 1.0, 2.5], 5000), accuracy=True)
    uniform = rng.uniform(-1.0, 1.0, 20000)
    add_numeric(suite, "numeric uniform, 2 bins (single edge at the median)", uniform,
                rng.uniform(-0.5, 1.5, 3000), edges=[float(np.median(uniform))], raw=False)
    add_numeric(suite, "numeric uniform, 2 quantile bins", uniform,
                rng.uniform(-0.5, 1.5, 3000), 2)
    add_numeric(suite, "numeric window in 2 of 20 bins (empty bins)", ref,
                rng.uniform(0.05, 0.2, 400), 20)
    add_numeric(suite, "numeric single-sample window", ref, np.array([0.3]), 10)
    add_numeric(suite, "numeric single-sample window below the reference", ref,
                np.array([-50.0]), 10)
    # A constant feature: every quantile is 3.0, one edge survives, the whole reference sits in
    # the overflow bin [3, inf); window values 2.0 and 4.0 fall under and over it. On the grid
    # there are no cuts: slots 0, 1, 2.
    const = np.full(5000, 3.0)
    add_numeric(suite, "numeric constant feature (single edge)", const,
                np.concatenate([np.full(90, 3.0), np.full(5, 2.0), np.full(5, 4.0)]), 10)
    add_numeric(suite, "numeric constant feature, window also constant", const,
                np.full(70, 3.0), 10)
    # Integer-valued feature: many repeated quantiles, so fewer edges than requested.
    ints = rng.poisson(3.0, 20000).astype(float)
    add_numeric(suite, "numeric integer-valued (repeated quantiles)", ints,
                rng.poisson(3.5, 5000).astype(float), 20)

    # Identical binned distributions: window counts proportional to the reference's.
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
    ref_counts = bin_counts(edges, ref)
    values = bin_positions(edges, float(ref.min()), float(ref.max()))
    add_binned(suite, "numeric identical proportions", ref_counts / ref_counts.sum(),
               ref_counts * 3, expect_zero=True)
    add_binned(suite, "numeric identical proportions, fractional scale 0.3",
               ref_counts / ref_counts.sum(), ref_counts * 0.3, expect_zero=True)
    # Large counts: about 1e9 per bin, 1e10 in all.
    ref_p = ref_counts / ref_counts.sum()
    big_same = rng.multinomial(10**10, ref_p)
    add_binned(suite, "numeric 1e9-per-bin counts, same distribution", ref_p, big_same)
    add_points(suite, "numeric 1e9-per-bin counts, same distribution", values, ref_p, values,
               big_same)
    shifted = bin_counts(edges, rng.normal(0.05, 1.0, 20000)) / 20000
    big_shifted = rng.multinomial(10**10, shifted)
    add_binned(suite, "numeric 1e9-per-bin counts, shift 0.05 sd", ref_p, big_shifted)
    add_points(suite, "numeric 1e9-per-bin counts, shift 0.05 sd", values, ref_p, values,
               big_shifted)
    add_binned(suite, "numeric 1e9-per-bin exact multiples", ref_p, ref_counts * 10**6,
               expect_zero=True)
    # Fractional weighted counts: every event weighs 0.3, 1 or 2.5.
    frac = bin_counts(edges, rng.normal(0.2, 1.0, 3000), rng.choice([0.3, 1.0, 2.5], 3000))
    add_binned(suite, "numeric fractional weighted counts (0.3, 1, 2.5), shift 0.2", ref_p, frac)
    add_points(suite, "numeric fractional weighted counts", values, ref_p, values, frac)
    # PSI's floor matters only for empty bins; other floors change the answer and must match.
    sparse = bin_counts(edges, rng.uniform(0.05, 0.2, 400))
    for eps in (1e-6, 1e-3):
        suite.add(f"numeric empty bins: PSI with eps {eps:g} = numpy definition",
                  {"op": "psi", "ref_p": ref_p, "counts": sparse, "epsilon": eps},
                  check_value(oracle_psi(ref_p, sparse, eps), REL_CLOSED, ABS_PSI))
    # Disjoint supports: JS distance and KS are exactly 1.
    disjoint_ref = np.array([0.5, 0.5, 0.0, 0.0])
    disjoint_cur = np.array([0, 0, 7, 3])
    add_binned(suite, "disjoint supports", disjoint_ref, disjoint_cur)
    add_points(suite, "disjoint supports", [0., 1, 2, 3], disjoint_ref, [0., 1, 2, 3],
               disjoint_cur)
    for op in ("js", "ks"):
        suite.add(f"disjoint supports: {op} is 1",
                  {"op": op, "ref_p": disjoint_ref, "counts": disjoint_cur},
                  check_value(1.0, 0.0, 1e-15))
    disjoint_frac = np.array([0.0, 0.0, 2.5, 0.3])
    add_binned(suite, "disjoint supports, fractional counts", disjoint_ref, disjoint_frac)
    for op in ("js", "ks"):
        suite.add(f"disjoint supports, fractional counts: {op} is 1",
                  {"op": op, "ref_p": disjoint_ref, "counts": disjoint_frac},
                  check_value(1.0, 0.0, 1e-15))


def wasserstein_points_random(suite):
    """mw_drift_wasserstein_points on random point sets against scipy: continuous, tied
    (repeated positions within and across the sides), heavy-tailed, with fractional and zero
    weights, and very unequal sizes."""
    rng = np.random.default_rng(5150)

    def side(x, w):
        order = np.argsort(x, kind="stable")
        return np.asarray(x, dtype=float)[order], np.asarray(w, dtype=float)[order]

    def weights(n, kind):
        if kind == "ones":
            return np.ones(n)
        if kind == "fractional":
            return rng.uniform(0.01, 3.0, n)
        if kind == "steps":
            return rng.choice([0.3, 1.0, 2.5], n)
        # some zero weights, never all of them
        w = rng.choice([0.0, 0.0, 0.3, 2.5], n)
        w[rng.integers(n)] = 1.0
        return w

    kinds = ("ones", "fractional", "steps", "zeros")
    for i in range(8):
        n, m = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        kind = kinds[i % 4]
        rx, rw = side(rng.normal(0, 1, n), weights(n, kind))
        cx, cw = side(rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), m), weights(m, kind))
        add_points(suite, f"random normal #{i} ({kind} weights)", rx, rw, cx, cw)
    for i in range(8):
        # Ties: positions from a few integers, shared by both sides.
        n, m = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        kind = kinds[i % 4]
        rx, rw = side(rng.integers(0, 6, n), weights(n, kind))
        cx, cw = side(rng.integers(2, 8, m), weights(m, kind))
        add_points(suite, f"random ties on integers #{i} ({kind} weights)", rx, rw, cx, cw)
    # Identical positions on both sides, different weights.
    x = np.repeat(np.arange(10.0), 3)
    add_points(suite, "ties: same positions, different fractional weights", x,
               rng.uniform(0, 1, 30), x, rng.uniform(0, 1, 30))
    for i in range(6):
        n, m = int(rng.integers(2, 400)), int(rng.integers(2, 400))
        kind = kinds[i % 4]
        if i % 2 == 0:
            rx, cx = rng.standard_cauchy(n), rng.standard_cauchy(m) * 2 + 1
            label = "Cauchy"
        else:
            rx, cx = rng.pareto(1.1, n), rng.pareto(0.9, m) + 0.5
            label = "Pareto"
        rx, rw = side(rx, weights(n, kind))
        cx, cw = side(cx, weights(m, kind))
        add_points(suite, f"random heavy tails ({label}) #{i} ({kind} weights)", rx, rw, cx, cw)
    # Heavy-tailed weights.
    rx, rw = side(rng.normal(0, 1, 100), rng.lognormal(0, 3, 100))
    cx, cw = side(rng.normal(0.2, 1, 150), rng.lognormal(0, 3, 150))
    add_points(suite, "random lognormal(0, 3) weights", rx, rw, cx, cw)
    # Very unequal sizes, far from the origin.
    rx, rw = side(1e6 + rng.normal(0, 1, 1000), weights(1000, "fractional"))
    add_points(suite, "1000 points against 1, around 1e6", rx, rw, [1e6 + 0.25], [0.3])
    add_points(suite, "1 point against 1000, around 1e6", [1e6 - 3.0], [2.5], rx, rw)
    add_points(suite, "single points", [2.0], [0.3], [5.0], [7.0])


def categorical_scenarios(suite):
    rng = np.random.default_rng(7)

    def with_unseen(p, unseen_p=0.0):
        return np.concatenate([np.asarray(p, dtype=float) * (1 - unseen_p), [unseen_p]])

    p6 = np.array([0.4, 0.25, 0.15, 0.1, 0.07, 0.03])
    ref6 = with_unseen(p6)
    add_binned(suite, "categorical same distribution", ref6,
               np.append(rng.multinomial(3000, p6), 0), ordered=False)
    add_binned(suite, "categorical shifted", ref6,
               np.append(rng.multinomial(3000, [0.1, 0.1, 0.2, 0.2, 0.2, 0.2]), 0), ordered=False)
    unseen_counts = np.append(rng.multinomial(2900, p6), 100)
    add_binned(suite, "categorical with unseen categories (reference slot 0)", ref6,
               unseen_counts, ordered=False)
    stat, p, resid = oracle_chi2(p6, unseen_counts[:6])
    suite.add("categorical with unseen: chi-squared over known categories (n_bins = 6)",
              {"op": "chi2", "ref_p": ref6, "counts": unseen_counts, "n_bins": 6},
              check_chi2(stat, p, resid, 5))
    suite.add("categorical with unseen: unseen share",
              {"op": "rate", "kind": "unseen", "part": 100, "total": int(unseen_counts.sum())},
              check_value(100 / int(unseen_counts.sum()), 1e-15, 0.0))
    add_binned(suite, "categorical with unseen categories (reference slot 0.001)",
               with_unseen(p6, 0.001), unseen_counts, ordered=False)
    p50 = rng.dirichlet(np.full(50, 0.5))
    sparse50 = np.zeros(50, dtype=np.int64)
    sparse50[:5] = rng.multinomial(200, p50[:5] / p50[:5].sum())
    add_binned(suite, "categorical 50 categories, same distribution", p50,
               rng.multinomial(20000, p50), ordered=False)
    add_binned(suite, "categorical 50 categories, window in 5 (empty categories)", p50,
               sparse50, ordered=False)
    add_binned(suite, "categorical 2 categories", [0.7, 0.3],
               rng.multinomial(1000, [0.6, 0.4]), ordered=False)
    add_binned(suite, "categorical single-sample window", ref6, [0, 0, 1, 0, 0, 0, 0],
               ordered=False)
    add_binned(suite, "categorical 1e9 counts, same distribution", ref6,
               np.append(rng.multinomial(6 * 10**9, p6), 0), ordered=False)
    add_binned(suite, "categorical 1e9 counts, slight shift", ref6,
               np.append(rng.multinomial(6 * 10**9, [0.401, 0.249, 0.15, 0.1, 0.07, 0.03]), 0),
               ordered=False)
    add_binned(suite, "categorical identical proportions", ref6,
               np.append(np.rint(p6 * 10000), 0),
               ordered=False, expect_zero=True)
    # df = 0: one category in the reference, nothing unseen. scipy: statistic 0, p NaN.
    add_binned(suite, "categorical single reference category (df 0)", [1.0, 0.0], [42, 0],
               ordered=False)
    add_binned(suite, "categorical single reference category, unseen values", [1.0, 0.0],
               [42, 3], ordered=False)
    # Fractional weighted counts (sampled events weigh 0.3, 1 or 2.5).
    cats = rng.choice(6, 4000, p=[0.3, 0.3, 0.15, 0.1, 0.1, 0.05])
    add_binned(suite, "categorical fractional weighted counts", ref6,
               np.append(np.bincount(cats, weights=rng.choice([0.3, 1.0, 2.5], len(cats)),
                                     minlength=6), 0.0), ordered=False)
    add_binned(suite, "categorical fractional counts with unseen 0.3", ref6,
               [2.5, 0.3, 1.2, 0.0, 0.7, 0.1, 0.3], ordered=False)
    add_binned(suite, "categorical window below one observation", ref6,
               [0.25, 0.0, 0.125, 0.0, 0.0, 0.0, 0.0], ordered=False)
    # Unnormalized reference proportions are normalized.
    add_binned(suite, "categorical reference summing to 3", p6 * 3,
               rng.multinomial(500, p6), ordered=False)
    # Flooring applies to normalized proportions: an unnormalized reference with empty slots.
    add_binned(suite, "categorical reference summing to 40, empty slots", [30.0, 0.0, 10.0, 0.0],
               [2, 1, 1, 0], ordered=False)


def chi2_sf_grid(suite):
    """mw_chi2_sf over (x, df) against scipy.stats.chi2.sf, one TAP line per df."""
    for df in (1, 2, 3, 4, 5, 7, 10, 20, 50, 100, 300, 1000, 10000, 0.5, 2.5):
        xs = np.concatenate([[0.0, 1e-300, 1e-100, 1e-20, 1e-8],
                             np.geomspace(1e-6, 1e5, 120), df * np.linspace(0.01, 5.0, 120),
                             [df + 1e-9, 2 * df, 5e5, 1e6, 1e300]])
        want = stats.chi2.sf(xs, df)

        def check(res, xs=xs, want=want, df=df):
            for x, g, w in zip(xs, res["value"], want):
                if not close(g, w, REL_SF, ABS_SF_SUBNORMAL):
                    return f"df {df}, x {x!r}: got {g!r}, scipy {w!r}"
            return None
        suite.add(f"chi2_sf = scipy chi2.sf, df {df}, x from 0 to 1e300 ({len(xs)} points)",
                  {"op": "chi2_sf", "x": xs, "df": np.full(len(xs), float(df))}, check)

    special_x = [-1.0, 0.0, math.inf, math.nan, 1.0, 1.0, 1.0, 1.0]
    special_df = [3.0, 3.0, 3.0, 3.0, 0.0, -1.0, math.inf, math.nan]
    want = [1.0, 1.0, 0.0, math.nan, math.nan, math.nan, math.nan, math.nan]
    suite.add("chi2_sf edge arguments: x < 0 -> 1, inf -> 0, NaN and df <= 0 / inf -> NaN",
              {"op": "chi2_sf", "x": special_x, "df": special_df}, check_exact("value", want))

    a_grid, x_grid = np.meshgrid([0.05, 0.5, 1.0, 2.5, 10.0, 33.3, 500.0, 5000.0],
                                 np.concatenate([[0.0], np.geomspace(1e-10, 2e4, 60)]))
    a_flat, x_flat = a_grid.ravel(), x_grid.ravel()
    want_q = special.gammaincc(a_flat, x_flat)

    def check_q(res):
        for a, x, g, w in zip(a_flat, x_flat, res["value"], want_q):
            if not close(g, w, REL_SF, ABS_SF_SUBNORMAL):
                return f"Q({a!r}, {x!r}): got {g!r}, scipy gammaincc {w!r}"
        return None
    suite.add(f"gamma_q = scipy gammaincc on {len(a_flat)} (a, x) points",
              {"op": "gamma_q", "a": a_flat, "x": x_flat}, check_q)


def ks_p_value_grid(suite):
    """mw_drift_ks_p_value over D x (n, m) against scipy.stats.kstwobign.sf, one TAP line per
    (n, m): D on a grid from 0 to 1 plus the D that put lambda = en D at and around the series'
    switch points (0.2 and 1) and deep in the tail."""
    sizes = [(1, 1), (1, 1000), (2, 3), (10, 10), (30, 70), (100, 100), (100, 5000),
             (1000, 1000), (20000, 5000), (10**5, 10**5), (10**6, 300), (10**7, 10**7),
             (1e12, 1e12), (2.5, 7.75)]
    lambdas = np.array([1e-3, 0.1, 0.19, 0.199999, 0.2, 0.200001, 0.21, 0.3, 0.5, 0.8, 0.999999,
                        1.0, 1.000001, 1.2, 1.36, 1.63, 2.0, 3.0, 5.0, 10.0, 19.0, 26.0, 30.0])
    for n, m in sizes:
        en = math.sqrt(n * m / (n + m))
        ds = np.unique(np.concatenate([[0.0, 1e-12, 1e-6], np.geomspace(1e-4, 1.0, 80),
                                       np.linspace(0.0, 1.0, 201), lambdas / en]))
        want = stats.kstwobign.sf(en * ds)

        def check(res, ds=ds, want=want, n=n, m=m):
            for d, g, w in zip(ds, res["value"], want):
                if not 0.0 <= g <= 1.0 or abs(g - w) > ABS_KS_P:
                    return f"n {n}, m {m}, D {d!r}: got {g!r}, kstwobign.sf {w!r} " \
                           f"(abs {ABS_KS_P:g})"
                if w < 1e-3 and not close(g, w, REL_KS_P_TAIL, ABS_SF_SUBNORMAL):
                    return f"n {n}, m {m}, D {d!r}: tail p {g!r}, kstwobign.sf {w!r} " \
                           f"(rel {REL_KS_P_TAIL:g})"
            return None
        suite.add(f"ks_p_value = scipy kstwobign.sf(en D), n {n:g}, m {m:g} ({len(ds)} D values)",
                  {"op": "ks_p_value", "d": ds, "n_ref": np.full(len(ds), float(n)),
                   "n_cur": np.full(len(ds), float(m))}, check)

    # Symmetric in the two sizes; monotone non-increasing in D.
    ds = np.linspace(0.0, 1.0, 101)
    suite.add("ks_p_value symmetric in n_ref and n_cur, non-increasing in D",
              {"op": "ks_p_value", "d": np.concatenate([ds, ds]),
               "n_ref": np.concatenate([np.full(101, 40.0), np.full(101, 90.0)]),
               "n_cur": np.concatenate([np.full(101, 90.0), np.full(101, 40.0)])},
              check_pred("p(D; 40, 90) == p(D; 90, 40) and p non-increasing",
                         lambda r: r["value"][:101] == r["value"][101:] and
                         all(a >= b for a, b in zip(r["value"][:100], r["value"][1:101]))))

    nan, inf = math.nan, math.inf
    # (d, n_ref, n_cur) -> p. An infinite size is the one-sample limit: en = the other size.
    edge = [((nan, 10, 10), nan), ((-0.1, 10, 10), nan), ((-inf, 10, 10), nan),
            ((0.1, 0, 10), nan), ((0.1, 10, 0), nan), ((0.1, -5, 10), nan),
            ((0.1, nan, 10), nan), ((0.1, 10, nan), nan), ((0.1, -inf, 10), nan),
            ((0.0, 10, 10), 1.0), ((0.0, inf, inf), 1.0), ((0.0, 1e-300, 1e-300), 1.0),
            ((inf, 10, 10), 0.0), ((1.0, 1e6, 1e6), 0.0), ((0.05, 10, 10), 1.0),
            ((0.5, 100, inf), float(stats.kstwobign.sf(5.0))),
            ((0.5, inf, 100), float(stats.kstwobign.sf(5.0))),
            ((0.1, inf, inf), 0.0)]
    def check_edge(res):
        for (args, w), g in zip(edge, res["value"]):
            if not close(g, w, REL_KS_P_TAIL, 0.0):
                return f"ks_p_value{args}: got {g!r}, want {w!r}"
        return None
    suite.add("ks_p_value edge arguments: NaN / negative D or sizes <= 0 / NaN -> NaN, D = 0 "
              "-> 1, D = inf -> 0, an infinite size -> the one-sample limit",
              {"op": "ks_p_value", "d": [a[0] for a, _ in edge],
               "n_ref": [a[1] for a, _ in edge], "n_cur": [a[2] for a, _ in edge]}, check_edge)


def degenerate_cases(suite):
    """Degenerate input gives NaN (or MW_EINVAL = -1), never a crash."""
    nan = math.nan
    for op in ("psi", "js", "ks"):
        for desc, case in (("empty window", {"ref_p": [0.5, 0.5], "counts": [0, 0]}),
                           ("all-zero reference", {"ref_p": [0.0, 0.0], "counts": [1, 2]}),
                           ("zero bins", {"ref_p": [], "counts": []}),
                           ("NULL reference", {"ref_p": None, "counts": [1, 2]}),
                           ("negative reference", {"ref_p": [-0.5, 1.5], "counts": [1, 2]}),
                           ("NaN reference", {"ref_p": [nan, 1.0], "counts": [1, 2]})):
            suite.add(f"{op}: {desc} -> NaN", dict(case, op=op, epsilon=1e-4),
                      check_fields(value=nan))
    for eps in (0.0, 1.0, nan):
        suite.add(f"psi: epsilon {eps} -> NaN",
                  {"op": "psi", "ref_p": [0.5, 0.5], "counts": [1, 2], "epsilon": eps},
                  check_fields(value=nan))
    inf = math.inf
    for op in ("psi", "js", "ks"):
        for desc, counts in (("negative count", [-0.5, 2.0]), ("NaN count", [nan, 1.0]),
                             ("infinite count", [inf, 1.0]),
                             ("total overflowing", [1.7e308, 1.7e308])):
            suite.add(f"{op}: {desc} -> NaN",
                      {"op": op, "ref_p": [0.5, 0.5], "counts": counts, "epsilon": 1e-4},
                      check_fields(value=nan))
        suite.add(f"{op}: NULL window -> NaN",
                  {"op": op, "ref_p": [0.5, 0.5], "counts": None, "epsilon": 1e-4},
                  check_fields(value=nan))
    good = {"ref_x": [0.0, 1.0, 2.0], "ref_w": [0.3, 0.3, 0.4], "cur_x": [0.5, 1.5],
            "cur_w": [1.0, 2.5]}
    for desc, change in (("decreasing reference positions", {"ref_x": [0.0, 2.0, 1.0]}),
                         ("decreasing window positions", {"cur_x": [1.5, 0.5]}),
                         ("NaN position", {"ref_x": [0.0, nan, 2.0]}),
                         ("infinite position", {"cur_x": [0.5, inf]}),
                         ("negative weight", {"cur_w": [-0.5, 2.5]}),
                         ("NaN weight", {"ref_w": [0.3, nan, 0.4]}),
                         ("infinite weight", {"ref_w": [0.3, inf, 0.4]}),
                         ("all-zero window weights", {"cur_w": [0.0, 0.0]}),
                         ("all-zero reference weights", {"ref_w": [0.0, 0.0, 0.0]}),
                         ("empty window", {"cur_x": [], "cur_w": []}),
                         ("empty reference", {"ref_x": [], "ref_w": []}),
                         ("NULL reference positions", {"ref_x": None}),
                         ("NULL window weights", {"cur_w": None})):
        suite.add(f"wasserstein_points: {desc} -> NaN",
                  dict(good, op="wasserstein_points", **change), check_fields(value=nan))
    suite.add("wasserstein_points: the well-formed case of those is a number",
              dict(good, op="wasserstein_points"),
              check_value(float(stats.wasserstein_distance(
                  good["ref_x"], good["cur_x"], good["ref_w"], good["cur_w"])), REL_CLOSED,
                  ABS_W_PER_SPAN * 2))
    suite.add("chi2: empty window -> rc 0, NaN, NaN",
              {"op": "chi2", "ref_p": [0.5, 0.5], "counts": [0, 0]},
              check_fields(rc=0, statistic=nan, p_value=nan))
    suite.add("chi2: all-zero reference -> MW_EINVAL, NaN",
              {"op": "chi2", "ref_p": [0.0, 0.0], "counts": [1, 2]},
              check_fields(rc=-1, statistic=nan, p_value=nan))
    suite.add("chi2: zero bins -> MW_EINVAL",
              {"op": "chi2", "ref_p": [], "counts": []}, check_fields(rc=-1))
    for desc, counts in (("negative count", [-0.5, 2.0]), ("NaN count", [nan, 1.0]),
                         ("infinite count", [inf, 1.0]), ("negative count, zero total",
                                                          [-1.0, 1.0])):
        suite.add(f"chi2: {desc} -> MW_EINVAL, NaN",
                  {"op": "chi2", "ref_p": [0.5, 0.5], "counts": counts},
                  check_fields(rc=-1, statistic=nan, p_value=nan))
    suite.add("edges_unique: decreasing -> MW_EINVAL",
              {"op": "edges_unique", "edges": [1.0, 0.0]}, check_fields(rc=-1))
    suite.add("edges_unique: NaN edge -> MW_EINVAL",
              {"op": "edges_unique", "edges": [0.0, nan]}, check_fields(rc=-1))
    suite.add("grid_slot: no cuts (constant feature) -> slots 0, 1, 2",
              {"op": "grid_slot", "cuts": [], "ref_min": 3.0, "ref_max": 3.0,
               "x": [-inf, 2.0, float(np.nextafter(3.0, 0.0)), 3.0,
                     float(np.nextafter(3.0, 4.0)), inf, nan]},
              check_exact("slot", [0, 0, 0, 1, 2, 2, -1]))
    suite.add("grid_slot: NULL cuts with n_cuts 2 -> no slot",
              {"op": "grid_slot", "cuts": None, "n_cuts": 2, "ref_min": 0.0, "ref_max": 1.0,
               "x": [0.5, -1.0]}, check_exact("slot", [-1, -1]))
    suite.add("grid_slot: NULL cuts with n_cuts 0 -> slots 0, 1, 2",
              {"op": "grid_slot", "cuts": None, "ref_min": 0.0, "ref_max": 1.0,
               "x": [-1.0, 0.0, 1.0, 2.0]}, check_exact("slot", [0, 1, 1, 2]))
    suite.add("bin_index: no edges -> one bin",
              {"op": "bin_index", "edges": [], "x": [-1.0, 0.0, math.inf]},
              check_exact("index", [0, 0, 0]))
    for kind in ("rate", "unseen", "missing", "out_of_range"):
        suite.add(f"{kind} rate: 3 of 12 = 0.25",
                  {"op": "rate", "kind": kind, "part": 3, "total": 12},
                  check_value(0.25, 0.0, 0.0))
        suite.add(f"{kind} rate: empty -> NaN",
                  {"op": "rate", "kind": kind, "part": 0, "total": 0}, check_fields(value=nan))
        suite.add(f"{kind} rate: part > total -> NaN",
                  {"op": "rate", "kind": kind, "part": 5, "total": 4}, check_fields(value=nan))
    for x, want in ((-0.1, True), (0.0, False), (1.0, False), (1.5, True), (nan, False)):
        suite.add(f"out_of_range({x}) in [0, 1] is {want}",
                  {"op": "out_of_range", "x": x, "ref_min": 0.0, "ref_max": 1.0},
                  check_fields(value=want))


def main():
    if len(sys.argv) != 2:
        print("usage: test_drift_oracle.py PATH_TO_drift_driver", file=sys.stderr)
        return 2
    start = time.monotonic()
    suite = Suite()
    numeric_scenarios(suite)
    categorical_scenarios(suite)
    chi2_sf_grid(suite)
    ks_p_value_grid(suite)
    degenerate_cases(suite)
    status = suite.run(sys.argv[1])
    print(f"test_drift_oracle: {time.monotonic() - start:.1f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
