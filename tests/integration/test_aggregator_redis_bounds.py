#!/usr/bin/env python3
"""One batch cannot make Redis memory grow without bound (issue 8, finding 11).

1. A batch with sequence number 2^32 - 1 (the largest accepted): the dedup state it creates is
   a few kilobytes (SETBIT on one bitmap per agent boot used to allocate 512 MiB for it), and
   replaying it is still a no-op.
2. Index sorted sets are trimmed: with windows.fine_retention 1m, a window 30 minutes old leaves
   the fine index once a later batch is applied (members used to stay forever, their TTL
   refreshed by every write).
"""
import time

from harness import metrics, run, wait_for
from resp import Redis


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra="windows:\n  fine_retention: 1m\n")
    r = Redis(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000
    old = t - 30 * 60_000

    def batch(seq, start, count, copies=1):
        return {"agent": "a", "boot": "b", "sequence": seq, "copies": copies, "counters": [
            {"model": "m", "version": "v1", "start_ms": start, "count": count}]}
    cluster.produce_batches([batch((1 << 32) - 1, old, 3, copies=2)])

    def applied():
        return metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]
    wait_for(lambda: applied() == 2, 60, "the batch and its replay to be handled")
    keys = r.scan_all("mw:{m}:dedup:*")
    usage = sum(r("MEMORY", "USAGE", k) for k in keys)
    tap.check(keys and usage < 64 * 1024,
              "dedup state of sequence 2^32 - 1 takes a few KiB", f"{len(keys)} keys, {usage} B")
    tap.check(r("HGET", f"mw:{{m}}:w:60:{old}:v1", "count") == b"3",
              "the batch is applied once")
    tap.check(r("ZRANGE", "mw:{m}:idx:60", 0, -1) == [f"{old}:v1".encode()],
              "the old window is indexed while it is the newest")
    cluster.produce_batches([batch(7, t, 4)])
    wait_for(lambda: applied() == 3, 60, "the current batch to be applied")
    members = r("ZRANGE", "mw:{m}:idx:60", 0, -1)
    tap.check(members == [f"{t}:v1".encode()],
              "the fine index drops the window older than its retention", members)
    tap.check(len(r("ZRANGE", "mw:{m}:idx:3600", 0, -1)) >= 1,
              "the coarse index (30 days) keeps its windows")
    r.close()
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
