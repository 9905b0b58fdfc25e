#!/usr/bin/env python3
"""An event time beyond intake.max_future_skew ahead of the agent's clock is counted invalid.

One event stamped in microseconds-as-milliseconds, or a clock far ahead, used to pass the agent
untouched and poison the watermark downstream. The agent now drops such events (and labels) at
intake, counting them under modelwatch_agent_messages_dropped_total{reason="future_time"} and
naming them in the log; every other event is counted as usual, and old event times (backfills,
replays of a past day) stay legitimate.
"""
import time

from agent_faults import modelwatch_module, sample
from harness import metrics, run, wait_for

FUTURE = 300
PAST = 500
NOW = 700


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    agent = cluster.start_agent()
    now_ms = int(time.time() * 1000)
    future = cluster.loadgen(agent.endpoint, ["churn:v1"], FUTURE,
                             start_ms=now_ms + 3_600_000, extra=["--seed", "1"])
    # One event stamped in microseconds where milliseconds belong, and a label from the future.
    mw = modelwatch_module(cluster)
    with mw.Client(agent.endpoint) as client:  # close hands everything over
        wait_for(lambda: client.capture("fraud", "micros-1", version="v1",
                                        event_time_ms=now_ms * 1000), 10, "the client to connect")
        tap.check(client.feedback("fraud", "micros-1", "1", version="v1",
                                  event_time_ms=now_ms + 3_600_000), "a label from the future")
    micros = {"sent": 1}
    past = cluster.loadgen(agent.endpoint, ["churn:v1"], PAST, windows=24,
                           start_ms=now_ms - 86_400_000, extra=["--window-ms", "3600000",
                                                                "--seed", "3"])
    current = cluster.loadgen(agent.endpoint, ["churn:v1"], NOW, extra=["--seed", "4"])
    invalid = future["sent"] + micros["sent"]
    valid = past["sent"] + current["sent"]
    tap.check(invalid == FUTURE + 1 and valid == PAST + NOW, "loadgen handed over every event")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_messages_received_total"] ==
             invalid + valid + 1, 30, "the agent to read every event and the label")
    m = metrics(agent.http_port)
    dropped = sample(m, "modelwatch_agent_messages_dropped_total", reason="future_time")
    accepted = m["modelwatch_agent_events_accepted_total"]
    print(f"# accepted={accepted} future_time={dropped}", flush=True)
    tap.check(dropped == invalid + 1, "events and labels beyond the skew are counted invalid",
              f"future_time={dropped} want={invalid + 1}")
    tap.check(accepted == valid, "every other event, old ones included, is accepted",
              f"accepted={accepted} want={valid}")
    tap.check("event time ahead of the agent's clock" in cluster.log_of(agent),
              "the log names the invalid event time")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_spool_batches"] == 0, 30,
             "delivery")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    in_topic = sum(o["predictions"] for o in report["origins"].values())
    tap.check(in_topic == valid and in_topic + dropped - 1 == invalid + valid,
              "events sent == events in the topic + events counted invalid",
              f"topic={in_topic} invalid={dropped - 1}")


if __name__ == "__main__":
    run(main)
