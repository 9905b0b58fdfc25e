#!/usr/bin/env python3
"""A Kafka outage shows on the agent's /metrics and /readyz while it lasts.

librdkafka fails a delivery only after message.timeout.ms (5 min by default), so an agent that
judged Kafka by delivery reports alone said modelwatch_agent_kafka_up 1 and counted no error
through a whole 60 s outage. The agent now follows librdkafka's broker state and error
callbacks: within seconds of every broker going down kafka_up is 0, errors are counted, and
/readyz fails once the outage has lasted producer.unready_after; when the brokers come back
everything recovers, and every event sent is in the topic.
"""
import time

from harness import http_get, metrics, run, wait_for

EVENTS = 6_000
RATE = 500


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    agent = cluster.start_agent(extra="producer:\n  unready_after: 2s\n")
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], EVENTS,
                                 extra=["--rate", str(RATE)])
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_batches_delivered_total"] >= 2,
             30, "the first deliveries")
    m = metrics(agent.http_port)
    tap.check(m["modelwatch_agent_kafka_up"] == 1, "kafka_up is 1 while Kafka is up")
    tap.check(http_get(agent.http_port, "/readyz")[0] == 200, "ready while Kafka is up")

    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    down_at = time.monotonic()
    try:
        wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_kafka_up"] == 0, 15,
                 "kafka_up to drop to 0")
        tap.check(True, "kafka_up is 0 during the outage",
                  f"after {time.monotonic() - down_at:.1f}s")
    except Exception as e:
        tap.check(False, "kafka_up is 0 during the outage", str(e))
    m = metrics(agent.http_port)
    errors = m.get("modelwatch_agent_kafka_errors_total", 0)
    tap.check(errors > 0, "Kafka client errors are counted during the outage", f"errors={errors}")
    try:
        wait_for(lambda: http_get(agent.http_port, "/readyz")[0] == 503, 15,
                 "/readyz to fail")
        tap.check(True, "/readyz fails once the outage lasted unready_after")
    except Exception as e:
        tap.check(False, "/readyz fails once the outage lasted unready_after", str(e))
    tap.check("Kafka unreachable" in cluster.log_of(agent), "the log names the outage")

    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_kafka_up"] == 1, 60,
             "kafka_up to come back")
    wait_for(lambda: http_get(agent.http_port, "/readyz")[0] == 200, 30, "/readyz to pass again")
    sent = cluster.finish_loadgen(load)
    wait_for(lambda: (lambda m: m["modelwatch_agent_events_accepted_total"] == EVENTS and
                      m["modelwatch_agent_spool_batches"] == 0 and
                      m["modelwatch_agent_kafka_in_flight_batches"] == 0)(
                          metrics(agent.http_port)), 120, "everything delivered")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    predictions = sum(o["predictions"] for o in report["origins"].values())
    tap.check(sent["sent"] == EVENTS and predictions == EVENTS,
              "every event sent is in the topic", f"sent={sent['sent']} topic={predictions}")


if __name__ == "__main__":
    run(main)
