#!/usr/bin/env python3
"""Two aggregator replicas under load, one killed with SIGKILL: the survivor takes its
partitions over and every event is counted once.

Two replicas share the consumer group and Redis; three agents send 30,000 events each at
1,500 events/s (event times following the clock). After 8 s, replica b (holding part of the
4 partitions) is killed with SIGKILL, without leaving the group. Its session expires after 6 s
(session.timeout.ms), replica a is assigned all 4 partitions and consumes from the last
committed offsets: batches b applied but did not commit come again and are refused as already
applied. Windows read through a must equal the events sent, exactly.

tests/integration/test_aggregator_replicas.py shows two live replicas count like one;
test_alert_replicas.py kills the replica that holds the alerting lease and checks the pages.
"""
import signal
import time

import fault_env as fe
from harness import metrics, run, wait_for

AGENTS = 3
EVENTS = 30_000
RATE = 1_500


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    a = cluster.start_aggregator(name="aggregator-a")
    b = cluster.start_aggregator(name="aggregator-b")
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_partitions_assigned"] +
             metrics(b.http_port)["modelwatch_aggregator_partitions_assigned"] == 4, 30,
             "the two replicas to share the 4 partitions")
    start_ms = fe.start_ms_now()
    loads = []
    for i in range(AGENTS):
        agent = cluster.start_agent(name=f"agent-{i}", agent_id=f"pod-{i}",
                                    extra=fe.COUNTERS_ONLY)
        loads.append((agent, cluster.start_loadgen(
            agent.endpoint, [f"model{i}:v1"], EVENTS,
            extra=fe.load_args(RATE, 1, start_ms) + ["--seed", str(i + 1)])))
    time.sleep(8)
    mb = metrics(b.http_port)
    tap.check(mb["modelwatch_aggregator_partitions_assigned"] > 0 and
              mb["modelwatch_aggregator_batches_applied_total"] > 0,
              "replica b holds partitions and applies batches when it is killed",
              f"partitions={mb['modelwatch_aggregator_partitions_assigned']} "
              f"applied={mb['modelwatch_aggregator_batches_applied_total']}")
    cluster.stop(b, sig=signal.SIGKILL)
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_partitions_assigned"] == 4, 60,
             "replica a to take over every partition")
    tap.check(True, "replica a holds all 4 partitions once b's session expired")
    expected = {}
    for agent, load in loads:
        sent = cluster.finish_loadgen(load)
        tap.check(sent["sent"] == EVENTS and sent["failed"] == 0,
                  f"{agent.mw_name}: loadgen handed over every event")
        for k, v in fe.expected_counts(sent).items():
            expected[k] = expected.get(k, 0) + v
        wait_for(lambda: fe.agent_drained(agent.http_port), 120, f"{agent.mw_name} to deliver")
    models = [f"model{i}" for i in range(AGENTS)]
    to_ms = start_ms + 3 * fe.MINUTE_MS
    fe.wait_counted(a.http_port, models, start_ms, to_ms, AGENTS * EVENTS, 180)
    time.sleep(3)  # a batch applied twice would show now
    got = fe.counted(a.http_port, models, start_ms, to_ms)
    tap.check(got == expected, "every window holds exactly the events sent into it",
              f"{got} vs {expected}")
    gm = metrics(a.http_port)
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES},
              "the surviving replica reports no loss", str(fe.aggregator_losses(gm)))
    tap.check(cluster.stop(a) == 0, "replica a exits 0")


if __name__ == "__main__":
    run(main)
