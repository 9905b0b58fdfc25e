#!/usr/bin/env python3
"""aggregator/apply.lua on a real redis-server, with the arguments the aggregator builds.

The script is loaded from the source file itself; mw-apply-plan turns batches described here
into the aggregator's EVALSHA commands (window_apply.c), sent as they are.

1. The digest the aggregator runs is the SHA1 of aggregator/apply.lua.
2. A realistic sequence of batches (three models: a binary classifier with a reference profile,
   a regression, a multi-class model; counters, errors, latencies, labels before and after
   their predictions) applies and joins every pair once; the replies count the pairs joined.
3. Replaying every batch changes nothing: DUMP of every key before and after is identical, no
   key appears or disappears, and every reply is {0, 0}.
4. Every key and every window field written is one that window_apply.h's layout documents.
5. Pending sides: compact hashes expiring with their bucket; models outside labels.models keep
   nothing; a side older than the horizon is not kept.
6. Binary threshold per model, and a named class overriding it (binary and multi-class agree).
7. After SCRIPT FLUSH, EVALSHA answers NOSCRIPT and changes nothing (the store's reload path).
"""
import hashlib
import json
import os
import re
import subprocess

from harness import TestFailure, run
from resp import Redis, RedisError

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
T0 = 1795699980000            # a minute boundary
NOW = T0 + 10 * 60_000         # the aggregator's clock for these batches
DAY = 86_400_000
HORIZON = 14 * DAY
PROFILE = {"format": 2, "model": "churn", "version": "v1", "features": {
    "age": {"type": "numeric", "count": 4, "min": 0, "max": 100, "mean": 45, "std": 30,
            "cuts": [20, 40, 60], "region_counts": [1, 1, 1, 1],
            "region_sums": [10, 30, 50, 90], "deciles": [20, 40, 60]},
    "country": {"type": "categorical", "categories": {"fr": 0.5, "de": 0.5}, "other": 0},
    "prediction": {"type": "numeric", "count": 2, "min": 0, "max": 1, "mean": 0.5, "std": 0.5,
                   "cuts": [0.5], "region_counts": [1, 1], "region_sums": [0.25, 0.75],
                   "deciles": [0.5]}}}


def uuid(i):
    return str(__import__("uuid").UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)))


class Applier:
    def __init__(self, cluster, redis):
        self.exe = cluster.binary("bench/mw-apply-plan")
        self.r = redis

    def plan(self, batch):
        out = subprocess.run([self.exe], input=json.dumps(batch).encode(), capture_output=True)
        if out.returncode != 0:
            raise TestFailure(f"mw-apply-plan: {out.stderr.decode()}")
        return out.stdout, json.loads(out.stderr)

    def apply(self, batch):
        raw, info = self.plan(batch)
        replies = self.r.pipeline(raw, info["commands"])
        for rep in replies:
            if isinstance(rep, RedisError):
                raise TestFailure(f"apply failed: {rep}")
        return replies[:info["models"]]


def batch(seq, records, counters=(), agent="agent-1", options=None, profile=True):
    opts = {"now_ms": NOW, "horizon_ms": HORIZON, "labels_models": ["churn", "price*",
                                                                    "species"]}
    opts.update(options or {})
    b = {"sequence": seq, "agent": agent, "boot": "boot-1", "options": opts,
         "records": list(records), "counters": list(counters)}
    if profile:
        b["profile"] = PROFILE
    return b


def event(model, pid, t, version="v1", **out):
    e = {"model": model, "version": version, "id": pid, "t": t, "latency_us": 1200,
         "features": {"age": 30 + len(pid) % 50, "country": "fr" if len(pid) % 2 else "it"}}
    e.update(out)
    return {"event": e, "weight": 2.0}


def label(model, pid, t, **lab):
    return {"label": dict(model=model, id=pid, t=t, **lab)}


def counters(model, start, count, errors=0):
    return {"model": model, "version": "v1", "start_ms": start, "width_ms": 60_000,
            "count": count, "errors": errors, "error_code": "timeout",
            "latencies_us": [800 + 37 * i for i in range(count)], "feedback": 1}


def snapshot(r):
    """Every key: its type and DUMP (serialized value), and its expiry time."""
    out = {}
    for k in r.scan_all():
        out[k] = (r("TYPE", k), r("DUMP", k), r("PEXPIRETIME", k))
    return out


