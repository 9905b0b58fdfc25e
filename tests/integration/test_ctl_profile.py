#!/usr/bin/env python3
"""modelwatch-ctl profile build / push / show and drift, with the real binaries.

Part 1, offline: CSV files generated here with numpy (normal, log-normal, Poisson integers, 40 %
zeros (half of them written -0.0) among negatives and positives, 30 % zeros below positives, a
100-category Zipf column with commas, quotes and newlines inside values, a constant, forced
categorical zip codes, missing values in every spelling, an all-empty column, a numeric column
with one stray "?") are profiled by `modelwatch-ctl profile build` and compared with numpy on
the raw values (profile format 2, tools/profile_build.h):
  - below the sample cap (100,000 values per column) the cuts equal numpy.quantile at i/G and
    j/B (G = --grid-bins, B = --bins), unique, strictly inside (min, max), bit for bit (-0.0 as
    +0.0), and the deciles numpy.quantile at j/B the same way (so a quantile equal to min, as
    in the 30 % zeros column, is no decile); the region counts equal
    numpy.searchsorted(cuts, x, side="right") counts exactly, the region sums numpy's sums to
    1e-12 relative (and the exact math.fsum to 2 ulp); min/max exactly, the mean and the
    standard deviation (numpy.std, ddof 0) to 1e-12, also for a column of mean 1e9 and sd 1 and
    for 17 values orders of magnitude apart; at the defaults, at --bins 20 --grid-bins 37 and
    at --bins 100 --grid-bins 1000; a constant column has no cut, no decile and one region;
  - above it (300,000 rows) every cut's and decile's rank is within the documented bound of
    its quantile: q in [share below - 0.01 - 1e-5, share at or below + 0.01 + 1e-5]; the
    region counts and sums over the profile's cuts are still exact, and the same file gives
    the same profile;
  - categories: the top --max-categories by count (ties by value) with exact shares, the rest
    in `other`;
  - a malformed CSV exits 1 with `FILE:LINE: ...` on stderr, for each kind of error.

Part 2, against the aggregator (redis-server, modelwatch-devkafka, the aggregator and an agent
on loopback), the newcomer's path: reference traffic dumped to CSV by the load generator ->
`profile build` -> `profile push` -> `profile show` (table and JSON round trip, newest version)
-> unshifted traffic and traffic shifted by 20 -> `modelwatch-ctl drift` flags every shifted
numeric feature as drift and nothing else, and its numbers are the API's. API errors come back
as the API's message with exit status 1.

Run: /usr/bin/python3 test_ctl_profile.py BUILD_ROOT  (TAP on stdout).
"""
import csv
import json
import math
import os
import re
import subprocess
import time
from collections import Counter

import numpy as np

from harness import TestFailure, api_data, metrics, run, wait_for

MISSING = {"", "na", "nan", "null"}
SAMPLE_CAP = 100_000
RANK_BOUND = 0.01 + 1.0 / SAMPLE_CAP


def ctl(cluster, *args, api=None, stdin=None):
    argv = [cluster.binary("tools/modelwatch-ctl")]
    if api:
        argv += ["--api", api]
    return subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600, input=stdin)


