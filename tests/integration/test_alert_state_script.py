#!/usr/bin/env python3
"""alert_state.lua against a real redis-server: the alerting lease and its fenced writes.

  1. "lease" takes a free lease with its TTL, renews it for its holder, and refuses another
     holder while it is held; once it expires another takes it.
  2. "write" applies HSETs and HDELs on the hashes named by key index, only for the holder;
     a deposed holder writes nothing at all, not even part of its list.
  3. "release" drops the lease for its holder only.
  4. Unknown ops and writes are errors that name the script, and change nothing.
"""
import os
import time

from harness import run
from resp import Redis, RedisError

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "aggregator", "alert", "alert_state.lua")
KEYS = ["mw:{alert}:lease", "mw:{alert}:rules", "mw:{alert}:cursors", "mw:{alert}:nlog",
        "mw:{alert}:silences"]


def main(tap, cluster):
    cluster.start_redis()
    r = Redis(cluster.redis_port)
    with open(SCRIPT, "rb") as f:
        sha = r("SCRIPT", "LOAD", f.read())

    def lease(holder, ttl):
        return r("EVALSHA", sha, 1, KEYS[0], "lease", holder, ttl)

    def write(holder, *ops):
        return r("EVALSHA", sha, 5, *KEYS, "write", holder, *ops)

    tap.check(lease("a", 1000) == 1, "a free lease is taken")
    ttl = r("PTTL", KEYS[0])
    tap.check(0 < ttl <= 1000, "with its TTL", ttl)
    tap.check(lease("b", 1000) == 0 and r("GET", KEYS[0]) == b"a", "another holder is refused")
    tap.check(lease("a", 5000) == 1 and r("PTTL", KEYS[0]) > 1000, "the holder renews it")

    tap.check(write("a", "H", 2, "i1", "s1", "H", 3, "c|60000|m", "120000", "H", 4, "g", "n") ==
              1, "the holder writes")
    tap.check(r("HGET", KEYS[1], "i1") == b"s1" and r("HGET", KEYS[2], "c|60000|m") == b"120000"
              and r("HGET", KEYS[3], "g") == b"n", "HSETs land in the hashes named by index")
    tap.check(write("a", "D", 2, "i1", "H", 2, "i2", "s2") == 1 and
              r("HGET", KEYS[1], "i1") is None and r("HGET", KEYS[1], "i2") == b"s2",
              "HDEL and HSET in one call, in order")
    tap.check(write("b", "H", 2, "i3", "x", "D", 2, "i2") == 0 and
              r("HGET", KEYS[1], "i3") is None and r("HGET", KEYS[1], "i2") == b"s2",
              "a writer without the lease writes nothing")
    try:
        write("a", "X", 2, "f")
        tap.check(False, "an unknown write is an error")
    except RedisError as e:
        tap.check("alert_state.lua" in str(e), "an unknown write is an error naming the script",
                  str(e))
    try:
        r("EVALSHA", sha, 1, KEYS[0], "nope", "a")
        tap.check(False, "an unknown op is an error")
    except RedisError as e:
        tap.check("unknown op" in str(e), "an unknown op is an error", str(e))

    tap.check(r("EVALSHA", sha, 1, KEYS[0], "release", "b") == 0 and
              r("GET", KEYS[0]) == b"a", "release by another holder does nothing")
    tap.check(r("EVALSHA", sha, 1, KEYS[0], "release", "a") == 1 and r("GET", KEYS[0]) is None,
              "release by the holder frees the lease")
    tap.check(write("a", "H", 2, "i4", "x") == 0, "after release the old holder cannot write")
    tap.check(lease("b", 200) == 1, "b takes the free lease")
    time.sleep(0.4)
    tap.check(lease("a", 1000) == 1 and write("b", "H", 2, "i5", "y") == 0 and
              write("a", "H", 2, "i5", "z") == 1 and r("HGET", KEYS[1], "i5") == b"z",
              "an expired lease passes to the next taker; the old holder is fenced out")
    r.close()


if __name__ == "__main__":
    run(main)
