#!/usr/bin/env python3
"""Zero loss through a Kafka outage.

50,000 events flow through a real agent into modelwatch-devkafka at about 1,000 events/s while
every broker is down for 30 s. Afterwards the topic must hold every sealed batch exactly once
(sequence numbers 1..N, no gap, no duplicate, read while being written because the mock keeps
only the last few MB per partition) and the batches' exact counters must add up to the 50,000
events sent. The agent then stops on SIGTERM with exit status 0.
"""
import time

from harness import metrics, run, wait_for

EVENTS = 50_000
RATE = 1_000
OUTAGE_S = 30


def main(tap, cluster):
    cluster.start_devkafka()
    agent = cluster.start_agent()
    audit = cluster.start_audit()
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], EVENTS,
                                 extra=["--rate", str(RATE)])
    time.sleep(8)
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    time.sleep(OUTAGE_S)
    during = metrics(agent.http_port)
    tap.check(during["modelwatch_agent_kafka_up"] == 0 or
              during["modelwatch_agent_spool_batches"] > 10,
              "the agent held batches while Kafka was down",
              f"spool_batches={during['modelwatch_agent_spool_batches']}")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    sent = cluster.finish_loadgen(load)
    tap.check(sent["sent"] == EVENTS and sent["failed"] == 0, "loadgen handed over every event",
              str(sent))

    def drained():
        m = metrics(agent.http_port)
        return (m["modelwatch_agent_events_accepted_total"] == EVENTS and
                m["modelwatch_agent_spool_batches"] == 0 and
                m["modelwatch_agent_kafka_in_flight_batches"] == 0)
    wait_for(drained, 120, "the agent to deliver everything after the outage")
    m = metrics(agent.http_port)
    sealed = int(m["modelwatch_agent_batches_sealed_total"])
    tap.check(m["modelwatch_agent_batches_delivered_total"] == sealed,
              "every sealed batch acknowledged", f"sealed={sealed} m={m}")
    tap.check(sum(v for k, v in m.items()
                  if k.startswith("modelwatch_agent_batches_dropped_total")) == 0,
              "no batch dropped")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    origins = report["origins"]
    tap.check(len(origins) == 1, "one agent boot in the topic", str(origins.keys()))
    origin = next(iter(origins.values()))
    tap.check(origin["max_sequence"] == sealed and origin["distinct"] == sealed,
              f"sequences 1..{sealed} all present", str(origin["missing"][:20]))
    tap.check(origin["duplicates"] == [] and origin["batches"] == sealed,
              "no batch twice in the topic", str(origin["duplicates"][:20]))
    tap.check(origin["predictions"] == EVENTS, "the topic's counters hold exactly the events sent",
              f"predictions={origin['predictions']}")
    tap.check(report["undecodable"] == 0, "every record decodes")


if __name__ == "__main__":
    run(main)
