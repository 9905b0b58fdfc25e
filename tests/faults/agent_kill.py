#!/usr/bin/env python3
"""kill -9 of an agent under load, restarted on the same spool and endpoint, three times.

loadgen sends 120,000 events at 4,000 events/s to an agent that ships to Kafka and an
aggregator; every 6 s the agent is killed with SIGKILL and a new one starts on the same spool
directory and endpoint, while the client keeps capturing. Each new agent reports the events its
predecessor had accepted and not sealed (modelwatch_agent_events_lost_before_start) and the
events the client had handed to the dead agent's socket that it never read
(modelwatch_agent_events_lost_in_transit_total). At the end:
events handed over by the client == events in the windows + every loss the agents report,
exactly, and the reported loss is at most what the agents accept in a batch interval.

tests/integration/test_agent_crash.py kills an agent during a Kafka outage with the load
stopped; test_agent_sigterm_under_load.py stops agents under load with SIGTERM. This is the
kill -9 under load, counted in the aggregator's windows.
"""
import signal
import time

import fault_env as fe
from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 120_000
RATE = 4_000
KILLS = 3
KILL_EVERY_S = 6
BATCH_AGE_S = 1  # batch.max_age: what one kill may lose at most, at RATE


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    endpoint = f"ipc://{cluster.dir}/agent.sock"
    spool = f"{cluster.dir}/spool"
    agent = start_agent(cluster, endpoint=endpoint, spool_dir=spool,
                        extra=f"batch:\n  max_age: {BATCH_AGE_S}s\n")
    start_ms = fe.start_ms_now()
    load = cluster.start_loadgen(endpoint, ["churn:v1"], EVENTS,
                                 extra=fe.load_args(RATE, 1, start_ms))
    reported = []
    in_transit = []  # what each agent found its predecessor lost between client and socket

    def transit(port):
        m = metrics(port)
        return int(m.get("modelwatch_agent_events_lost_in_transit_total", 0))
    for kill in range(KILLS):
        time.sleep(KILL_EVERY_S)
        if kill:
            in_transit.append(transit(agent.http_port))
        cluster.stop(agent, sig=signal.SIGKILL)
        agent = start_agent(cluster, name=f"agent-{kill + 2}", endpoint=endpoint,
                            spool_dir=spool, extra=f"batch:\n  max_age: {BATCH_AGE_S}s\n")
        reported.append(int(metrics(agent.http_port)["modelwatch_agent_events_lost_before_start"]))
    tap.check(True, f"agent killed with SIGKILL and restarted {KILLS} times under load")
    sent = cluster.finish_loadgen(load)
    tap.check(sent["sent"] == EVENTS and sent["failed"] == 0, "the client accepted every event",
              str({k: sent[k] for k in ("sent", "failed")}))
    wait_for(lambda: fe.agent_drained(agent.http_port), 120, "the last agent to deliver")
    time.sleep(BATCH_AGE_S + 1)  # its last batch sealed
    wait_for(lambda: fe.agent_drained(agent.http_port), 60, "the last batch delivered")
    last = metrics(agent.http_port)
    in_transit.append(transit(agent.http_port))
    other_losses = int(fe.family(last, "modelwatch_agent_events_lost_total"))
    lost = sum(reported) + sum(in_transit) + other_losses
    to_ms = start_ms + 3 * fe.MINUTE_MS
    want = sent["sent"] - lost
    got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    try:
        got = fe.wait_counted(agg.http_port, ["churn"], start_ms, to_ms, want, 90)
    except Exception as e:  # report the numbers in the check below
        print(f"# {e}", flush=True)
        got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    time.sleep(2)
    got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    counted = sum(got.values())
    print(f"# sent={sent['sent']} counted={counted} lost_before_start={reported} "
          f"lost_in_transit={in_transit} lost_other={other_losses} "
          f"missing_unreported={sent['sent'] - counted - lost}",
          flush=True)
    tap.check(counted + lost == sent["sent"],
              "events sent == events in the windows + events the agents report lost",
              f"sent={sent['sent']} counted={counted} reported_lost={lost}")
    tap.check(all(n <= RATE * BATCH_AGE_S for n in reported),
              f"each kill lost at most one batch interval ({RATE * BATCH_AGE_S} events)",
              str(reported))
    gm = metrics(agg.http_port)
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES},
              "the aggregator reports no loss", str(fe.aggregator_losses(gm)))
    tap.check(cluster.stop(agent) == 0, "the last agent exits 0 on SIGTERM")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
