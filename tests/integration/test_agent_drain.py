#!/usr/bin/env python3
"""SIGTERM drains with zero loss.

(1) Kafka up: events still in the open batch at SIGTERM are sealed and delivered before the
agent exits 0. (2) Kafka down: SIGTERM seals, waits its grace period, exits 0 with the batches
in the spool; the next agent on that spool delivers them. Either way the topic's counters equal
the events sent.
"""
import time

from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 7_000


def topic_predictions(report):
    return sum(o["predictions"] for o in report["origins"].values())


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    # One open batch for all the events: batch.max_bytes above librdkafka's default
    # message.max.bytes needs the producer's limit raised with it.
    agent = start_agent(cluster, kafka_properties={"message.max.bytes": "20000000"},
                        extra="batch:\n  max_age: 60s\n  max_bytes: 16MiB\n")
    sent1 = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS)
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS,
             30, "the agent to accept every event")
    tap.check(metrics(agent.http_port)["modelwatch_agent_batches_sealed_total"] == 0,
              "nothing sealed yet when SIGTERM arrives")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM with Kafka up")

    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    second = cluster.start_agent(name="agent-2", agent_id="agent-2",
                                 extra="shutdown_grace: 2s\n")
    sent2 = cluster.loadgen(second.endpoint, ["fraud:v1"], EVENTS)
    wait_for(lambda: metrics(second.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS,
             30, "the second agent to accept every event")
    started = time.monotonic()
    tap.check(cluster.stop(second) == 0, "agent exits 0 on SIGTERM with Kafka down")
    tap.check(time.monotonic() - started < 10, "and within its grace period")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    third = cluster.start_agent(name="agent-3", agent_id="agent-2", spool_dir=second.spool_dir)
    wait_for(lambda: metrics(third.http_port)["modelwatch_agent_spool_batches"] == 0, 60,
             "the next agent to deliver the spooled batches")
    tap.check(metrics(third.http_port)["modelwatch_agent_events_lost_before_start"] == 0,
              "a clean stop loses nothing unsealed")
    tap.check(cluster.stop(third) == 0, "third agent exits 0")
    report = cluster.stop_audit(audit)
    total = sent1["sent"] + sent2["sent"]
    tap.check(topic_predictions(report) == total == 2 * EVENTS,
              "the topic's counters hold exactly the events sent",
              f"predictions={topic_predictions(report)} sent={total}")
    tap.check(all(o["duplicates"] == [] and o["missing"] == [] for o in report["origins"].values()),
              "no batch missing or twice", str(report["origins"]))


if __name__ == "__main__":
    run(main)
