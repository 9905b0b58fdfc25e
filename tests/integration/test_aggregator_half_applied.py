#!/usr/bin/env python3
"""A model's part of a batch is applied whole or not at all (issue 8, finding 1).

Redis keeps a script's writes up to an error. apply.lua used to set the batch's dedup bit first
and fail midway on a value it could not add, so the retry saw "already applied" and the rest of
the batch was lost. Through real processes (devkafka, aggregator, redis-server), crafted
batches:

1. A regression prediction of 1e200 with label 0 (its squared error overflows), then 10 normal
   pairs in the same batch: the 10 pairs are all counted, the bad value is refused at decode
   and counted as invalid (field event.output.value), nothing goes to the DLQ.
2. A latency histogram whose sum is 2^63 - 1, then a normal one, in the same windows: both
   windows count all 200 requests, the impossible sum is replaced by the histogram's estimate
   and counted (counters.latency.sum_us).
3. A window whose counter would overflow whatever the input bounds (set up by hand, as a
   corrupted or foreign writer would leave it): the script refuses the model's part before any
   write; the batch goes to the DLQ with reason "apply"; nothing of it is in Redis, its dedup
   bit included, and the next batch of the model applies.
"""
import time

from harness import http_get, metrics, run, wait_for
from resp import Redis

INT64_MAX = (1 << 63) - 1


def window(r, model, res, start, version="v1"):
    raw = r("HGETALL", f"mw:{{{model}}}:w:{res}:{start}:{version}") or []
    return {k.decode(): v.decode() for k, v in zip(raw[::2], raw[1::2])}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    r = Redis(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000 - 120_000  # a recent minute, final for nobody
    hour = t - t % 3_600_000

    # --- 1. a regression value whose square overflows, then 10 normal pairs --------------------
    recs = [{"event": {"model": "price", "version": "v1", "id": "p0", "t": t, "value": 1e200}},
            {"label": {"model": "price", "id": "p0", "t": t + 1000, "value": 0.0}}]
    for i in range(1, 11):
        recs += [{"event": {"model": "price", "version": "v1", "id": f"p{i}", "t": t + i,
                            "value": 10.0 + i}},
                 {"label": {"model": "price", "id": f"p{i}", "t": t + 2000, "value": 12.0}}]
    b1 = {"agent": "a1", "boot": "b1", "sequence": 1, "records": recs,
          "counters": [{"model": "price", "version": "v1", "start_ms": t, "count": 11}]}
    # --- 2. a latency sum of 2^63 - 1, then a normal histogram, in the same windows -------------
    lat = [1000] * 100
    b2 = {"agent": "a1", "boot": "b1", "sequence": 2,
          "counters": [{"model": "lat", "version": "v1", "start_ms": t, "count": 100,
                        "latencies_us": lat, "sum_us": str(INT64_MAX)}]}
    b3 = {"agent": "a1", "boot": "b1", "sequence": 3,
          "counters": [{"model": "lat", "version": "v1", "start_ms": t, "count": 100,
                        "latencies_us": lat}]}
    cluster.produce_batches([b1, b2, b3])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_records_consumed_total"] == 3
             and metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]
             + sum(v for k, v in metrics(agg.http_port).items()
                   if k.startswith("modelwatch_aggregator_dlq_records_total")) == 3,
             60, "the three batches to be handled")
    m = metrics(agg.http_port)
    fine, coarse = window(r, "price", 60, t), window(r, "price", 3600, hour)
    tap.check(fine.get("pr:n") == "10" and coarse.get("pr:n") == "10",
              "the 10 normal regression pairs after the 1e200 one are all counted",
              f"fine {fine} coarse {coarse}")
    tap.check(fine.get("pc:lab") == "11" and fine.get("count") == "11",
              "the bad prediction keeps its label join and its count; only its value is refused",
              fine)
    tap.check(m.get('modelwatch_aggregator_invalid_values_total{field="event.output.value"}')
              == 1, "the refused value is counted once, under its field",
              {k: v for k, v in m.items() if "invalid" in k})
    lf, lc = window(r, "lat", 60, t), window(r, "lat", 3600, hour)
    tap.check(lf.get("count") == "200" and lc.get("count") == "200",
              "both windows count all 200 requests (the 2^63 - 1 sum split them 200/100)",
              f"fine {lf.get('count')} coarse {lc.get('count')}")
    tap.check(lf.get("lat_sum_us") == lc.get("lat_sum_us") and
              0 < int(lf.get("lat_sum_us", "0")) < 10**12,
              "the latency sum is the same in both windows and bounded",
              f"{lf.get('lat_sum_us')} {lc.get('lat_sum_us')}")
    tap.check(m.get('modelwatch_aggregator_invalid_values_total{field="counters.latency.sum_us"}')
              == 1, "the impossible sum is counted under counters.latency.sum_us")
    dlq = {k: v for k, v in m.items() if k.startswith("modelwatch_aggregator_dlq_records_total")}
    tap.check(sum(dlq.values()) == 0, "nothing went to the DLQ: bad values affect only themselves",
              dlq)
    tap.check(m["modelwatch_aggregator_predictions_total"] == 211,
              "predictions_total counts the 211 predictions",
              m["modelwatch_aggregator_predictions_total"])

    # --- 3. a window one more increment would overflow: refused whole, to the DLQ ---------------
    key = f"mw:{{full}}:w:60:{t}:v1"
    r("HSET", key, "lat_sum_us", str(INT64_MAX - 10))
    r("PEXPIRE", key, 3_600_000)
    b4 = {"agent": "a1", "boot": "b1", "sequence": 4,
          "counters": [{"model": "full", "version": "v1", "start_ms": t, "count": 5,
                        "latencies_us": [1000] * 5}]}
    b5 = {"agent": "a1", "boot": "b1", "sequence": 5,
          "counters": [{"model": "full", "version": "v1", "start_ms": t - 60_000,
                        "count": 7, "latencies_us": [1000] * 7}]}
    cluster.produce_batches([b4, b5])

    def dlq_apply():
        return metrics(agg.http_port).get('modelwatch_aggregator_dlq_records_total{reason="apply"}')
    wait_for(lambda: dlq_apply() == 1 and metrics(agg.http_port)[
        "modelwatch_aggregator_batches_applied_total"] == 4, 60,
        "the unapplicable batch in the DLQ and the next one applied")
    full = window(r, "full", 60, t)
    tap.check(full == {"lat_sum_us": str(INT64_MAX - 10)},
              "the refused part wrote nothing to its window", full)
    tap.check(r("GETBIT", "mw:{full}:dedup:a1:b1:0", 4) == 0 and
              r("GETBIT", "mw:{full}:dedup:a1:b1", 4) == 0,
              "the refused part's dedup bit is not set: replaying it from the DLQ applies it")
    hour2 = (t - 60_000) - (t - 60_000) % 3_600_000
    tap.check(window(r, "full", 3600, hour2).get("count") == "7",
              "the coarse window holds the next batch only", window(r, "full", 3600, hour2))
    wait_for(lambda: cluster.topic_end_offsets("modelwatch.telemetry.dlq") == 1, 30,
             "the DLQ topic to hold the refused batch")
    tap.check(True, "the DLQ topic holds the refused batch")
    tap.check(http_get(agg.http_port, "/readyz")[0] == 200, "the aggregator stays ready")
    r.close()
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
