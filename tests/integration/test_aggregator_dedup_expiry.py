#!/usr/bin/env python3
"""A replay from the earliest offset after the dedup memory expired must not count twice.

Batch ids (the dedup bitmaps) used to be kept for less time than the windows they protect
(7 days against 30 for the coarse windows). Once they expired, a consumer group reset to the
earliest offset (a new group id, or committed offsets expired) applied every batch again and
the coarse windows counted 2,000 of 1,000 events.

The test runs the same story at the smallest retentions the config allows (coarse windows kept
1 h; first with dedup 1 h, which the fix refuses, then with the shortest dedup it accepts), and
moves Redis's clock forward by expiring keys: every key's time to live is shortened by the
dedup bitmaps' remaining life, and what reaches 0 is deleted, as time passing would.
"""
import time

from harness import TestFailure, api_data, free_port, http_get, metrics, run, wait_for
from resp import Redis

EVENTS = 1000
SHORT = "windows:\n  fine_retention: 1m\n  coarse_retention: 1h\n  dedup_retention: 1h\n"
# The shortest dedup memory accepted with these retentions: 1 h + 1 h + 5 m + 5 m.
ENOUGH = "windows:\n  fine_retention: 1m\n  coarse_retention: 1h\n  dedup_retention: 130m\n"


def start(cluster, name, group, windows):
    """An aggregator in consumer group `group`; (proc, None) when it runs, (None, log) when it
    refuses its config."""
    port = free_port()
    cfg = cluster.write_config(f"{name}.yaml", f"""kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
consumer:
  group_id: {group}
redis:
  port: {cluster.redis_port}
http:
  port: {port}
{windows}""")
    proc = cluster.spawn(name, [cluster.binary("aggregator/modelwatch-aggregator"), "--config",
                                cfg])
    proc.http_port = port
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, cluster.log_of(proc)
        try:
            if http_get(port, "/healthz", timeout=1)[0] == 200:
                return proc, None
        except OSError:
            pass
        time.sleep(0.1)
    raise TestFailure(f"{name} neither started nor exited")


def coarse_count(port, start_ms):
    doc = api_data(port, f"/api/v1/models/churn/windows?resolution=3600"
                         f"&from={start_ms - 7200_000}&to={start_ms + 7200_000}")
    return sum(w["count"] for w in doc["windows"])


def advance_clock(redis_port):
    """Let as much time pass, for Redis's keys, as the dedup bitmaps have left to live."""
    with Redis(redis_port) as r:
        keys = r.scan_all("mw:*")
        ttl = {k: r("PTTL", k) for k in keys}
        dedup = [t for k, t in ttl.items() if b":dedup:" in k and t > 0]
        if not dedup:
            raise TestFailure("no dedup bitmap with a time to live")
        step = max(dedup) + 1000
        expired = 0
        for k, t in ttl.items():
            if t < 0:
                continue  # no time to live (the model set, the watermark)
            if t <= step:
                r("DEL", k)
                expired += 1
            else:
                r("PEXPIRE", k, t - step)
        return step, expired


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agent = cluster.start_agent()

    windows = SHORT
    agg, log = start(cluster, "aggregator", "first", windows)
    if agg is None:
        tap.check(":14: windows.dedup_retention: " in log and "must be at least 130m" in log,
                  "dedup memory shorter than the coarse windows is refused, naming file, line "
                  "and key", log)
        windows = ENOUGH
        agg, log = start(cluster, "aggregator", "first", windows)
        if agg is None:
            raise TestFailure(f"the shortest accepted dedup memory was refused: {log}")

    start_ms = (int(time.time() * 1000) // 3600_000 - 1) * 3600_000
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS, windows=2, start_ms=start_ms)
    wait_for(lambda: coarse_count(agg.http_port, start_ms) == EVENTS, 60,
             "the first consumer group to count every event")
    tap.check(sent["sent"] == EVENTS, f"{EVENTS} events sent and counted once")
    records = cluster.topic_end_offsets("modelwatch.telemetry")
    tap.check(cluster.stop(agg) == 0, "first aggregator exits 0")

    step, expired = advance_clock(cluster.redis_port)
    tap.check(expired > 0, f"Redis's keys aged by the dedup memory's life ({step} ms)",
              f"expired {expired}")

    # A new consumer group starts from the earliest offset: every batch is replayed.
    agg, log = start(cluster, "replay", "replay", windows)
    if agg is None:
        raise TestFailure(f"replay aggregator refused its config: {log}")
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_records_consumed_total"]
             >= records, 60, f"the replay to consume all {records} records")
    time.sleep(1)
    counted = coarse_count(agg.http_port, start_ms)
    tap.check(counted == EVENTS,
              f"the replay after the dedup memory expired does not count again "
              f"({EVENTS} sent)", f"coarse windows count {counted}")
    tap.check(cluster.stop(agg) == 0, "replay aggregator exits 0")


if __name__ == "__main__":
    run(main)
