#!/usr/bin/env python3
"""SIGTERM of an agent under load loses no event a client handed over.

200,000 events flow from one client at 20,000 events/s while the agent is stopped with SIGTERM
and restarted (same endpoint, same spool) three times. The agent drained every sealed batch,
but events the client had handed to nanomsg and the agent had not read yet died with its
socket, counted nowhere: the agent stopped reading at SIGTERM and kept the socket bound while
it delivered. Now the agent removes its socket file and drains its intake until clients go
quiet before the final seal, and the client holds what it has while the agent's socket file is
gone, for the next agent. Every event the client accepted is in the topic, exactly.
"""
import time

from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 200_000
RATE = 20_000
CYCLES = 3


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    endpoint = f"ipc://{cluster.dir}/agent.sock"
    spool = f"{cluster.dir}/spool"
    agent = start_agent(cluster, endpoint=endpoint, spool_dir=spool)
    load = cluster.start_loadgen(endpoint, ["churn:v1"], EVENTS, extra=["--rate", str(RATE)])
    exits = []
    for cycle in range(CYCLES):
        time.sleep(2)
        exits.append(cluster.stop(agent))
        agent = start_agent(cluster, name=f"agent-{cycle + 2}", endpoint=endpoint,
                            spool_dir=spool)
    tap.check(exits == [0] * CYCLES, "every agent exits 0 on SIGTERM", str(exits))
    sent = cluster.finish_loadgen(load)
    tap.check(sent["failed"] == 0, "loadgen handed over every event", str(sent))
    wait_for(lambda: (lambda m: m["modelwatch_agent_spool_batches"] == 0 and
                      m["modelwatch_agent_kafka_in_flight_batches"] == 0)(
                          metrics(agent.http_port)), 60, "the last agent to deliver")
    time.sleep(2)  # the last batch sealed
    tap.check(cluster.stop(agent) == 0, "last agent exits 0")
    report = cluster.stop_audit(audit)
    in_topic = sum(o["predictions"] for o in report["origins"].values())
    print(f"# accepted_by_client={sent['sent']} topic={in_topic} "
          f"missing={sent['sent'] - in_topic}", flush=True)
    tap.check(in_topic == sent["sent"],
              "every event the client accepted is in the topic",
              f"client accepted={sent['sent']} topic={in_topic}")


if __name__ == "__main__":
    run(main)
