#!/usr/bin/env python3
"""Event times ahead of the aggregator's clock are clamped to it and counted; the watermark
trusts only sane times (issue 8, finding 2, the aggregator's half).

Crafted batches through devkafka into a real aggregator and redis-server (windows.max_clock_skew
at its default, 1 minute):

1. One event of model "a" stamped in microseconds as if milliseconds (about 1000 times the
   clock), then 500 predictions of model "b" on the same partition: all 500 are counted in
   their window (they used to be counted late, the window shown final and empty); a's
   watermark stays at or below the clock; a's prediction is counted in the current window;
   the clamped times are counted.
2. A node clock 10 minutes fast: its 30 predictions are clamped to the clock and counted, and
   the model's next 100 predictions stamped correctly are not late.
3. Old times stay legitimate: 40 predictions of a new model stamped a day ago are merged into
   their window; once the model has current data, 5 more from a day ago are counted as late.
"""
import time

from harness import api_data, metrics, run, wait_for
from resp import Redis


def window(r, model, start, res=60):
    raw = r("HGETALL", f"mw:{{{model}}}:w:{res}:{start}:v1") or []
    return {k.decode(): v.decode() for k, v in zip(raw[::2], raw[1::2])}


def counted(r, model, lo, hi):
    """Predictions of `model` in fine windows starting in [lo, hi]."""
    total = 0
    for start in range(lo - lo % 60_000, hi + 1, 60_000):
        total += int(window(r, model, start).get("count", 0))
    return total


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    r = Redis(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000
    seq = iter(range(1, 100))

    def batch(model, start, count, records=(), partition=0):
        return {"agent": "a1", "boot": "b1", "sequence": next(seq), "partition": partition,
                "records": list(records),
                "counters": [{"model": model, "version": "v1", "start_ms": start,
                              "width_ms": 1000, "count": count}]}
    wrong = now * 1000  # microseconds read as milliseconds
    b = [batch("a", wrong - wrong % 1000, 1,
               [{"event": {"model": "a", "version": "v1", "id": "a-1", "t": wrong}}]),
         batch("b", t, 500)]
    cluster.produce_batches(b)

    def applied():
        return metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]
    wait_for(lambda: applied() == 2, 60, "the two batches to be applied")
    m = metrics(agg.http_port)
    tap.check(window(r, "b", t).get("count") == "500" and
              m["modelwatch_aggregator_late_dropped_total"] == 0,
              "the 500 predictions after a time 1000x in the future are counted, none late",
              f"{window(r, 'b', t)} late={m['modelwatch_aggregator_late_dropped_total']}")
    doc = api_data(agg.http_port, f"/api/v1/models/b/windows?from={t}&to={t}")
    got = [w["count"] for w in doc["windows"]]
    tap.check(got == [500], "the API shows b's window with its 500 predictions", got)
    wm = int(r("GET", "mw:{a}:wm") or 0)
    tap.check(wm <= int(time.time() * 1000), "a's watermark is not in the future", wm)
    tap.check(counted(r, "a", t - 60_000, int(time.time() * 1000)) == 1,
              "a's prediction is counted at the aggregator's clock")
    clamped = {k.split('"')[1]: v for k, v in m.items()
               if k.startswith("modelwatch_aggregator_clamped_values_total")}
    tap.check(clamped.get("counters.bucket_start_ms") == 1 and
              clamped.get("event.event_time_ms") == 1,
              "the clamped bucket start and event time are counted", clamped)

    # --- 2. a node clock 10 minutes fast ---------------------------------------------------
    fast = now + 600_000
    cluster.produce_batches([batch("c", fast - fast % 1000, 30), batch("c", t, 100)])
    wait_for(lambda: applied() == 4, 60, "the fast clock's batches to be applied")
    m = metrics(agg.http_port)
    tap.check(counted(r, "c", t - 60_000, int(time.time() * 1000)) == 130 and
              m["modelwatch_aggregator_late_dropped_total"] == 0,
              "10 minutes ahead: clamped and counted; the model's next predictions are not late",
              m["modelwatch_aggregator_late_dropped_total"])
    clamped = {k.split('"')[1]: v for k, v in m.items()
               if k.startswith("modelwatch_aggregator_clamped_values_total")}
    tap.check(clamped.get("counters.bucket_start_ms") == 2, "the clamp is counted", clamped)

    # --- 3. old times stay legitimate ------------------------------------------------------
    day = t - 86_400_000
    cluster.produce_batches([batch("d", day, 40), batch("d", t, 3), batch("d", day, 5)])
    wait_for(lambda: applied() == 7, 60, "the backfill batches to be applied")
    m = metrics(agg.http_port)
    old = window(r, "d", day)
    tap.check(old.get("count") == "40" and old.get("late") == "5" and
              m["modelwatch_aggregator_late_dropped_total"] == 5,
              "a day-old backfill of a new model is merged; once the model is current it is late",
              old)
    r.close()
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
