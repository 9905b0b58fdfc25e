#!/usr/bin/env python3
"""1,000 bad Kafka records (random bytes, truncated batches, an unknown schema version, zstd
frames of garbage) all land in the dead-letter topic, counted by reason; the aggregator keeps
serving and still counts good traffic exactly."""
import json
import subprocess

from harness import TestFailure, http_get, metrics, run, wait_for

RANDOM, TRUNCATED, SCHEMA, GARBAGE = 400, 300, 100, 200
BAD = RANDOM + TRUNCATED + SCHEMA + GARBAGE


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    out = subprocess.run([cluster.binary("tests/integration/mw-produce-junk"), "-b",
                          cluster.bootstrap_file, "-r", str(RANDOM), "-c", str(TRUNCATED),
                          "-s", str(SCHEMA), "-g", str(GARBAGE)],
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        raise TestFailure(f"mw-produce-junk failed: {out.stderr.decode()}")
    tap.check(json.loads(out.stdout)["delivered"] == BAD, f"{BAD} bad records produced")

    def dlq_total():
        m = metrics(agg.http_port)
        return sum(v for k, v in m.items()
                   if k.startswith("modelwatch_aggregator_dlq_records_total"))
    wait_for(lambda: dlq_total() == BAD, 60, "every bad record to reach the DLQ")
    m = metrics(agg.http_port)
    by_reason = {k.split('"')[1]: v for k, v in m.items()
                 if k.startswith("modelwatch_aggregator_dlq_records_total")}
    tap.check(by_reason["schema"] == SCHEMA, "unknown schema versions counted as such",
              str(by_reason))
    tap.check(by_reason["decompress"] >= TRUNCATED, "truncated frames fail decompression",
              str(by_reason))
    tap.check(sum(by_reason.values()) == BAD, "every bad record counted once", str(by_reason))
    wait_for(lambda: cluster.topic_end_offsets("modelwatch.telemetry.dlq") == BAD, 30,
             "the DLQ topic to hold every bad record")
    tap.check(True, "the dead-letter topic holds exactly the bad records")
    tap.check(m["modelwatch_aggregator_batches_applied_total"] == 0, "nothing bad was applied")
    tap.check(http_get(agg.http_port, "/healthz")[0] == 200, "the aggregator keeps serving")

    agent = cluster.start_agent()
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], 3000)
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_predictions_total"]
             == sent["sent"], 60, "good traffic after the junk to be counted")
    tap.check(True, "good traffic after the junk is counted exactly")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
