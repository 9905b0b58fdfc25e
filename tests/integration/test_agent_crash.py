#!/usr/bin/env python3
"""kill -9 of an agent during a Kafka outage loses at most the unsealed interval, and says so.

With every broker down, an agent takes 20,000 events (sealed and spooled), then 500 more that
are still in its open batch when it is killed with SIGKILL. A new agent on the same spool
directory replays the spooled batches once Kafka is back, and its metrics report how many
events the dead process had accepted but never sealed. The topic's exact counters plus that
number must equal every event sent, and the loss must be within the last unsealed interval.
"""
import signal

from harness import metrics, run, wait_for

SEALED_EVENTS = 20_000
UNSEALED_EVENTS = 500


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    # A long batch age so the last events are certainly still unsealed when the agent dies.
    agent = cluster.start_agent(extra="batch:\n  max_age: 30s\n  max_records: 1000\n")
    first = cluster.loadgen(agent.endpoint, ["churn:v1"], SEALED_EVENTS)
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_batches_sealed_total"]
             == SEALED_EVENTS // 1000, 30, "the first 20 batches to be sealed")
    second = cluster.loadgen(agent.endpoint, ["churn:v1"], UNSEALED_EVENTS, extra=["--seed", "9"])
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
             == SEALED_EVENTS + UNSEALED_EVENTS, 30, "the agent to accept the last events")
    m = metrics(agent.http_port)
    tap.check(m["modelwatch_agent_spool_batches"] == SEALED_EVENTS // 1000,
              "sealed batches are in the spool during the outage", str(m))
    cluster.stop(agent, sig=signal.SIGKILL)
    tap.check(True, "agent killed with SIGKILL")

    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    restarted = cluster.start_agent(name="agent-restarted", spool_dir=agent.spool_dir)
    wait_for(lambda: metrics(restarted.http_port)["modelwatch_agent_spool_batches"] == 0, 60,
             "the restarted agent to replay its spool")
    m = metrics(restarted.http_port)
    lost = int(m["modelwatch_agent_events_lost_before_start"])
    tap.check(lost == UNSEALED_EVENTS, "the restarted agent reports the unsealed events lost",
              f"lost={lost}")
    tap.check(cluster.stop(restarted) == 0, "restarted agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    predictions = sum(o["predictions"] for o in report["origins"].values())
    sent = first["sent"] + second["sent"]
    tap.check(predictions + lost == sent == SEALED_EVENTS + UNSEALED_EVENTS,
              "topic counters + reported loss == events sent",
              f"predictions={predictions} lost={lost} sent={sent}")
    dead_boot = [o for o in report["origins"].values() if o["batches"] >= SEALED_EVENTS // 1000]
    tap.check(len(dead_boot) == 1 and dead_boot[0]["missing"] == [] and
              dead_boot[0]["duplicates"] == [] and
              dead_boot[0]["max_sequence"] == SEALED_EVENTS // 1000,
              "the dead process's batches are in the topic once each, in full",
              str(report["origins"]))


if __name__ == "__main__":
    run(main)
