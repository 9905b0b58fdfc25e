#!/usr/bin/env python3
"""Exactly once into Redis, under replays and crashes.

(1) The same 100,000 events are produced twice: an agent spools them while Kafka is down and
stops; a copy of its spool is made; once Kafka is back, an agent replays the spool and another
replays the copy, so the topic holds every batch twice. (2) The aggregator is killed with -9
while it applies them and restarted. The final window counts must equal the events sent, once.

Payload sampling is off (rate 0): the exact counters carry every count, and batches stay small
enough for the mock cluster, which keeps only about the last 5 MB of each partition.
"""
import shutil
import signal
import time

from harness import api_data, metrics, run, wait_for

EVENTS = 100_000


def window_counts(port, start_ms):
    doc = api_data(port, f"/api/v1/models/churn/windows?from={start_ms}&to={start_ms + 600_000}")
    return {w["start_ms"]: w["count"] for w in doc["windows"]}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "Kafka down")
    counters_only = ('models:\n  - name: "*"\n    sample_rate: 0\n    keep_errors: false\n')
    agent = cluster.start_agent(extra="shutdown_grace: 1s\nbatch:\n  max_age: 50ms\n" +
                                counters_only)
    start_ms = (int(time.time() * 1000) // 60000 - 20) * 60000
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS, windows=5, start_ms=start_ms,
                           extra=["--rate", "50000"])
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS,
             60, "the agent to accept every event")
    tap.check(cluster.stop(agent) == 0, "agent stops with its batches in the spool")
    copy = agent.spool_dir + "-copy"
    shutil.copytree(agent.spool_dir, copy)
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "Kafka back")

    first = cluster.start_agent(name="replay-1", spool_dir=agent.spool_dir, extra=counters_only)
    second = cluster.start_agent(name="replay-2", spool_dir=copy, extra=counters_only)
    for a in (first, second):
        wait_for(lambda: metrics(a.http_port)["modelwatch_agent_spool_batches"] == 0, 60,
                 f"{a.mw_name} to replay its spool")
    batches = metrics(first.http_port)["modelwatch_agent_batches_delivered_total"]
    tap.check(batches == metrics(second.http_port)["modelwatch_agent_batches_delivered_total"]
              and batches >= 20, "every batch produced twice", f"batches={batches}")

    # Every batch spans five minutes of event time: allow that much disorder.
    lenient = "windows:\n  out_of_orderness: 10m\n"
    agg = cluster.start_aggregator(extra=lenient)
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_records_consumed_total"]
             >= batches // 2, 60, "the aggregator to be mid-stream")
    cluster.stop(agg, sig=signal.SIGKILL)
    tap.check(True, "aggregator killed with SIGKILL mid-stream")
    agg = cluster.start_aggregator(name="aggregator-restarted", extra=lenient)
    expected = {w["start_ms"]: w["count"] for w in sent["windows"]}
    last = {}

    def reached():
        last["counts"] = window_counts(agg.http_port, start_ms)
        last["metrics"] = {k: v for k, v in metrics(agg.http_port).items()
                           if "late" in k or "predictions" in k or "consumed" in k}
        return last["counts"] == expected
    try:
        wait_for(reached, 120, "the windows to reach the events sent")
    except Exception:
        import subprocess
        keys = subprocess.run(["redis-cli", "-p", str(cluster.redis_port), "--scan", "--pattern",
                               "mw:*dedup*"], capture_output=True, text=True).stdout.split()
        bits = {k: subprocess.run(["redis-cli", "-p", str(cluster.redis_port), "BITCOUNT", k],
                                  capture_output=True, text=True).stdout.strip() for k in keys}
        tap.check(False, "windows reached the events sent", f"{last} expected {expected} {bits}")
        raise
    time.sleep(2)  # anything still to consume would be a duplicate: give it the chance
    end = cluster.topic_end_offsets("modelwatch.telemetry")
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_records_consumed_total"] > 0,
             30, "the restarted aggregator to consume")
    counts = window_counts(agg.http_port, start_ms)
    tap.check(counts == expected and sum(counts.values()) == EVENTS,
              "final window counts equal the events sent, once", f"{counts} vs {expected}")
    tap.check(end == 2 * batches, "the topic holds every batch twice", f"end={end}")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
