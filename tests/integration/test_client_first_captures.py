#!/usr/bin/env python3
"""A new client's first captures are kept while it connects, not dropped.

libmodelwatch refused captures (MW_EAGAIN, dropped and counted) until its nanomsg connection to
the agent had formed, a few milliseconds after mw_client_open(): a model server that captured
right away lost its first events (about 36 of the first 1,100 in a Python client). Now they wait
in the client's buffer for the agent. modelwatch-loadgen with --no-retry (a capture that is
refused counts as failed, never retried) captures 1,100 events at once after opening its
client: once with the agent already listening, once started a second before the agent. Both
times every capture is accepted, and the aggregator counts exactly 1,100 predictions of each
model.
"""
import time

from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 1100


def counted(agg, model):
    return metrics(agg.http_port).get(f'modelwatch_predictions_total{{model="{model}",'
                                      f'version="v1"}}', 0)


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    endpoint = f"ipc://{cluster.dir}/agent.sock"

    # 1. The agent listens; the client captures the moment it is open.
    agent = start_agent(cluster, endpoint=endpoint)
    first = cluster.loadgen(endpoint, ["listening:v1"], EVENTS, extra=["--no-retry"])
    tap.check(first["sent"] == EVENTS and first["failed"] == 0 and first["dropped"] == 0,
              f"a new client's first {EVENTS} captures are all accepted", str(first))
    tap.check(cluster.stop(agent) == 0, "the agent exits 0")

    # 2. The client opens and captures before any agent listens.
    load = cluster.start_loadgen(endpoint, ["early:v1"], EVENTS, extra=["--no-retry"])
    time.sleep(1)
    agent = start_agent(cluster, name="agent-2", endpoint=endpoint,
                        spool_dir=f"{cluster.dir}/agent-spool")
    early = cluster.finish_loadgen(load, timeout_s=60)
    tap.check(early["sent"] == EVENTS and early["failed"] == 0 and early["dropped"] == 0 and
              early["flushed"],
              f"captured before the agent listened, all {EVENTS} wait for it", str(early))
    for model in ("listening", "early"):
        try:
            wait_for(lambda: counted(agg, model) == EVENTS, 60,
                     f"the aggregator to count {model}")
        except Exception:
            pass
    time.sleep(1)  # anything more would show now
    tap.check(counted(agg, "listening") == EVENTS and counted(agg, "early") == EVENTS,
              f"the aggregator counts exactly {EVENTS} of each",
              f"listening={counted(agg, 'listening')} early={counted(agg, 'early')}")
    m = metrics(agent.http_port)
    tap.check(m["modelwatch_agent_events_lost_in_transit_total"] == 0,
              "nothing was lost in transit")
    tap.check(cluster.stop(agent) == 0, "the second agent exits 0")


if __name__ == "__main__":
    run(main)