def build(cluster, csv_path, *options):
    """Run profile build; returns the parsed profile (stdout) and the process."""
    p = ctl(cluster, "profile", "build", *options, csv_path)
    if p.returncode != 0:
        raise TestFailure(f"profile build failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout), p


def without_created(doc):
    return {k: v for k, v in doc.items() if k != "created_ms"}


# --- oracles ----------------------------------------------------------------------------------
def is_missing(v):
    return v.lower() in MISSING


def bits(a):
    """The doubles of `a` as int64 bit patterns, -0.0 counted as +0.0 (the profile writes a zero
    cut as +0.0; numpy may give -0.0, which compares equal)."""
    return (np.asarray(a, dtype=float) + 0.0).view(np.int64)


def numpy_grid(values, grid, bins):
    """Cuts and deciles exactly as profile_build.h defines them, from numpy.quantile."""
    q_grid = [i / grid for i in range(1, grid)]  # (double)i / G, as the C code computes q
    q_bins = [j / bins for j in range(1, bins)]
    lo, hi = values.min(), values.max()
    cuts = np.unique(np.quantile(values, q_grid + q_bins))
    deciles = np.unique(np.quantile(values, q_bins))
    return (cuts[(cuts > lo) & (cuts < hi)], deciles[(deciles > lo) & (deciles < hi)],
            np.array(q_grid + q_bins), np.array(q_bins))


def numpy_regions(values, cuts):
    """Count, numpy sum, exact sum (math.fsum) and sum of |x| of the values in each region
    [min, c_1), [c_1, c_2), ..., [c_k, max]: region = numpy.searchsorted(cuts, x, 'right')."""
    region = np.searchsorted(cuts, values, side="right")
    counts = np.bincount(region, minlength=len(cuts) + 1)
    order = np.argsort(region, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    parts = [values[order[bounds[k]:bounds[k + 1]]] for k in range(len(cuts) + 1)]
    return (counts, np.array([part.sum() for part in parts]),
            np.array([math.fsum(part) for part in parts]),
            np.array([np.abs(part).sum() for part in parts]))


def rank_ok(s, points, qs):
    """Whether the sampled quantiles `points` of the sorted column s are within RANK_BOUND of
    their quantiles qs: q in [share below - bound, share at or below + bound]. When there are
    as many points as distinct q (no ties, none at min or max), point k stands for the k-th q;
    otherwise every q must be represented by a point, or by the min or the max (which are no
    cut), and every point by a q. Returns (ok, worst rank gap)."""
    n = len(s)
    qs = np.unique(qs)
    lo = np.searchsorted(s, points, side="left") / n
    hi = np.searchsorted(s, points, side="right") / n
    if len(points) == len(qs):
        gap = np.maximum(np.maximum(lo - qs, qs - hi), 0)
        return bool(np.all(gap <= RANK_BOUND)), float(gap.max())
    share_min, share_max = np.sum(s == s[0]) / n, np.sum(s == s[-1]) / n
    lo = np.concatenate([lo, [0.0, 1.0 - share_max]])  # then the min's and the max's
    hi = np.concatenate([hi, [share_min, 1.0]])
    gap = np.maximum(np.maximum(lo[None, :] - qs[:, None], qs[:, None] - hi[None, :]), 0)
    ok_q = bool(np.all(gap.min(axis=1) <= RANK_BOUND))
    ok_p = bool(np.all(gap[:, :len(points)].min(axis=0) <= RANK_BOUND))
    return ok_q and ok_p, float(gap.min(axis=1).max())


def numeric_checks(tap, label, feat, values, n_missing, bins=10, grid=100, sampled=False):
    """Compare one numeric feature of a profile with numpy on the same raw values."""
    values = np.asarray(values, dtype=float)
    tap.check(feat["type"] == "numeric" and feat["count"] == len(values)
              and feat["missing"] == n_missing and "edges" not in feat
              and "proportions" not in feat, f"{label}: numeric, count and missing",
              f"{feat['type']} {feat['count']} {feat['missing']} vs {len(values)} {n_missing}")
    tap.check(feat["min"] == values.min() and feat["max"] == values.max()
              and abs(feat["mean"] - values.mean()) <= 1e-12 * max(1.0, abs(values.mean())),
              f"{label}: min and max exact, mean within 1e-12",
              f"{feat['min']} {feat['max']} {feat['mean']} vs {values.min()} {values.max()} "
              f"{values.mean()}")
    # numpy.std is two-pass (pairwise mean, then squared deviations): within ~1e-14 of the exact
    # value on these columns, as is the profile's shifted Welford, so 1e-12 relative has ~100x
    # slack. A constant column must give exactly 0 (numpy's can be off by its mean's rounding).
    want_std = 0.0 if values.min() == values.max() else float(values.std())
    tap.check(feat["std"] is not None and abs(feat["std"] - want_std) <= 1e-12 * want_std,
              f"{label}: std = numpy.std (ddof 0) within 1e-12 relative",
              f"{feat.get('std')!r} vs {want_std!r}")
    cuts = np.array(feat["cuts"], dtype=float)
    deciles = np.array(feat["deciles"], dtype=float)
    tap.check(bool(np.all(np.diff(cuts) > 0)) and bool(np.all(cuts > values.min()))
              and bool(np.all(cuts < values.max())) and len(cuts) <= grid - 1 + bins - 1
              and not any(c == 0 and math.copysign(1, c) < 0 for c in feat["cuts"]),
              f"{label}: cuts strictly increasing, strictly inside (min, max), at most "
              f"{grid - 1 + bins - 1}, no -0.0", str(cuts.tolist())[:500])
    tap.check(bool(np.all(np.diff(deciles) > 0)) and len(deciles) <= bins - 1
              and set(bits(deciles).tolist()) <= set(bits(cuts).tolist()),
              f"{label}: deciles strictly increasing, each one of the cuts bit for bit",
              f"deciles {deciles.tolist()}")
    want_cuts, want_deciles, qs, q_bins = numpy_grid(values, grid, bins)
    if not sampled:
        tap.check(np.array_equal(bits(cuts), bits(want_cuts)),
                  f"{label}: cuts = numpy.quantile (linear) at i/{grid} and j/{bins}, unique, "
                  f"inside (min, max), bit for bit",
                  f"got {len(cuts)} {cuts.tolist()[:20]}...\nwant {len(want_cuts)} "
                  f"{want_cuts.tolist()[:20]}...")
        tap.check(np.array_equal(bits(deciles), bits(want_deciles)),
                  f"{label}: deciles = numpy.quantile at j/{bins}, unique, inside (min, max), "
                  f"bit for bit", f"got {deciles.tolist()}\nwant {want_deciles.tolist()}")
    else:
        s = np.sort(values)
        ok_c, worst_c = rank_ok(s, cuts, qs)
        ok_d, worst_d = rank_ok(s, deciles, q_bins)
        tap.check(ok_c and ok_d, f"{label}: sampled cuts and deciles within the rank bound "
                  f"({RANK_BOUND:.5f}); worst {max(worst_c, worst_d):.5f}",
                  f"cuts {cuts.tolist()[:20]}...\ndeciles {deciles.tolist()}")
    counts, sums, exact, abs_sums = numpy_regions(values, cuts)
    got_counts = feat["region_counts"]
    got_sums = np.array([np.nan if v is None else v for v in feat["region_sums"]], dtype=float)
    tap.check(len(got_counts) == len(cuts) + 1 and got_counts == counts.tolist()
              and sum(got_counts) == len(values),
              f"{label}: region counts = numpy.searchsorted(cuts, side='right') counts, exact",
              f"got {got_counts[:20]}...\nwant {counts.tolist()[:20]}...")
    # numpy's pairwise sum is within ~log2(n) ulp of sum(|x|); the profile's compensated sum
    # within 2 ulp of the exact sum (math.fsum) plus n u^2 sum(|x|).
    tol = 1e-12 * abs_sums
    tap.check(len(got_sums) == len(cuts) + 1 and bool(np.all(np.abs(got_sums - sums) <= tol)),
              f"{label}: region sums = numpy's sum of each region within 1e-12 relative",
              f"got {got_sums.tolist()[:10]}...\nwant {sums.tolist()[:10]}...")
    tap.check(len(got_sums) == len(cuts) + 1 and
              bool(np.all(np.abs(got_sums - exact) <= 4.5e-16 * np.abs(exact) + 1e-20 * abs_sums)),
              f"{label}: region sums within 2 ulp of the exact sum (math.fsum)",
              f"worst {np.max(np.abs(got_sums - exact) / np.maximum(abs_sums, 1e-300)):.3g} of "
              f"sum(|x|)")


def categorical_checks(tap, label, feat, values, n_missing, max_categories):
    counts = Counter(values)
    n = len(values)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:max_categories]
    want = {k: c / n for k, c in top}
    got = feat.get("categories", {})
    tap.check(feat["type"] == "categorical" and feat["count"] == n and
              feat["missing"] == n_missing, f"{label}: categorical, count and missing",
              f"{feat['type']} {feat['count']} {feat['missing']} vs {n} {n_missing}")
    tap.check(list(got) == list(want) and all(got[k] == want[k] for k in want),
              f"{label}: top {max_categories} categories with exact shares, by count",
              f"got {list(got.items())[:8]}...\nwant {list(want.items())[:8]}...")
    other = (n - sum(c for _, c in top)) / n
    tap.check(abs(feat["other"] - other) < 1e-12, f"{label}: other = the rest's share",
              f"{feat['other']} vs {other}")


# --- part 1: profile build against numpy ------------------------------------------------------
def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)  # RFC 4180: quotes where needed, CRLF line ends
        w.writerow(header)
        w.writerows(rows)


