#!/usr/bin/env python3
"""modelwatch-ctl profile build / push / show and drift, with the real binaries.

Part 1, offline: CSV files generated here with numpy (normal, log-normal, Poisson integers, a
100-category Zipf column with commas, quotes and newlines inside values, a constant, forced
categorical zip codes, missing values in every spelling, an all-empty column, a numeric column
with one stray "?") are profiled by `modelwatch-ctl profile build` and compared with numpy:
  - below the sample cap (100,000 values per column) the edges equal
    numpy.unique(numpy.quantile(values, i/bins)) to 1e-12 relative, the proportions equal
    numpy.histogram over the same edges exactly, min/max exactly, the mean and the standard
    deviation (numpy.std, ddof 0) to 1e-12, also for a column of mean 1e9 and sd 1;
  - above it (300,000 rows) every edge's rank is within the documented bound of its quantile:
    q in [share below the edge - 0.01 - 1e-5, share at or below it + 0.01 + 1e-5]; the
    proportions are still exact, and the same file gives the same profile;
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
import os
import re
import subprocess
import time
from collections import Counter

import numpy as np

from harness import TestFailure, http_get, metrics, run, wait_for

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


def numeric_checks(tap, label, feat, values, n_missing, bins, sampled):
    """Compare one numeric feature of a profile with numpy on the same values."""
    values = np.asarray(values, dtype=float)
    qs = np.arange(1, bins) / bins
    edges = np.array(feat["edges"])
    tap.check(feat["type"] == "numeric" and feat["count"] == len(values)
              and feat["missing"] == n_missing, f"{label}: numeric, count and missing",
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
    tap.check(bool(np.all(np.diff(edges) > 0)) and 1 <= len(edges) <= bins - 1,
              f"{label}: edges strictly increasing, 1..{bins - 1} of them", str(edges))
    if not sampled:
        want = np.unique(np.quantile(values, qs))
        tap.check(len(want) == len(edges) and np.allclose(edges, want, rtol=1e-12, atol=1e-12),
                  f"{label}: edges equal numpy.quantile (linear), de-duplicated",
                  f"got {edges.tolist()}\nwant {want.tolist()}")
    else:
        s = np.sort(values)
        below = np.searchsorted(s, edges, side="left") / len(s)
        at_or_below = np.searchsorted(s, edges, side="right") / len(s)
        # Every quantile is represented by an edge within the bound, and every edge by a
        # quantile (edges of repeated values stand for several quantiles).
        ok_q = all(any(lo - RANK_BOUND <= q <= hi + RANK_BOUND
                       for lo, hi in zip(below, at_or_below)) for q in qs)
        ok_e = all(any(lo - RANK_BOUND <= q <= hi + RANK_BOUND for q in qs)
                   for lo, hi in zip(below, at_or_below))
        worst = max(min(max(lo - q, q - hi, 0) for lo, hi in zip(below, at_or_below))
                    for q in qs)
        tap.check(ok_q and ok_e, f"{label}: sampled edges within the rank bound "
                  f"({RANK_BOUND:.5f}); worst {worst:.5f}",
                  f"edges {edges.tolist()}\nbelow {below.tolist()}\nat/below "
                  f"{at_or_below.tolist()}")
    hist, _ = np.histogram(values, bins=np.concatenate([[-np.inf], edges, [np.inf]]))
    want_p = hist / len(values)
    got_p = np.array(feat["proportions"])
    tap.check(len(got_p) == len(edges) + 1 and np.array_equal(got_p, want_p),
              f"{label}: proportions equal numpy.histogram over the same edges",
              f"got {got_p.tolist()}\nwant {want_p.tolist()}")
    tap.check(abs(got_p.sum() - 1) < 1e-12, f"{label}: proportions sum to 1")


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
    mixed = [repr(float(v)) for v in rng.uniform(0, 1, n)]
    stray_row = 777
    mixed[stray_row] = "?"
    header = ["id", "normal", "lognormal", "count", "city", "constant", "zip", "mixed",
              "label", "empty"]
    rows = [[i, normal_cells[i], repr(float(lognormal[i])), int(poisson[i]), city[i], 42,
             zips[i], mixed[i], int(i % 2), "" if i % 2 else "NA"] for i in range(n)]
    # The line the stray value is on: the header, one line per row, plus the newlines inside
    # quoted values of the rows before it.
    stray_line = 2 + stray_row + sum(v.count("\n") for v in city[:stray_row])
    return header, rows, {"normal": normal_cells, "lognormal": lognormal, "count": poisson,
                          "city": city, "zip": zips, "mixed": mixed}, stray_line


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
              f"wrote profile churn v3 to {out}: {n} rows, 7 features (4 numeric, 3 categorical)",
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
    tap.check(doc["model"] == "churn" and doc["version"] == "v3" and doc["rows"] == n and
              abs(doc["created_ms"] / 1000 - time.time()) < 600,
              "model, version, rows and created_ms", json.dumps(without_created(doc))[:200])
    f = doc["features"]
    tap.check(list(f) == ["normal", "lognormal", "count", "city", "constant", "zip", "mixed"],
              "features in column order; id, label and the empty column left out", list(f))

    normal = [float(v) for v in cols["normal"] if not is_missing(v)]
    numeric_checks(tap, "normal", f["normal"], normal, n - len(normal), 10, sampled=False)
    numeric_checks(tap, "lognormal", f["lognormal"], cols["lognormal"], 0, 10, sampled=False)
    numeric_checks(tap, "poisson integers (repeated quantiles)", f["count"], cols["count"], 0,
                   10, sampled=False)
    tap.check(f["constant"]["edges"] == [42.0] and f["constant"]["proportions"] == [0.0, 1.0]
              and f["constant"]["std"] == 0.0,
              "a constant column has one edge, every value in the last bin, std 0", f["constant"])
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

    # Options: bins and max categories.
    doc20, _ = build(cluster, path, "--model", "churn", "--version", "v3", "--ignore", "id",
                     "--bins", "20", "--max-categories", "5")
    numeric_checks(tap, "normal --bins 20", doc20["features"]["normal"], normal,
                   n - len(normal), 20, sampled=False)
    categorical_checks(tap, "city --max-categories 5", doc20["features"]["city"], city,
                       n - len(city), 5)
    tap.check(doc20["features"]["label"]["type"] == "numeric",
              "without --label the label column is a feature")

    # A large mean and a small spread: sum-of-squares formulas lose every digit here (u * 1e18
    # is ~100), and plain Welford ~1e-9 relative to its running mean's rounding; the profile's
    # std must still match numpy.std (exact here to ~1e-14) within 1e-12.
    offset = 1e9 + np.random.default_rng(3).normal(0, 1, 20000)
    offset_path = os.path.join(cluster.dir, "offset.csv")
    write_csv(offset_path, ["x"], ([repr(float(v))] for v in offset))
    offset_doc, _ = build(cluster, offset_path, "--model", "churn", "--version", "v3")
    numeric_checks(tap, "mean 1e9, sd 1", offset_doc["features"]["x"], offset, 0, 10,
                   sampled=False)

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
                   10, sampled=True)
    numeric_checks(tap, "lognormal, 300k rows (sampled)", big_doc["features"]["lognormal"],
                   lognormal, 0, 10, sampled=True)
    numeric_checks(tap, "poisson, 300k rows (sampled)", big_doc["features"]["poisson"], poisson,
                   0, 10, sampled=True)
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
    agg = cluster.start_aggregator()
    api = f"http://127.0.0.1:{agg.http_port}"
    agent = cluster.start_agent(extra="models:\n  - name: \"*\"\n    sample_rate: 1.0\n")

    p = ctl(cluster, "profile", "show", "churn", api=api)
    tap.check(p.returncode == 1 and "no profile stored for model churn" in p.stderr,
              "profile show before any push says so, exit 1", p.stderr)

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
              and rows["f0"][7:9] == ["10", "bins"],
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
    bad["features"]["f0"] = dict(f0, edges=list(reversed(f0["edges"])))
    bad_path = os.path.join(cluster.dir, "bad.json")
    with open(bad_path, "w") as f:
        json.dump(bad, f)
    p = ctl(cluster, "profile", "push", bad_path, api=api)
    tap.check(p.returncode == 1 and "HTTP 400" in p.stderr and
              "edges must be strictly increasing" in p.stderr,
              "a profile the API refuses: its error message, exit 1", p.stderr)
    with open(bad_path, "w") as f:
        f.write('{"model": "churn"}')
    p = ctl(cluster, "profile", "push", bad_path, api=api)
    tap.check(p.returncode == 1 and "not a profile" in p.stderr,
              "a document that is not a profile is refused before sending", p.stderr)
    p = ctl(cluster, "profile", "show", "churn", "--version", "v9", api=api)
    tap.check(p.returncode == 1 and "HTTP 404: no profile for this model version" in p.stderr,
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
              all(r[-1] == "ok" for r in rows.values()),
              "drift of an unshifted window: every feature ok", p.stdout + p.stderr)
    p = ctl(cluster, "drift", "churn", "--version", "v1", "--window", w2, "--resolution", 60,
            api=api)
    rows = table_rows(p.stdout) if p.returncode == 0 else {}
    numeric = [f"f{k}" for k in range(10)]
    tap.check(p.returncode == 0 and all(rows.get(f, ["?"])[-1] == "drift" for f in numeric)
              and rows.get("country", ["?"])[-1] == "ok" and rows.get("plan", ["?"])[-1] == "ok",
              "drift of the shifted window: every numeric feature flagged, categories ok",
              p.stdout + p.stderr)
    tap.check("drift of churn v1 against profile v1" in p.stdout and
              "12 features: 10 drift (PSI >= 0.2), 0 watch" in p.stdout,
              "the drift table names the model, profile and window and sums up", p.stdout)
    status, body = http_get(agg.http_port, f"/api/v1/models/churn/drift?version=v1"
                                           f"&window={w2}&resolution=60")
    api_doc = json.loads(body) if status == 200 else {}
    pj = ctl(cluster, "drift", "churn", "--version", "v1", "--window", w2, "--json", api=api)
    tap.check(pj.returncode == 0 and json.loads(pj.stdout) == api_doc,
              "drift --json prints the API's document", pj.stderr)
    agree = True
    for feat in api_doc.get("features", []):
        row = rows.get(feat["feature"], [])
        psi = feat.get("psi")
        agree &= len(row) == 9 and row[1] == feat["type"] and \
            int(row[2]) == round(feat["count"]) and \
            (row[4] == "-" if psi is None else abs(float(row[4]) - psi) <= 5e-5)
    tap.check(agree and len(rows) == 12, "the table's count, type and PSI are the API's",
              p.stdout + "\n" + body[:2000])
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
