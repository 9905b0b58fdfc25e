#!/usr/bin/env python3
"""kill -9 of the aggregator every few seconds while traffic flows: nothing lost, nothing
counted twice.

loadgen sends 200,000 events at 2,500 events/s (event times following the clock) through an
agent; five times, the aggregator is killed with SIGKILL KILL_AFTER_S (2 s) after it started
applying batches, and a new one starts at once in the same consumer group on the same Redis.
(Each new member gets partitions only once the dead one's session has expired, 6 s: so a kill
comes every 8-10 s, always in the middle of applying.) Batches whose offsets were not committed
are consumed again and refused by the exactly-once record of applied batches. Each 1-minute
window must end with exactly the events sent into it, and the last aggregator must report no
loss.

tests/integration/test_aggregator_exactly_once.py kills the aggregator once while it replays a
spooled backlog; this kills it repeatedly under live traffic, with the group rebalancing around
members that died without leaving.
"""
import signal
import time

import fault_env as fe
from harness import metrics, run, wait_for

EVENTS = 200_000
RATE = 2_500
KILLS = 5
KILL_AFTER_S = 2


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent(extra=fe.COUNTERS_ONLY)
    start_ms = fe.start_ms_now()
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1", "fraud:v2"], EVENTS,
                                 extra=fe.load_args(RATE, 1, start_ms))
    applied_before_kill = []
    for kill in range(KILLS):
        wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]
                 > 0, 60, f"{agg.mw_name} to apply batches")
        time.sleep(KILL_AFTER_S)
        applied_before_kill.append(
            int(metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]))
        cluster.stop(agg, sig=signal.SIGKILL)
        agg = cluster.start_aggregator(name=f"aggregator-{kill + 2}")
    print(f"# batches applied by each killed aggregator: {applied_before_kill}", flush=True)
    tap.check(load.poll() is None and all(n > 0 for n in applied_before_kill),
              f"aggregators killed with SIGKILL {KILLS} times while applying batches, the load "
              "still running", str(applied_before_kill))
    sent = cluster.finish_loadgen(load)
    tap.check(sent["sent"] == EVENTS and sent["failed"] == 0, "loadgen handed over every event",
              str({k: sent[k] for k in ("sent", "failed")}))
    wait_for(lambda: fe.agent_drained(agent.http_port), 120, "the agent to deliver everything")
    am = metrics(agent.http_port)
    tap.check(am["modelwatch_agent_events_accepted_total"] == EVENTS and
              fe.agent_losses(am) == {k: 0 for k in fe.AGENT_EVENT_LOSSES},
              "the agent accepted every event and lost none", str(fe.agent_losses(am)))
    expected = fe.expected_counts(sent)
    to_ms = start_ms + 3 * fe.MINUTE_MS
    fe.wait_counted(agg.http_port, ["churn", "fraud"], start_ms, to_ms, EVENTS, 180)
    time.sleep(3)  # a batch applied twice would show now
    got = fe.counted(agg.http_port, ["churn", "fraud"], start_ms, to_ms)
    tap.check(got == expected, "every window holds exactly the events sent into it",
              f"{got} vs {expected}")
    gm = metrics(agg.http_port)
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES},
              "the last aggregator reports no loss", str(fe.aggregator_losses(gm)))
    tap.check(cluster.stop(agent) == 0 and cluster.stop(agg) == 0, "agent and aggregator exit 0")


if __name__ == "__main__":
    run(main)