def mixed_data(n, rng):
    """Columns of every kind; returns header, rows and the raw values per column."""
    missing_tokens = ["", "NA", "NaN", "null", "na", "NULL", "nan", "Null"]
    normal = rng.normal(50, 10, n)
    normal_cells = [repr(float(v)) for v in normal]
    for i in rng.choice(n, n // 50, replace=False):  # 2% missing, every spelling
        normal_cells[i] = missing_tokens[i % len(missing_tokens)]
    lognormal = rng.lognormal(0, 1, n)
    poisson = rng.poisson(3, n)
    names = []
    for k in range(100):
        if k % 10 == 0:
            names.append(f'city, "{k}"')       # comma and quotes inside a value
        elif k % 10 == 1:
            names.append(f"line\nbreak {k}")  # a newline inside a value
        else:
            names.append(f"city-{k:02d}")
    p = 1.0 / np.arange(1, 101) ** 1.1
    city = [names[k] for k in rng.choice(100, n, p=p / p.sum())]
    for i in rng.choice(n, n // 100, replace=False):
        city[i] = "NA"
    zips = [f"{z:05d}" for z in rng.integers(0, 2000, n)]
    # 40 % zeros, half of them spelled -0.0, among negatives and positives.
    zeros_neg = rng.normal(-1, 2, n)
    zeros_neg[rng.choice(n, n * 4 // 10, replace=False)] = 0.0
    zeros_neg_cells = [("-0.0" if i % 2 else "0") if v == 0 else repr(float(v))
                       for i, v in enumerate(zeros_neg)]
    # Exactly 30 % zeros below positive values: the deciles 0.1 and 0.2 are the min.
    zero_min = rng.exponential(1.0, n) + 1e-3
    zero_min[rng.permutation(n)[:n * 3 // 10]] = 0.0
    mixed = [repr(float(v)) for v in rng.uniform(0, 1, n)]
    stray_row = 777
    mixed[stray_row] = "?"
    header = ["id", "normal", "lognormal", "count", "city", "constant", "zip", "mixed",
              "label", "empty", "zeros_neg", "zero_min"]
    rows = [[i, normal_cells[i], repr(float(lognormal[i])), int(poisson[i]), city[i], 42,
             zips[i], mixed[i], int(i % 2), "" if i % 2 else "NA", zeros_neg_cells[i],
             repr(float(zero_min[i]))] for i in range(n)]
    # The line the stray value is on: the header, one line per row, plus the newlines inside
    # quoted values of the rows before it.
    stray_line = 2 + stray_row + sum(v.count("\n") for v in city[:stray_row])
    return header, rows, {"normal": normal_cells, "lognormal": lognormal, "count": poisson,
                          "city": city, "zip": zips, "mixed": mixed,
                          "zeros_neg": [float(v) for v in zeros_neg_cells],
                          "zero_min": zero_min}, stray_line


def part1(tap, cluster):
    rng = np.random.default_rng(1)
    n = 50_000
    header, rows, cols, stray_line = mixed_data(n, rng)
    path = os.path.join(cluster.dir, "reference.csv")
    write_csv(path, header, rows)
    out = os.path.join(cluster.dir, "profile.json")
    p = ctl(cluster, "profile", "build", "--model", "churn", "--version", "v3", "--ignore", "id",
            "--label", "label", "--categorical", "zip", path, "-o", out)
    tap.check(p.returncode == 0 and p.stdout.strip() ==
              f"wrote profile churn v3 to {out}: {n} rows, 9 features (6 numeric, 3 categorical)",
              "profile build -o writes the file and says what it wrote", p.stdout + p.stderr)
    tap.check(f'note: column "mixed" is categorical: "?" on line {stray_line} is not a number'
              in p.stderr, "a stray non-number is named with its line", p.stderr)
    tap.check('note: column "empty" has no values (every row is missing): left out of the '
              'profile' in p.stderr, "an all-empty column is left out, with a note", p.stderr)
    with open(out) as f:
        doc = json.load(f)
    doc_stdout, _ = build(cluster, path, "--model", "churn", "--version", "v3", "--ignore", "id",
                          "--label", "label", "--categorical", "zip")
    tap.check(without_created(doc) == without_created(doc_stdout),
              "the same profile on stdout and in -o FILE (and the same file gives the same "
              "profile)")
    tap.check(doc["format"] == 2 and list(doc) == ["format", "model", "version", "created_ms",
                                                   "rows", "features"],
              'profile format 2: "format": 2 first, then model, version, created_ms, rows, '
              'features', list(doc))
    tap.check(doc["model"] == "churn" and doc["version"] == "v3" and doc["rows"] == n and
              abs(doc["created_ms"] / 1000 - time.time()) < 600,
              "model, version, rows and created_ms", json.dumps(without_created(doc))[:200])
    f = doc["features"]
    tap.check(list(f) == ["normal", "lognormal", "count", "city", "constant", "zip", "mixed",
                          "zeros_neg", "zero_min"],
              "features in column order; id, label and the empty column left out", list(f))

    normal = [float(v) for v in cols["normal"] if not is_missing(v)]
    numeric_checks(tap, "normal", f["normal"], normal, n - len(normal))
    numeric_checks(tap, "lognormal", f["lognormal"], cols["lognormal"], 0)
    numeric_checks(tap, "poisson integers (repeated quantiles)", f["count"], cols["count"], 0)
    numeric_checks(tap, "constant", f["constant"], [42.0] * n, 0)
    c = f["constant"]
    tap.check(c["cuts"] == [] and c["deciles"] == [] and c["region_counts"] == [n]
              and c["region_sums"] == [42.0 * n] and c["std"] == 0.0,
              "a constant column: no cut, no decile, one region with every value, std 0", c)
    numeric_checks(tap, "40 % zeros (half -0.0), negatives", f["zeros_neg"], cols["zeros_neg"],
                   0)
    zn = f["zeros_neg"]
    k = zn["cuts"].index(0.0) if 0.0 in zn["cuts"] else -1
    n_zeros = sum(v == 0 for v in cols["zeros_neg"])
    tap.check(k >= 0 and zn["region_counts"][k + 1] >= n_zeros and 0.0 in zn["deciles"],
              "zeros_neg: 0 is a cut and a decile, its region holds every zero (and -0.0)",
              f"cuts {zn['cuts'][:40]}\ndeciles {zn['deciles']}")
    numeric_checks(tap, "30 % zeros at the min", f["zero_min"], cols["zero_min"], 0)
    zm = f["zero_min"]
    tap.check(len(zm["deciles"]) == 7 and min(zm["deciles"]) > 0
              and np.quantile(cols["zero_min"], 0.2) == 0 == zm["min"]
              and zm["region_counts"][0] == n * 3 // 10 and zm["region_sums"][0] == 0,
              "zero_min: Q(0.1) = Q(0.2) = min = 0 is no decile; region 0 holds the zeros",
              f"deciles {zm['deciles']}\nregion 0 {zm['region_counts'][0]}")
    city = [v for v in cols["city"] if not is_missing(v)]
    categorical_checks(tap, "city (100 categories, quoted values)", f["city"], city,
                       n - len(city), 50)
    tap.check(any("\n" in k for k in f["city"]["categories"]) and
              any(", \"" in k for k in f["city"]["categories"]),
              "values with newlines, commas and quotes survive the CSV round trip",
              list(f["city"]["categories"])[:12])
    categorical_checks(tap, "zip (forced categorical, leading zeros kept)", f["zip"],
                       cols["zip"], 0, 50)
    # 50,000 distinct values: more than the exact table holds, so the space-saving sketch and
    # the third pass ran. Every value occurs once: any 50 are a correct top 50 (the choice among
    # equal counts is the sketch's), each with its exact share.
    m = f["mixed"]
    tap.check(m["type"] == "categorical" and m["count"] == n and len(m["categories"]) == 50
              and all(v == 1 / n for v in m["categories"].values())
              and set(m["categories"]) <= set(cols["mixed"]) and m["other"] == (n - 50) / n,
              "mixed (50,000 distinct values, sketched): 50 categories with exact shares",
              json.dumps(m)[:500])

    # Options: bins, grid bins and max categories. 37 is no multiple of 20: 36 + 19 candidates.
    doc20, _ = build(cluster, path, "--model", "churn", "--version", "v3", "--ignore", "id",
                     "--bins", "20", "--grid-bins", "37", "--max-categories", "5")
    numeric_checks(tap, "normal --bins 20 --grid-bins 37", doc20["features"]["normal"], normal,
                   n - len(normal), bins=20, grid=37)
    tap.check(len(doc20["features"]["normal"]["cuts"]) == 36 + 19,
              "--bins 20 --grid-bins 37: 55 cuts (no quantile in common)",
              len(doc20["features"]["normal"]["cuts"]))
    categorical_checks(tap, "city --max-categories 5", doc20["features"]["city"], city,
                       n - len(city), 5)
    tap.check(doc20["features"]["label"]["type"] == "numeric",
              "without --label the label column is a feature")
    # The largest grid: --bins 100 --grid-bins 1000, 999 cuts (j/100 = 10j/1000).
    doc_max, _ = build(cluster, path, "--model", "churn", "--version", "v3", "--ignore", "id",
                       "--bins", "100", "--grid-bins", "1000")
    for name in ("lognormal", "zeros_neg", "zero_min"):
        numeric_checks(tap, f"{name} --bins 100 --grid-bins 1000", doc_max["features"][name],
                       cols[name], 0, bins=100, grid=1000)
    tap.check(len(doc_max["features"]["lognormal"]["cuts"]) == 999,
              "--grid-bins 1000: 999 cuts for a continuous column",
              len(doc_max["features"]["lognormal"]["cuts"]))

    # A large mean and a small spread: sum-of-squares formulas lose every digit here (u * 1e18
    # is ~100), and plain Welford ~1e-9 relative to its running mean's rounding; the profile's
    # std must still match numpy.std (exact here to ~1e-14) within 1e-12.
    offset = 1e9 + np.random.default_rng(3).normal(0, 1, 20000)
    offset_path = os.path.join(cluster.dir, "offset.csv")
    write_csv(offset_path, ["x"], ([repr(float(v))] for v in offset))
    offset_doc, _ = build(cluster, offset_path, "--model", "churn", "--version", "v3")
    numeric_checks(tap, "mean 1e9, sd 1", offset_doc["features"]["x"], offset, 0)

    # Few values far apart, on the largest grid: interpolating between neighbours that differ by
    # orders of magnitude, numpy's two-sided lerp (b - (b - a)(1 - g) from g = 0.5) differs from
    # a + (b - a) g in the last bits for about one quantile in ten; the cuts must still be
    # numpy's, bit for bit.
    few = np.random.default_rng(4).lognormal(0, 3, 17)
    few_path = os.path.join(cluster.dir, "few.csv")
    write_csv(few_path, ["x"], ([repr(float(v))] for v in few))
    few_doc, _ = build(cluster, few_path, "--model", "churn", "--version", "v3", "--bins", "100",
                       "--grid-bins", "1000")
    numeric_checks(tap, "17 values far apart, --bins 100 --grid-bins 1000",
                   few_doc["features"]["x"], few, 0, bins=100, grid=1000)

    # Above the sample cap: 300,000 rows.
    big_n = 300_000
    rng = np.random.default_rng(2)
    normal = rng.normal(0, 1, big_n)
    lognormal = rng.lognormal(2, 1.5, big_n)
    poisson = rng.poisson(4, big_n)
    big = os.path.join(cluster.dir, "big.csv")
    write_csv(big, ["normal", "lognormal", "poisson"],
              ([repr(float(a)), repr(float(b)), int(c)]
               for a, b, c in zip(normal, lognormal, poisson)))
    t0 = time.monotonic()
    big_doc, _ = build(cluster, big, "--model", "churn", "--version", "v3")
    elapsed = time.monotonic() - t0
    tap.check(big_doc["rows"] == big_n, f"300,000 rows profiled in {elapsed:.1f} s")
    numeric_checks(tap, "normal, 300k rows (sampled)", big_doc["features"]["normal"], normal, 0,
                   sampled=True)
    numeric_checks(tap, "lognormal, 300k rows (sampled)", big_doc["features"]["lognormal"],
                   lognormal, 0, sampled=True)
    numeric_checks(tap, "poisson, 300k rows (sampled)", big_doc["features"]["poisson"], poisson,
                   0, sampled=True)
    again, _ = build(cluster, big, "--model", "churn", "--version", "v3")
    tap.check(without_created(again) == without_created(big_doc),
              "sampling is deterministic: the same file gives the same profile")


def expect_csv_error(tap, cluster, name, text, want):
    path = os.path.join(cluster.dir, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", path)
    tap.check(p.returncode == 1 and p.stderr == f"modelwatch-ctl: {path}{want}\n" and
              not p.stdout, f"malformed CSV ({name}): exit 1 with {want!r}",
              f"exit {p.returncode}, stderr {p.stderr!r}")


def part1_errors(tap, cluster):
    expect_csv_error(tap, cluster, "short.csv",
                     'a,b,c,d,e\r\n1,2,3,4,5\r\n1,"two\r\nlines",3,4,5\r\n\r\n1,2,3,4\r\n',
                     ":6: expected 5 fields, got 4")
    expect_csv_error(tap, cluster, "long.csv", "a,b\n1,2\n1,2,3\n",
                     ":3: expected 2 fields, got 3")
    expect_csv_error(tap, cluster, "unterminated.csv", 'a,b\n1,2\n3,"open\n4,5\n',
                     ":3: unterminated quoted field (the file ends inside quotes)")
    expect_csv_error(tap, cluster, "after-quote.csv", 'a,b\n"1"2,3\n',
                     ":2: unexpected character after a closing quote (a quote inside a quoted "
                     "field is written \"\")")
    expect_csv_error(tap, cluster, "dup.csv", "a,b,a\n1,2,3\n",
                     ':1: duplicate column name "a" (columns 1 and 3)')
    expect_csv_error(tap, cluster, "empty-name.csv", "a,,c\n1,2,3\n",
                     ":1: column 2 has an empty name")
    expect_csv_error(tap, cluster, "huge.csv", "a,b\n1,2\n3," + "9" * (1 << 20) + "\n",
                     ":3: record longer than 1048576 bytes")
    expect_csv_error(tap, cluster, "header-only.csv", "a,b\n", ": no data rows after the header")
    expect_csv_error(tap, cluster, "empty.csv", "", ": empty file: expected a header row")

    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "-", stdin="a\n1\n")
    tap.check(p.returncode == 1 and "cannot read standard input" in p.stderr,
              "standard input is refused with a clear error", p.stderr)
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "/dev/stdin",
            stdin="a\n1\n")
    tap.check(p.returncode == 1 and "not a regular file" in p.stderr,
              "a pipe is refused (it cannot be read twice)", p.stderr)
    ok = os.path.join(cluster.dir, "ok.csv")
    with open(ok, "w") as f:
        f.write("a\n1\n")
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "--ignore", "b", ok)
    tap.check(p.returncode == 1 and "--ignore b: no such column in the header" in p.stderr,
              "a column named in the options must exist", p.stderr)
    p = ctl(cluster, "profile", "build", "--version", "v", ok)
    tap.check(p.returncode == 2 and "needs --model and --version" in p.stderr,
              "usage errors exit 2", p.stderr)
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "--bins", "101", ok)
    tap.check(p.returncode == 2 and "--bins 101: expected an integer in 2..100" in p.stderr,
              "--bins is checked", p.stderr)
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "--grid-bins", "1001",
            ok)
    tap.check(p.returncode == 2 and "--grid-bins 1001: expected an integer in 2..1000"
              in p.stderr, "--grid-bins is checked", p.stderr)
    p = ctl(cluster, "profile", "build", "--model", "m", "--version", "v", "--grid-bins", "5", ok)
    tap.check(p.returncode == 2 and "--grid-bins 5: must be at least --bins (10)" in p.stderr,
              "--grid-bins must be at least --bins", p.stderr)
    p = ctl(cluster, "profile", "build", "--help")
    tap.check(p.returncode == 0 and "--grid-bins N" in p.stdout,
              "profile build --help names --grid-bins",
              p.stdout)


# --- part 2: push, show, drift against the aggregator -----------------------------------------
def table_rows(text, first_column="FEATURE"):
    """Rows of a ctl table as lists of cells, keyed by their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_column))
    return {line.split()[0]: line.split() for line in lines[start + 1:]
            if line and not re.match(r"^(\d+ features:|model verdict)", line)}


def part2(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    # Drift kept on the fine windows: the two 1-minute windows below share an hour.
    agg = cluster.start_aggregator(extra="drift:\n  windows: fine\n")
    api = f"http://127.0.0.1:{agg.http_port}"
    agent = cluster.start_agent(extra="models:\n  - name: \"*\"\n    sample_rate: 1.0\n")

    p = ctl(cluster, "profile", "show", "churn", api=api)
    tap.check(p.returncode == 1 and "HTTP 404 not_found: model: unknown (no telemetry applied and "
              "no profile stored)" in p.stderr,
              "profile show before any push: the API's 404 for an unknown model, exit 1", p.stderr)

    # Reference data: the load generator's traffic, dumped to CSV as it is sent.
    minute = int(time.time() * 1000) // 60000 * 60000
    w0, w1, w2 = minute - 30 * 60000, minute - 20 * 60000, minute - 10 * 60000
    ref_csv = os.path.join(cluster.dir, "churn-reference.csv")
    sent = cluster.loadgen(agent.endpoint, ["churn-ref:v1"], 5000, start_ms=w0,
                           extra=["--seed", "7", "--dump-csv", ref_csv])
    total = sent["sent"]
    prof = os.path.join(cluster.dir, "churn-v1.json")
    p = ctl(cluster, "profile", "build", "--model", "churn", "--version", "v1", "--ignore",
            "model", "--ignore", "version", "--ignore", "prediction_id", "--ignore", "label",
            "--ignore", "latency_us", "--ignore", "status", "--label", "prediction", ref_csv, "-o", prof)
    tap.check(p.returncode == 0 and "5000 rows, 12 features (10 numeric, 2 categorical)"
              in p.stdout, "profile build from the load generator's CSV", p.stdout + p.stderr)
    p = ctl(cluster, "profile", "push", prof, api=api)
    tap.check(p.returncode == 0 and p.stdout.strip() == "pushed profile churn v1 (12 features)",
              "profile push", p.stdout + p.stderr)
    with open(prof) as f:
        pushed = json.load(f)

    p = ctl(cluster, "profile", "show", "churn", "--version", "v1", "--json", api=api)
    tap.check(p.returncode == 0 and json.loads(p.stdout) == pushed,
              "profile show --json returns the pushed document unchanged", p.stderr)
    p = ctl(cluster, "profile", "show", "churn", "--version", "v1", api=api)
    rows = table_rows(p.stdout) if p.returncode == 0 else {}
    f0 = pushed["features"]["f0"]
    tap.check(p.returncode == 0 and "profile churn v1" in p.stdout and "5000 rows" in p.stdout
              and rows.get("f0", [])[1:4] == ["numeric", "5000", "0"]
              and float(rows["f0"][4]) == float(f"{f0['min']:.6g}")
              and rows["f0"][7:11] == ["100", "regions,", "12", "PSI"],
              "profile show prints a table: feature, type, count, missing, min, max, mean",
              p.stdout + p.stderr)
    tap.check("country" in rows and rows["country"][1] == "categorical" and
              "fr 20.0%" in " ".join(rows["country"]),
              "categorical rows show their top categories", p.stdout)

    # A newer version: show without --version picks the newest by created_ms.
    time.sleep(0.01)
    prof2 = os.path.join(cluster.dir, "churn-v2.json")
    ctl(cluster, "profile", "build", "--model", "churn", "--version", "v2", "--ignore", "model",
        "--ignore", "version", "--ignore", "prediction_id", "--ignore", "label", "--ignore",
        "latency_us", "--ignore", "status", "--bins", "5", ref_csv, "-o", prof2)
    p2 = ctl(cluster, "profile", "push", prof2, api=api)
    p = ctl(cluster, "profile", "show", "churn", api=api)
    tap.check(p2.returncode == 0 and p.returncode == 0 and
              "versions: v1 v2 (showing the newest)" in p.stdout and
              "profile churn v2" in p.stdout and "prediction" in table_rows(p.stdout),
              "profile show without --version lists the versions and shows the newest",
              p.stdout + p.stderr + p2.stderr)

    # API errors come back as the API's message, exit 1.
    bad = dict(pushed, features=dict(pushed["features"]))
    bad["features"]["f0"] = dict(f0, cuts=list(reversed(f0["cuts"])))
    bad_path = os.path.join(cluster.dir, "bad.json")
    with open(bad_path, "w") as f:
        json.dump(bad, f)
    p = ctl(cluster, "profile", "push", bad_path, api=api)
    tap.check(p.returncode == 1 and re.search(r"HTTP 400 bad_data: \S", p.stderr),
              "a profile the API refuses: its error message, exit 1", p.stderr)
    with open(bad_path, "w") as f:
        f.write('{"model": "churn"}')
    p = ctl(cluster, "profile", "push", bad_path, api=api)
    tap.check(p.returncode == 1 and "not a profile" in p.stderr,
              "a document that is not a profile is refused before sending", p.stderr)
    p = ctl(cluster, "profile", "show", "churn", "--version", "v9", api=api)
    tap.check(p.returncode == 1 and
              "HTTP 404 not_found: no profile for this model version" in p.stderr,
              "profile show of a missing version: the API's 404 message", p.stderr)

    # Traffic: one window as the reference, one shifted by 20.
    total += cluster.loadgen(agent.endpoint, ["churn:v1"], 3000, start_ms=w1,
                             extra=["--seed", "11"])["sent"]
    total += cluster.loadgen(agent.endpoint, ["churn:v1"], 3000, start_ms=w2,
                             extra=["--seed", "13", "--shift", "20"])["sent"]
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == total, 120, "the aggregator to apply every batch")

    p = ctl(cluster, "drift", "churn", "--version", "v1", "--window", w1, api=api)
    rows = table_rows(p.stdout) if p.returncode == 0 else {}
    tap.check(p.returncode == 0 and len(rows) == 12 and
              all(r[-1] == "none" for r in rows.values()),
              "drift of an unshifted window: the aggregator's verdict is none for every feature",
              p.stdout + p.stderr)
    p = ctl(cluster, "drift", "churn", "--version", "v1", "--window", w2, "--resolution", 60,
            api=api)
    rows = table_rows(p.stdout) if p.returncode == 0 else {}
    numeric = [f"f{k}" for k in range(10)]
    tap.check(p.returncode == 0 and all(rows.get(f, ["?"])[-1] == "drift" for f in numeric)
              and rows.get("country", ["?"])[-1] == "none"
              and rows.get("plan", ["?"])[-1] == "none",
              "drift of the shifted window: every numeric feature flagged, categories ok",
              p.stdout + p.stderr)
    tap.check("drift of churn v1 against profile v1" in p.stdout and
              "12 features: 10 drift, 0 possible, 2 none, 0 insufficient_data, 0 unknown"
              in p.stdout,
              "the drift table names the model, profile and window and sums up", p.stdout)
    api_doc = api_data(agg.http_port,
                       f"/api/v1/models/churn/drift?version=v1&window={w2}&resolution=60")
    pj = ctl(cluster, "drift", "churn", "--version", "v1", "--window", w2, "--json", api=api)
    tap.check(pj.returncode == 0 and json.loads(pj.stdout) == api_doc,
              "drift --json prints the API's document", pj.stderr)
    agree = True
    for feat in api_doc["features"]:
        row = rows.get(feat["feature"], [])
        psi = feat.get("psi")
        agree &= len(row) == 12 and row[1] == feat["type"] and \
            int(row[2]) == feat["observed"] and \
            (row[4] == "-" if psi is None else abs(float(row[4]) - psi) <= 5e-5)
    tap.check(agree and len(rows) == 12, "the table's observed count, type and PSI are the API's",
              p.stdout + "\n" + json.dumps(api_doc)[:2000])
    p = ctl(cluster, "drift", "churn", "--version", "v1", api=api)
    tap.check(p.returncode == 0 and table_rows(p.stdout) == rows,
              "drift without --window shows the latest window", p.stdout + p.stderr)
    p = ctl(cluster, "drift", "nosuch", api=api)
    tap.check(p.returncode == 1 and "HTTP 404" in p.stderr,
              "drift of an unknown model: the API's 404, exit 1", p.stderr)

    # models and windows still work.
    p = ctl(cluster, "models", api=api)
    tap.check(p.returncode == 0 and "churn" in p.stdout.split(), "ctl models", p.stdout)
    p = ctl(cluster, "windows", "churn", "--resolution", 60, api=api)
    tap.check(p.returncode == 0 and p.stdout.count(" v1 ") == 2, "ctl windows", p.stdout)


def main(tap, cluster):
    part1(tap, cluster)
    part1_errors(tap, cluster)
    part2(tap, cluster)


if __name__ == "__main__":
    run(main)
