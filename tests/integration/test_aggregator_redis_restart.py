#!/usr/bin/env python3
"""Redis restarted mid-stream: the aggregator pauses, retries and resumes; nothing is lost and
nothing counted twice. Redis runs with an append-only file fsynced on every write, as a
production Redis holding modelwatch's state would."""
import signal
import time

from harness import api_data, http_get, metrics, run, wait_for

EVENTS = 60_000


def main(tap, cluster):
    port = cluster.start_redis_persistent()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()
    start_ms = (int(time.time() * 1000) // 60000 - 20) * 60000
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], EVENTS,
                                 extra=["--rate", "10000", "--windows", "3", "--start-ms",
                                        str(start_ms)])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_predictions_total"] > 5000,
             60, "the aggregator to be mid-stream")
    cluster.stop(cluster.redis, sig=signal.SIGKILL)
    time.sleep(3)
    tap.check(metrics(agg.http_port)["modelwatch_aggregator_redis_up"] == 0,
              "the aggregator sees Redis down")
    cluster.start_redis(port=port, persistent=True)
    sent = cluster.finish_loadgen(load)
    expected = {w["start_ms"]: w["count"] for w in sent["windows"]}

    def counts():
        doc = api_data(agg.http_port, f"/api/v1/models/churn/windows?from={start_ms}"
                                      f"&to={start_ms + 600_000}")
        return {w["start_ms"]: w["count"] for w in doc["windows"]}
    wait_for(lambda: counts() == expected, 120, "the windows to reach the events sent")
    time.sleep(2)
    tap.check(counts() == expected and sum(expected.values()) == EVENTS,
              "no loss and no double count across the Redis restart", f"{counts()}")
    tap.check(metrics(agg.http_port)["modelwatch_aggregator_apply_retries_total"] > 0,
              "applications were retried while Redis was down")
    m = metrics(agg.http_port)
    tap.check(m["modelwatch_aggregator_redis_data_lost_total"] == 0
              and m["modelwatch_aggregator_redis_durable"] == 1
              and http_get(agg.http_port, "/readyz")[0] == 200,
              "a Redis that kept its append-only file is durable and lost nothing: ready",
              f"{m['modelwatch_aggregator_redis_data_lost_total']} "
              f"{m['modelwatch_aggregator_redis_durable']}")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
