"""What drift should be, computed with numpy/scipy from raw values, for the integration tests.

Nothing here uses the aggregator's bins or sketches: the reference profile is built from the raw
reference sample by the definition in tools/profile_build.h (format 2), and every expected
statistic comes from the raw reference and window values:

  PSI, JS      the profile's decile regions of [min, max] plus a region below min and one above
               max; shares floored at 1e-4 for PSI (not renormalized); JS in base 2 (scipy)
  KS           scipy.stats.ks_2samp on the raw samples
  Wasserstein  scipy.stats.wasserstein_distance on the raw samples (with the window's weights)
  chi-squared  scipy.stats.chisquare on the values observed, expected from the reference shares
"""
import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

EPS = 1e-4
GRID_Q = np.arange(1, 100) / 100  # percentiles: the fine grid
DECILE_Q = np.arange(1, 10) / 10  # the PSI regions; q = 0.1 is the same double in both


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


def numeric_profile(values):
    """A numeric feature's profile entry (format 2) from its raw reference values."""
    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    cuts = np.unique(np.quantile(v, np.concatenate([GRID_Q, DECILE_Q])))
    cuts = cuts[(cuts > lo) & (cuts < hi)]
    deciles = np.unique(np.quantile(v, DECILE_Q))
    deciles = deciles[(deciles > lo) & (deciles < hi)]
    region = np.searchsorted(cuts, v, side="right")
    counts = np.bincount(region, minlength=len(cuts) + 1)
    sums = np.bincount(region, weights=v, minlength=len(cuts) + 1)
    return {"type": "numeric", "count": int(len(v)), "missing": 0, "min": lo, "max": hi,
            "mean": float(v.mean()), "std": float(v.std()), "cuts": cuts.tolist(),
            "region_counts": [int(c) for c in counts], "region_sums": sums.tolist(),
            "deciles": deciles.tolist()}


def categorical_profile(shares, other, count):
    return {"type": "categorical", "count": count, "missing": 0, "categories": shares,
            "other": other}


def profile_document(model, version, features, rows):
    return {"format": 2, "model": model, "version": version, "created_ms": 1, "rows": rows,
            "features": features}


def psi_regions(deciles, lo, hi, x):
    x = np.asarray(x, dtype=float)
    k = len(deciles)
    return np.where(x < lo, 0, np.where(x > hi, k + 2,
                                        1 + np.searchsorted(np.asarray(deciles), x, side="right")))


def psi(ref_share, cur_share):
    r, c = np.maximum(ref_share, EPS), np.maximum(cur_share, EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def expected_numeric(ref_values, entry, cur_values, weights=None):
    """Every numeric statistic of a window holding cur_values (with weights) against the
    reference sample the profile entry was built from."""
    ref = np.asarray(ref_values, dtype=float)
    cur = np.asarray(cur_values, dtype=float)
    w = np.ones(len(cur)) if weights is None else np.asarray(weights, dtype=float)
    dec, lo, hi = entry["deciles"], entry["min"], entry["max"]
    n_bins = len(dec) + 3
    ref_share = np.bincount(psi_regions(dec, lo, hi, ref), minlength=n_bins) / len(ref)
    cur_share = np.bincount(psi_regions(dec, lo, hi, cur), weights=w, minlength=n_bins) / w.sum()
    wd = float(stats.wasserstein_distance(ref, cur, None, w))
    below, above = float(w[cur < lo].sum() / w.sum()), float(w[cur > hi].sum() / w.sum())
    return {"psi": psi(ref_share, cur_share),
            "js_distance": float(distance.jensenshannon(ref_share, cur_share, base=2)),
            "ks": float(stats.ks_2samp(ref, cur).statistic),
            "wasserstein": wd,
            "wasserstein_normed": wd / entry["std"] if entry["std"] > 0 else None,
            "below_range_rate": below, "above_range_rate": above,
            "out_of_range_rate": below + above,
            "weighted_count": float(w.sum()), "observed": len(cur)}


def ks_p_value(d, n_ref, n_cur):
    """The aggregator's KS p-value: the asymptotic Kolmogorov distribution at sqrt(n m/(n+m)) D
    with the number of values observed."""
    return float(stats.kstwobign.sf(math.sqrt(n_ref * n_cur / (n_ref + n_cur)) * d))


def expected_categorical(entry, values, weights=None):
    cats = sorted(entry["categories"])
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    known = set(cats)
    counts = np.array([w[[v == c for v in values]].sum() for c in cats] +
                      [w[[v not in known for v in values]].sum()])
    observed = np.array([sum(v == c for v in values) for c in cats] +
                        [sum(v not in known for v in values)], dtype=float)
    ref = np.array([entry["categories"][c] for c in cats] + [entry["other"]])
    cur_share = counts / counts.sum()
    out = {"psi": psi(ref, cur_share),
           "js_distance": float(distance.jensenshannon(ref, cur_share, base=2)),
           "unseen_share": float(cur_share[-1]), "weighted_count": float(counts.sum()),
           "observed": len(values)}
    if ref[-1] == 0 and observed[-1] > 0:
        out["chi2_p_value"], out["chi2_statistic"] = 0.0, "inf"
    else:
        keep = ref > 0
        test = stats.chisquare(observed[keep], ref[keep] / ref[keep].sum() * observed.sum())
        out["chi2_p_value"], out["chi2_statistic"] = float(test.pvalue), float(test.statistic)
    return out


def close(got, want, rel=1e-9, abs_=1e-12):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got is not None and abs(got - want) <= max(abs_, rel * abs(want))
