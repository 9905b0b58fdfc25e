#!/usr/bin/env python3
"""The aggregator neither skips nor idles silently.

(1) Its committed offset falls out of Kafka's retention while it is stopped (the mock cluster
keeps about the last 5 MB of a partition, and 150,000 sampled events are several times that).
Before, librdkafka reset it to the earliest record with a log line of its own and nothing was
counted. Now the skipped offset range is logged, counted in records, and every record of the
partition is either consumed or counted as skipped: consumed + skipped == produced since the
commit, exactly.
(2) /metrics shows each held partition's lag, 0 once caught up.
(3) Two replicas on a one-partition topic: the one holding no partition fails /readyz and says
why in its log; the other is ready.
"""
import time

from harness import TestFailure, free_port, http_get, metrics, run, wait_for

BEFORE = 20_000
DURING = 150_000
SAMPLED = 'models:\n  - name: "*"\n    sample_rate: 1\n'


def start(cluster, name, group, topic="modelwatch.telemetry"):
    port = free_port()
    cfg = cluster.write_config(f"{name}.yaml", f"""kafka:
  bootstrap_file: {cluster.bootstrap_file}
  topic: {topic}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
consumer:
  group_id: {group}
redis:
  port: {cluster.redis_port}
  retry_max: 500ms
http:
  port: {port}
""")
    proc = cluster.spawn(name, [cluster.binary("aggregator/modelwatch-aggregator"), "--config",
                                cfg])
    proc.http_port = port
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
    return proc


def settled_end(cluster, topic="modelwatch.telemetry"):
    """The topic's end offsets once they stop moving."""
    last = {"end": -1, "since": time.monotonic()}

    def still():
        end = cluster.topic_end_offsets(topic)
        if end != last["end"]:
            last.update(end=end, since=time.monotonic())
        return time.monotonic() - last["since"] > 3
    wait_for(still, 120, "the topic to stop growing")
    return last["end"]


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agent = cluster.start_agent(extra=SAMPLED)
    agg = start(cluster, "aggregator", "g")
    start_ms = (int(time.time() * 1000) // 60000 - 30) * 60000
    cluster.loadgen(agent.endpoint, ["churn:v1"], BEFORE, windows=5, start_ms=start_ms,
                    extra=["--rate", "50000"])
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_predictions_total"] == BEFORE,
             60, "the aggregator to count the first events")
    committed = settled_end(cluster)
    tap.check(cluster.stop(agg) == 0, f"aggregator stops having applied {committed} records")

    cluster.loadgen(agent.endpoint, ["churn:v1"], DURING, windows=5, start_ms=start_ms,
                    extra=["--rate", "50000"])
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
             == BEFORE + DURING, 120, "the agent to accept every event")
    end = settled_end(cluster)
    produced = end - committed

    agg = start(cluster, "aggregator-restarted", "g")

    def caught_up():
        m = metrics(agg.http_port)
        return m["modelwatch_aggregator_records_consumed_total"] + \
            m.get("modelwatch_aggregator_records_skipped_total", 0) >= produced
    try:
        wait_for(caught_up, 120, "the restarted aggregator to account for every record")
    except TestFailure:
        pass
    time.sleep(2)
    m = metrics(agg.http_port)
    consumed = m["modelwatch_aggregator_records_consumed_total"]
    skipped = m.get("modelwatch_aggregator_records_skipped_total", 0)
    tap.check(skipped > 0 and consumed + skipped == produced,
              f"every record produced after the commit ({produced}) is consumed or counted as "
              f"skipped", f"consumed {consumed}, skipped {skipped}")
    tap.check(m.get("modelwatch_aggregator_offset_resets_total") == 1,
              "one out-of-retention offset reset is counted",
              f"{m.get('modelwatch_aggregator_offset_resets_total')}")
    log = cluster.log_of(agg)
    tap.check(f"from_offset={committed} to_offset={committed + int(skipped)} "
              f"records={int(skipped)}" in log,
              "the log names the skipped offset range", log[-3000:])

    lags = {k: v for k, v in m.items() if k.startswith("modelwatch_aggregator_consumer_lag")}
    tap.check(m.get("modelwatch_aggregator_partitions_assigned") == 4 and lags
              and all(v == 0 for v in lags.values()),
              "4 partitions held, each with lag 0 once caught up", f"{lags}")
    tap.check(http_get(agg.http_port, "/readyz")[0] == 200, "the replica holding them is ready")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")

    # Two replicas, one partition: one of them idles.
    tap.check(cluster.devkafka_cmd("topic solo 1").startswith("ok"), "one-partition topic")
    a = start(cluster, "solo-a", "solo", topic="solo")
    b = start(cluster, "solo-b", "solo", topic="solo")

    def one_each():
        ready = sorted(http_get(p.http_port, "/readyz")[0] for p in (a, b))
        return ready == [200, 503]
    wait_for(one_each, 30, "one replica ready, the other not")
    idle = a if http_get(a.http_port, "/readyz")[0] == 503 else b
    wait_for(lambda: "holding no Kafka partitions" in cluster.log_of(idle), 30,
             "the idle replica to say why")
    tap.check(metrics(idle.http_port).get("modelwatch_aggregator_partitions_assigned") == 0,
              "the idle replica holds no partitions, says so in its log and fails /readyz")


if __name__ == "__main__":
    run(main)
