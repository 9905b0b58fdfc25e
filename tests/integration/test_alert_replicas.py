#!/usr/bin/env python3
"""Two aggregator replicas, one alerting lease: each page is delivered once, and when the replica
that delivers is killed with SIGKILL the other takes the lease over and resolves the incident,
once, with the same dedup_key.

Both replicas share Redis and the consumer group (the topic's partitions are split between
them, or one takes them all); exactly one holds mw:{alert}:lease at a time, which
modelwatch_alerting_leader on /metrics shows.
"""
import json
import signal
import time

import alert_env as env
from harness import metrics, run, wait_for

PER_WINDOW = 200
RULES = """groups:
  - name: replicas
    rules:
      - name: ErrorRateHigh
        signal: error_rate
        resolution: 1m
        comparison: ">"
        threshold: 0.2
        for: 2m
        min_samples: 100
        severity: critical
        annotations:
          summary: "{{ $labels.model }} {{ $labels.version }} fails {{ $value | percent }} of requests"
          runbook_url: "{{ $runbook_base }}/deploy/runbooks/error-budget-burn.md"
"""


def leader_of(aggs):
    return [a for a in aggs if metrics(a.http_port).get("modelwatch_alerting_leader") == 1]


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    config = env.aggregator_config(cluster, receiver, RULES)
    aggs = [cluster.start_aggregator(name="aggregator-a", extra=config),
            cluster.start_aggregator(name="aggregator-b", extra=config)]
    agent = cluster.start_agent(extra=env.agent_config())
    wait_for(lambda: len(leader_of(aggs)) == 1, 30, "one replica to take the lease")
    time.sleep(2)
    tap.check(len(leader_of(aggs)) == 1, "exactly one replica holds the lease")
    t0 = env.base_time()

    env.send(cluster, agent, ["scoring:v1", "scoring:v2"], t0, 6, PER_WINDOW, seed=1)
    env.send(cluster, agent, ["scoring:v1", "scoring:v2"], t0 + 6 * env.MINUTE, 5, PER_WINDOW,
             ["--error-share", "0.5"], seed=2)
    wait_for(lambda: receiver.pd_events(), 60, "the page")
    time.sleep(5)
    pd = receiver.pd_events()
    tap.check(len(pd) == 1 and pd[0]["event_action"] == "trigger",
              "the page is delivered once, by one replica", json.dumps(pd)[:1500])
    alerts = pd[0]["payload"]["custom_details"]["alerts"] if pd else []
    tap.check(sorted(a["labels"]["version"] for a in alerts) == ["v1", "v2"],
              "one incident for the model's group, both versions in it", json.dumps(alerts)[:800])
    for a in aggs:
        tap.check(len(env.firing(a.http_port, "ErrorRateHigh")) == 2,
                  f"{a.mw_name} lists the firing alerts (any replica answers the API)")

    leader = leader_of(aggs)[0]
    other = [a for a in aggs if a is not leader][0]
    cluster.stop(leader, sig=signal.SIGKILL)
    wait_for(lambda: metrics(other.http_port).get("modelwatch_alerting_leader") == 1, 30,
             "the other replica to take the lease over")
    env.send(cluster, agent, ["scoring:v1", "scoring:v2"], t0 + 11 * env.MINUTE, 6, PER_WINDOW,
             seed=3)
    wait_for(lambda: len(receiver.pd_events()) >= 2, 90, "the resolve from the survivor")
    time.sleep(5)
    pd = receiver.pd_events()
    tap.check([e["event_action"] for e in pd] == ["trigger", "resolve"] and
              pd[1]["dedup_key"] == pd[0]["dedup_key"],
              "after SIGKILL of the delivering replica the other resolves the incident once",
              json.dumps(pd)[:2000])
    m = metrics(other.http_port)
    tap.check(m.get("modelwatch_alert_notifications_suppressed_total", 0) >= 1 and
              m.get("modelwatch_alert_lease_acquired_total") == 1,
              "the survivor knew from the notification log that the page had been delivered",
              {k: v for k, v in m.items() if k.startswith("modelwatch_alert")})


if __name__ == "__main__":
    run(main)
