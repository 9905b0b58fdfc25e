#!/usr/bin/env python3
"""Redis forgets the apply script mid-stream (SCRIPT FLUSH every 20 ms, as after a restart
without it): the aggregator's EVALSHA gets NOSCRIPT, it loads apply.lua again and resends the same
command, and every event and every label is still counted exactly once."""
import time

from harness import api_data, run, wait_for
from resp import Redis

EVENTS = 30_000
WINDOWS = 3


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()
    # Recent windows: labels are stamped now, and the watermark they move must not make the
    # windows final while the test runs.
    start_ms = (int(time.time() * 1000) // 60000 - WINDOWS) * 60000
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], EVENTS,
                                 extra=["--rate", "6000", "--windows", str(WINDOWS),
                                        "--start-ms", str(start_ms), "--labels", "0.5"])
    flushes = 0
    with Redis(cluster.redis_port) as r:
        while load.poll() is None:
            time.sleep(0.02)  # often enough that a flush lands between a reload and a resend
            r("SCRIPT", "FLUSH")
            flushes += 1
    sent = cluster.finish_loadgen(load)
    expected = {w["start_ms"]: w["count"] for w in sent["windows"]}

    def windows():
        return api_data(agg.http_port, f"/api/v1/models/churn/windows?from={start_ms}"
                                       f"&to={start_ms + 600_000}")["windows"]

    def counts():
        return {w["start_ms"]: w["count"] for w in windows() if w["count"]}

    def labelled():
        return sum(w["performance"]["labels"]["labelled"] for w in windows())
    wait_for(lambda: counts() == expected and labelled() == sent["labels_sent"], 120,
             "every event and label to be applied")
    time.sleep(2)
    tap.check(counts() == expected and sum(expected.values()) == EVENTS,
              f"every event counted exactly once across {flushes} script flushes",
              f"{counts()} vs {expected}")
    tap.check(labelled() == sent["labels_sent"] and sent["labels_sent"] > 0,
              "every label joined exactly once", f"{labelled()} vs {sent['labels_sent']}")
    log = cluster.log_of(agg)
    reloads = log.count("Redis lost a script")
    tap.check(flushes > 3 and reloads > 0, "the aggregator noticed and loaded the script again",
              f"flushes={flushes} reloads={reloads}")
    tap.check("apply script" not in log and "Redis command failed" not in log,
              "no NOSCRIPT reached the consumer as a failure")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