def documented_patterns():
    """The backquoted names of window_apply.h's layout comment, as regular expressions."""
    text = open(os.path.join(SRC, "aggregator", "window_apply.h")).read()
    layout = text[text.index("Layout in Redis"):text.index("Per model in the batch")]
    layout = re.sub(r"\n \*\s*", " ", layout)
    names = re.findall(r"`([^`]+)`", layout)
    pats = [re.compile("^" + "".join(".+" if p.startswith("<") else re.escape(p)
                                     for p in re.split(r"(<[^>]+>)", n)) + "$") for n in names]
    return names, pats


def main(tap, cluster):
    cluster.start_redis()
    r = Redis(cluster.redis_port)
    ap = Applier(cluster, r)
    text = open(os.path.join(SRC, "aggregator", "apply.lua"), "rb").read()
    sha = r("SCRIPT", "LOAD", text).decode()
    raw, _ = ap.plan(batch(1, [event("churn", "x", T0, score=0.5)]))
    tap.check(sha == hashlib.sha1(text).hexdigest() and f"${len(sha)}\r\n{sha}\r\n".encode()
              in raw[:200], "the aggregator runs apply.lua by its SHA1", raw[:200])

    # --- 2. a realistic sequence ------------------------------------------------------------
    n = 60
    ids = [uuid(i) for i in range(n)]
    b1, b2, b3 = [], [], []
    want_pairs = {"churn": 0, "price-eu": 0, "species": 0}
    for i, pid in enumerate(ids):
        t = T0 + 1000 * i
        model = ("churn", "price-eu", "species")[i % 3]
        out = {"churn": {"score": (i % 10) / 10 + 0.05, "class": "1" if i % 4 else None},
               "price-eu": {"value": 10.0 + i},
               "species": {"class": ("cat", "dog", "emu")[i % 3 - 0]}}[model]
        out = {k: v for k, v in out.items() if v is not None}
        lab = {"churn": {"class": "1" if i % 3 else "0"},
               "price-eu": {"value": 12.0 + (i % 5)},
               "species": {"class": ("cat", "dog")[i % 2]}}[model]
        if i % 5 == 0:    # the label first, in an earlier batch
            b1.append(label(model, pid, t + 30_000, **lab))
            b2.append(event(model, pid, t, **out))
            want_pairs[model] += 1
        elif i % 5 == 4:  # no label at all
            b2.append(event(model, pid, t, **out))
        elif i % 5 == 3:  # prediction and label in the same batch
            b2.append(event(model, pid, t, **out))
            b2.append(label(model, pid, t + 45_000, **lab))
            want_pairs[model] += 1
        else:             # the label later
            b2.append(event(model, pid, t, **out))
            b3.append(label(model, pid, t + 90_000 + 7 * i, **lab))
            want_pairs[model] += 1
    cnt = [counters(m, T0, 20, errors=2) for m in ("churn", "price-eu", "species")]
    batches = [batch(1, b1), batch(2, b2, cnt), batch(3, b3, agent="agent-2")]
    joined = [sum(rep[1] for rep in ap.apply(b)) for b in batches]
    tap.check(sum(joined) == sum(want_pairs.values()) and joined[0] == 0,
              "the replies count every pair joined, once", f"{joined} want {want_pairs}")
    fine = {m: r("HGETALL", f"mw:{{{m}}}:w:60:{T0}:v1") for m in want_pairs}
    fine = {m: dict(zip(v[::2], v[1::2])) for m, v in fine.items()}
    got = {m: int(fine[m].get(b"pc:lab", 0)) for m in want_pairs}
    tap.check(got == want_pairs, "every pair lands in its prediction's fine window",
              f"{got} vs {want_pairs}")
    tap.check(int(fine["churn"][b"pm:n"]) < want_pairs["churn"] and
              int(fine["price-eu"][b"pr:n"]) == want_pairs["price-eu"] and
              int(fine["species"][b"pm:n"]) == want_pairs["species"],
              "binary, regression and multi-class pairs counted where they apply", fine)
    before = snapshot(r)

    # --- 3. replays change nothing ----------------------------------------------------------
    replays = [rep for b in batches for rep in ap.apply(b)]
    after = snapshot(r)
    tap.check(all(rep[:2] == [0, 0] for rep in replays), "a replayed batch answers {0, 0, wm}",
              replays)
    changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
    tap.check(not changed and len(before) > 20,
              f"replaying every batch changes no key ({len(before)} keys, DUMP compared)",
              changed)

    # --- 4. every key and field is documented -----------------------------------------------
    names, pats = documented_patterns()
    keys = [k.decode() for k in r.scan_all()]
    undocumented = [k for k in keys if not any(p.match(k) for p in pats)]
    tap.check(not undocumented and len(names) > 40, "every key written is documented",
              f"undocumented: {undocumented}")
    fields = set()
    for k in keys:
        if ":w:" in k:
            fields |= {f.decode() for f in r("HKEYS", k)}
    undocumented = sorted(f for f in fields if not any(p.match(f) for p in pats))
    families = {f.split(":")[0].split("|")[0] for f in fields}
    tap.check(not undocumented and {"count", "lat", "err", "d", "pc", "pb", "pm", "pr"} <= families,
              f"every window field written ({len(fields)}) is documented",
              f"undocumented: {undocumented}; families {sorted(families)}")

    # --- 5. pending sides -------------------------------------------------------------------
    pend = [k for k in keys if ":jp:" in k]
    entries = sum(r("HLEN", k) for k in pend)
    tap.check(entries == n // 5 * 1 and all(len(f) == 8 for k in pend for f in r("HKEYS", k)),
              "the predictions without labels wait, each as one 8-byte field", f"{entries}")
    bucket = T0 - T0 % DAY
    tap.check(all(r("PEXPIRETIME", k) == bucket + DAY + HORIZON for k in pend) and
              r("ZRANGE", "mw:{churn}:jpi", 0, -1) == [f"{bucket}:256".encode()],
              "a bucket expires whole, horizon + width after its start; the index names it")
    tap.check(not [k for k in keys if ":jl:" in k], "no label waits once its prediction came")
    enc = {r("OBJECT", "ENCODING", k) for k in pend}
    tap.check(enc == {b"listpack"}, "pending hashes are listpacks", enc)
    r("FLUSHALL")
    ap.apply(batch(10, [event("other", "o-1", T0, score=0.9),
                        label("other", "o-2", T0, **{"class": "1"})]))
    tap.check(not r.scan_all("mw:{other}:j*") and
              r("HGET", f"mw:{{other}}:w:60:{T0}:v1", "pc:pred") is None,
              "a model outside labels.models keeps no prediction, no label, no pc:pred")
    old = T0 - HORIZON - 2 * DAY
    ap.apply(batch(11, [event("churn", "old-1", old, score=0.9)]))
    tap.check(not r.scan_all("mw:{churn}:jp:*"),
              "a prediction older than the horizon (and its bucket) is not kept")

    # --- 6. binary threshold and named classes ----------------------------------------------
    r("FLUSHALL")
    cases = [("t1", 0.6, None, "1"), ("t2", 0.6, "1", "1"), ("t3", 0.8, None, "1"),
             ("t4", 0.8, "0", "0"), ("t5", 0.65, None, "0")]
    recs = []
    for pid, score, cls, lab in cases:
        out = {"score": score}
        if cls:
            out["class"] = cls
        recs += [event("churn", pid, T0, **out), label("churn", pid, T0 + 5, **{"class": lab})]
    ap.apply(batch(20, recs, options={"thresholds": {"churn": 0.7}}))
    w = r("HGETALL", f"mw:{{churn}}:w:60:{T0}:v1")
    w = {k.decode(): int(v) for k, v in zip(w[::2], w[1::2]) if k.startswith(b"p")
         and b":ll" not in k}
    # t1: 0.6 < 0.7 -> negative, label 1: fn. t2: names "1" -> positive, label 1: tp.
    # t3: 0.8 -> positive: tp. t4: names "0" although 0.8 -> negative, label 0: tn.
    # t5: 0.65 -> negative, label 0: tn.
    tap.check((w.get("pb:tp"), w.get("pb:fn"), w.get("pb:tn"), w.get("pb:fp")) ==
              (2, 1, 2, None), "the model's threshold (0.7) decides; a named class overrides",
              w)
    tap.check(w.get("pm:n") == 2 and w.get("pm:correct") == 2,
              "the multi-class view of the named classes agrees with the binary one", w)

    # --- 7. NOSCRIPT ------------------------------------------------------------------------
    r("SCRIPT", "FLUSH")
    keys_before = snapshot(r)
    raw, info = ap.plan(batch(21, [event("churn", "n-1", T0, score=0.3)]))
    replies = r.pipeline(raw, info["commands"])
    tap.check(isinstance(replies[0], RedisError) and str(replies[0]).startswith("NOSCRIPT"),
              "after SCRIPT FLUSH, EVALSHA answers NOSCRIPT", replies)
    changed = {k for k in set(keys_before) | set(snapshot(r))
               if keys_before.get(k) != snapshot(r).get(k)} - {b"mw:models"}
    tap.check(not changed, "... and changes nothing, so loading and resending is safe", changed)
    r.close()


if __name__ == "__main__":
    run(main)
