#!/usr/bin/env python3
"""Kafka acknowledgements that arrive out of spool order do not wedge the spool.

Batches spread over partitions led by different brokers (partitioner=random, three brokers, one
of them 300 ms slower) are acknowledged out of the order they left the spool. The spool needs
its acks in order; an ack that came early used to be refused ("cannot acknowledge a spooled
batch") and every later one after it, so the spool never emptied and SIGTERM could not drain.
Now every batch is acknowledged once all older ones are, the spool empties, and the topic
holds every batch once with the exact event count.
"""
from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 20_000


def main(tap, cluster):
    cluster.start_devkafka(brokers=3)
    audit = cluster.start_audit()
    agent = start_agent(cluster, kafka_properties={"partitioner": "random"},
                        extra="batch:\n  max_records: 200\n  max_age: 50ms\n")
    tap.check(cluster.devkafka_cmd("rtt 2 300").startswith("ok"), "broker 2 is 300 ms slower")
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS, extra=["--rate", "4000"])
    tap.check(sent["sent"] == EVENTS, "loadgen handed over every event", str(sent["sent"]))

    def drained():
        m = metrics(agent.http_port)
        return (m["modelwatch_agent_events_accepted_total"] == EVENTS and
                m["modelwatch_agent_spool_batches"] == 0 and
                m["modelwatch_agent_kafka_in_flight_batches"] == 0)
    try:
        wait_for(drained, 60, "the spool to empty")
        tap.check(True, "the spool empties although acks arrive out of order")
    except Exception as e:
        m = metrics(agent.http_port)
        tap.check(False, "the spool empties although acks arrive out of order",
                  f"{e}: spool_batches={m['modelwatch_agent_spool_batches']} "
                  f"sealed={m['modelwatch_agent_batches_sealed_total']} "
                  f"delivered={m['modelwatch_agent_batches_delivered_total']}")
    tap.check("cannot acknowledge" not in cluster.log_of(agent), "no ack refused by the spool")
    m = metrics(agent.http_port)
    sealed = int(m["modelwatch_agent_batches_sealed_total"])
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    origin = next(iter(report["origins"].values()))
    tap.check(origin["distinct"] == sealed and origin["missing"] == [],
              f"sequences 1..{sealed} all in the topic", str(origin["missing"][:20]))
    tap.check(origin["predictions"] == EVENTS, "the topic's counters hold exactly the events sent",
              f"predictions={origin['predictions']}")


if __name__ == "__main__":
    run(main)
