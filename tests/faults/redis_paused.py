#!/usr/bin/env python3
"""Redis unreachable for a minute under load (redis-server stopped with SIGSTOP: connections
stay open and nothing answers, the way a hung or partitioned Redis looks to a client).

loadgen sends at 1,500 events/s (event times following the clock) through an agent to the
aggregator. After 10 s Redis is paused for PAUSE_S (60 s), then resumed (SIGCONT). While it is
paused the aggregator must say so (modelwatch_aggregator_redis_up 0, /readyz 503) and apply
nothing; afterwards every 1-minute window must hold exactly the events sent into it, with no
loss reported, and /readyz must be 200 again.

Found by this test: hiredis 0.14 has no command timeout, and a paused Redis left the aggregator
waiting on an open connection with redis_up 1 and /readyz 200 for the whole minute. Replies
awaited for redis.command_timeout (10 s) with nothing read now close the connection
(modelwatch_aggregator_redis_unanswered_total), Redis counts as down until a new connection is
answered, and what was pending is retried (applying a batch twice is a no-op).

tests/integration/test_aggregator_redis_restart.py and test_aggregator_redis_durability.py
restart Redis (a refused connection); a paused Redis accepts connections and never answers.
"""
import argparse
import signal
import sys
import time

import fault_env as fe
from harness import http_get, metrics, run, wait_for


def options():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?")
    p.add_argument("--pause-s", type=float, default=60)
    p.add_argument("--rate", type=int, default=1_500)
    return p.parse_args()


OPT = options()
BEFORE_S = 10
AFTER_S = 10


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()
    start_ms = fe.start_ms_now()
    events = int(OPT.rate * (BEFORE_S + OPT.pause_s + AFTER_S))
    minutes = int(events / OPT.rate / 60) + 1
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], events,
                                 extra=fe.load_args(OPT.rate, minutes, start_ms))
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"] > 0,
             30, "the aggregator to apply batches")
    time.sleep(BEFORE_S)
    cluster.redis.send_signal(signal.SIGSTOP)
    t_pause = time.monotonic()
    try:
        wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_redis_up"] == 0, 30,
                 "the aggregator to see Redis unreachable")
        tap.check(time.monotonic() - t_pause < 10 + 5,
                  "the aggregator reports Redis down within redis.command_timeout (10 s)")
        tap.check(http_get(agg.http_port, "/readyz")[0] == 503, "/readyz fails meanwhile")
        applied = metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"]
        time.sleep(max(0.0, OPT.pause_s - (time.monotonic() - t_pause)))
        during = metrics(agg.http_port)
        tap.check(during["modelwatch_aggregator_batches_applied_total"] == applied and
                  during["modelwatch_aggregator_redis_up"] == 0 and
                  during["modelwatch_aggregator_redis_unanswered_total"] >= 1,
                  "nothing is applied while Redis does not answer, and it stays down",
                  str({k: during[k] for k in ("modelwatch_aggregator_redis_up",
                                              "modelwatch_aggregator_redis_unanswered_total")}))
    finally:
        cluster.redis.send_signal(signal.SIGCONT)
    paused_s = time.monotonic() - t_pause
    sent = cluster.finish_loadgen(load)
    tap.check(sent["sent"] == events and sent["failed"] == 0, "loadgen handed over every event",
              str({k: sent[k] for k in ("sent", "failed")}))
    wait_for(lambda: fe.agent_drained(agent.http_port), 120, "the agent to deliver everything")
    expected = fe.expected_counts(sent)
    to_ms = start_ms + (minutes + 1) * fe.MINUTE_MS
    t_resume = time.monotonic()
    fe.wait_counted(agg.http_port, ["churn"], start_ms, to_ms, events, 180)
    caught_up_s = time.monotonic() - t_resume
    time.sleep(2)  # a batch applied twice would show now
    got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    tap.check(got == expected, "every window holds exactly the events sent into it",
              f"{got} vs {expected}")
    gm = metrics(agg.http_port)
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES} and
              gm["modelwatch_aggregator_redis_data_lost_total"] == 0,
              "the aggregator reports no loss", str(fe.aggregator_losses(gm)))
    wait_for(lambda: http_get(agg.http_port, "/readyz")[0] == 200, 30, "/readyz 200 again")
    tap.check(True, "/readyz is 200 again once Redis answers")
    print(f"# paused_s={paused_s:.1f} events={events} "
          f"apply_retries={int(gm['modelwatch_aggregator_apply_retries_total'])} "
          f"unanswered={int(gm['modelwatch_aggregator_redis_unanswered_total'])} "
          f"counted_all_s_after_loadgen={caught_up_s:.1f}", flush=True)
    tap.check(cluster.stop(agent) == 0 and cluster.stop(agg) == 0, "agent and aggregator exit 0")


if __name__ == "__main__":
    sys.argv = sys.argv[:2] if OPT.build else sys.argv[:1]
    run(main)
