#!/usr/bin/env python3
"""A failed dead-letter produce is retried; while it fails the aggregator says so (issue 8,
finding 3).

It used to wedge the consumer forever with /readyz 200: the record waiting for its DLQ delivery
was never committed nor retried, and nothing after it was consumed. Reproduced with a 3 s broker
RTT and message.timeout.ms=1000 for the aggregator's producer:

1. One undecodable record, then 200 batches of 5 predictions. While the RTT lasts, every DLQ
   delivery fails: the failures are counted, the stall is exported, /readyz answers 503.
2. Once the RTT is gone, the record reaches the DLQ (once, by its end offset), all 1000
   predictions are counted, the stall gauge is 0 and /readyz is 200 again.
"""
import subprocess
import time

from harness import TestFailure, http_get, metrics, run, wait_for


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(kafka_properties={"message.timeout.ms": "1000"})
    now = int(time.time() * 1000)
    t = now - now % 60_000
    # The group joined and consuming first: with the RTT, joining alone takes many round trips.
    cluster.produce_batches([{"agent": "a", "boot": "b", "sequence": 1000, "counters": [
        {"model": "m", "version": "v1", "start_ms": t, "count": 1}]}])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"] == 1,
             60, "the first batch to be applied")
    cluster.devkafka_cmd("rtt all 3000")
    out = subprocess.run([cluster.binary("tests/integration/mw-produce-junk"), "-b",
                          cluster.bootstrap_file, "-r", "1"], capture_output=True, timeout=120)
    if out.returncode != 0:
        raise TestFailure(f"mw-produce-junk failed: {out.stderr.decode()}")
    cluster.produce_batches([{"agent": "a", "boot": "b", "sequence": i + 1, "counters": [
        {"model": "m", "version": "v1", "start_ms": t, "count": 5}]} for i in range(200)])

    def m():
        return metrics(agg.http_port)
    wait_for(lambda: m().get("modelwatch_aggregator_dlq_failures_total", 0) >= 2, 120,
             "dead-letter deliveries to fail (and be retried)")
    tap.check(True, "failed dead-letter deliveries are counted and retried")
    tap.check(m().get("modelwatch_aggregator_dlq_stalled") == 1,
              "the stall is exported while it lasts")
    tap.check(http_get(agg.http_port, "/readyz")[0] == 503, "/readyz answers 503 while stuck")
    tap.check(m()["modelwatch_aggregator_predictions_total"] == 1,
              "nothing behind the stuck record is applied yet (order is kept)")

    cluster.devkafka_cmd("rtt all 0")
    wait_for(lambda: m()["modelwatch_aggregator_predictions_total"] == 1001, 120,
             "the 1000 predictions behind the record to be counted")
    tap.check(True, "once Kafka answers, the record goes to the DLQ and the 1000 are counted")
    wait_for(lambda: cluster.topic_end_offsets("modelwatch.telemetry.dlq") >= 1, 30,
             "the DLQ to hold the record")
    final = m()
    tap.check(sum(v for k, v in final.items()
                  if k.startswith("modelwatch_aggregator_dlq_records_total")) == 1 and
              final.get("modelwatch_aggregator_dlq_stalled") == 0,
              "one record sent to the DLQ, the stall over", final.get("modelwatch_aggregator_dlq_stalled"))
    wait_for(lambda: http_get(agg.http_port, "/readyz")[0] == 200, 10, "/readyz to be 200")
    tap.check(True, "/readyz is 200 again")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
