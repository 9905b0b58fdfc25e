#!/usr/bin/env python3
"""Numbers from outside are bounded at decode time, one value at a time (issue 8, finding 18).

Crafted batches through devkafka into a real aggregator and redis-server:

1. One event stamped INT64_MIN among 20 valid ones, with counters for 932 predictions: the
   batch is applied (it used to go whole to the DLQ), the window counts 932 predictions and 20
   records, the bad time is counted as invalid (field event.event_time_ms).
2. A counters entry with count 2^64 - 1 next to a valid one of 10: the bad entry is refused
   and counted (counters.count); the window gains 10 (it used to lose 1: the count was added
   as -1).
3. Input tokens of 2^64 - 1 and of INT64_MAX for 1 prediction each, then 500 tokens for 5: the
   window's token sum is 500 (it used to wrap negative); both bad values counted
   (counters.input_tokens).
4. A batch produced twice (the same agent, boot and sequence): predictions_total counts it once
   (it used to count the replay that dedup skipped).
"""
import time

from harness import metrics, run, wait_for
from resp import Redis

INT64_MIN = -(1 << 63)
U64_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1


def window(r, model, start, version="v1", res=60):
    raw = r("HGETALL", f"mw:{{{model}}}:w:{res}:{start}:{version}") or []
    return {k.decode(): v.decode() for k, v in zip(raw[::2], raw[1::2])}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    r = Redis(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000 - 120_000

    def ev(model, i, at):
        return {"event": {"model": model, "version": "v1", "id": f"{model}-{i}", "t": at,
                          "score": 0.25}}
    b = []
    recs = [ev("m18", i, t + i) for i in range(20)] + [ev("m18", "bad", str(INT64_MIN))]
    b.append({"agent": "a", "boot": "b", "sequence": 1, "records": recs,
              "counters": [{"model": "m18", "version": "v1", "start_ms": t, "count": 932}]})
    b.append({"agent": "a", "boot": "b", "sequence": 2,
              "counters": [{"model": "m18", "version": "v2", "start_ms": t, "count": str(U64_MAX)},
                           {"model": "m18", "version": "v1", "start_ms": t, "count": 10}]})
    b.append({"agent": "a", "boot": "b", "sequence": 3,
              "counters": [{"model": "tok", "version": "v1", "start_ms": t, "count": 1,
                            "tokens_in": str(U64_MAX)}]})
    b.append({"agent": "a", "boot": "b", "sequence": 4,
              "counters": [{"model": "tok", "version": "v1", "start_ms": t, "count": 1,
                            "tokens_in": str(INT64_MAX)}]})
    b.append({"agent": "a", "boot": "b", "sequence": 5,
              "counters": [{"model": "tok", "version": "v1", "start_ms": t, "count": 5,
                            "tokens_in": 500}]})
    b.append({"agent": "a", "boot": "b", "sequence": 6, "copies": 2,
              "counters": [{"model": "rep", "version": "v1", "start_ms": t, "count": 7}]})
    cluster.produce_batches(b)
    n = len(b) + 1

    def handled():
        m = metrics(agg.http_port)
        return m["modelwatch_aggregator_batches_applied_total"] + sum(
            v for k, v in m.items() if k.startswith("modelwatch_aggregator_dlq_records_total"))
    wait_for(lambda: handled() == n, 60, f"the {n} records to be handled")
    m = metrics(agg.http_port)
    dlq = {k: v for k, v in m.items() if k.startswith("modelwatch_aggregator_dlq_records_total")}
    invalid = {k.split('"')[1]: v for k, v in m.items()
               if k.startswith("modelwatch_aggregator_invalid_values_total")}
    tap.check(sum(dlq.values()) == 0, "no batch went to the DLQ for one bad value", dlq)
    w = window(r, "m18", t)
    tap.check(w.get("count") == "942" and w.get("records") == "20",
              "the 932 + 10 valid predictions and the 20 valid records are counted", w)
    tap.check(invalid.get("event.event_time_ms") == 1, "the INT64_MIN event time is counted",
              invalid)
    tap.check(invalid.get("counters.count") == 1 and not window(r, "m18", t, "v2"),
              "the count of 2^64 - 1 is refused and counted, its window untouched", invalid)
    tok = window(r, "tok", t)
    tap.check(tok.get("tokens_in") == "500" and tok.get("count") == "7",
              "the token sum holds the valid 500; the predictions are all counted", tok)
    tap.check(invalid.get("counters.input_tokens") == 2, "both impossible token sums counted",
              invalid)
    tap.check(window(r, "rep", t).get("count") == "7", "the replayed batch is applied once")
    tap.check(m["modelwatch_aggregator_predictions_total"] == 942 + 7 + 7,
              "predictions_total counts what was applied, not the replay dedup skipped",
              m["modelwatch_aggregator_predictions_total"])
    r.close()
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
