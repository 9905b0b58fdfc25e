#!/usr/bin/env python3
"""Lateness is one model-level rule that survives restarts (issue 8, finding 19).

It used to be judged per Kafka partition, in the aggregator's memory: reset by a restart, and
different for the same model's data on two partitions. The rule now: a model's watermark
(mw:{M}:wm, in Redis) is the newest sane event time applied for the model less
windows.out_of_orderness; data for a window whose end + allowed_lateness is at or below it is
counted as late, whichever replica, partition or process lifetime applies it.

Crafted batches through devkafka (the telemetry topic has 4 partitions) into real aggregators:

1. 100 current predictions of model m on partition 0; the aggregator restarts; 10 predictions
   of m for a window 30 minutes old arrive on partition 0: they are late (they used to be
   merged after a restart).
2. 20 more for a window 40 minutes old from another agent on partition 1: late too (partition
   1 had never seen m).
3. 40 predictions of model n, new, for a window 40 minutes old on partition 0, behind m's
   current data: merged (another model's times do not make n's windows final).
"""
import time

from harness import metrics, run, wait_for
from resp import Redis


def window(r, model, start, res=60):
    raw = r("HGETALL", f"mw:{{{model}}}:w:{res}:{start}:v1") or []
    return {k.decode(): v.decode() for k, v in zip(raw[::2], raw[1::2])}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    r = Redis(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000

    def batch(agent, seq, model, start, count, partition):
        return {"agent": agent, "boot": "b1", "sequence": seq, "partition": partition,
                "counters": [{"model": model, "version": "v1", "start_ms": start,
                              "count": count}]}
    cluster.produce_batches([batch("a1", 1, "m", t, 100, 0)])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"] == 1,
             60, "the current batch to be applied")
    tap.check(cluster.stop(agg) == 0, "the aggregator stops")
    agg = cluster.start_aggregator(name="aggregator-2")
    t30, t40 = t - 30 * 60_000, t - 40 * 60_000
    cluster.produce_batches([batch("a1", 2, "m", t30, 10, 0), batch("a2", 1, "m", t40, 20, 1),
                             batch("a1", 3, "n", t40, 40, 0)])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"] == 3,
             90, "the old batches to be applied after the restart")
    m = metrics(agg.http_port)
    tap.check(window(r, "m", t30) == {"late": "10"},
              "after a restart, m's 30-minute-old predictions are late", window(r, "m", t30))
    tap.check(window(r, "m", t40) == {"late": "20"},
              "on a partition that never saw m, m's 40-minute-old predictions are late",
              window(r, "m", t40))
    tap.check(window(r, "n", t40).get("count") == "40" and "late" not in window(r, "n", t40),
              "a new model's old predictions are merged, whatever m did on its partition",
              window(r, "n", t40))
    tap.check(m["modelwatch_aggregator_late_dropped_total"] == 30 and
              m["modelwatch_aggregator_predictions_total"] == 40,
              "late and counted predictions on /metrics",
              f"late {m['modelwatch_aggregator_late_dropped_total']} "
              f"counted {m['modelwatch_aggregator_predictions_total']}")
    wm = int(r("GET", "mw:{m}:wm"))
    tap.check(wm == t - 300_000, "m's watermark: its newest time less out_of_orderness", wm)
    r.close()
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
