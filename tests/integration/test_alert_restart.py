#!/usr/bin/env python3
"""An aggregator killed with SIGKILL neither loses a page nor sends one twice.

Two models, two moments of death (group_wait is 4 s, so there is a gap between an alert firing
and its page):

  churn  killed after its page was delivered and before the problem ended; traffic returns to
         normal while no aggregator runs. The restarted aggregator (same Redis, same consumer
         group) restores the rule states, cursors and notification log, does not page again,
         and delivers the resolve once, with the page's dedup_key.
  fraud  killed after its alert started firing (the state is in Redis) and before the page left
         (group_wait). The restarted aggregator sends the page once.
"""
import json
import signal
import time

import alert_env as env
from harness import run, wait_for

PER_WINDOW = 200
RULES = """groups:
  - name: restart
    rules:
      - name: LatencyP99High
        signal: latency_p99
        resolution: 1m
        comparison: ">"
        threshold: 0.05
        for: 2m
        min_samples: 100
        severity: critical
        annotations:
          summary: "{{ $labels.model }} {{ $labels.version }} p99 latency {{ $value }} s"
          runbook_url: "{{ $runbook_base }}/deploy/runbooks/latency-p99-high.md"
"""
SLOW = ["--latency-scale", "20"]


def events_of(receiver, model):
    out = []
    for e in receiver.pd_events():
        comp = e.get("payload", {}).get("component")
        if comp == model or (comp is None and model in json.dumps(e)):
            out.append(e)
    return out


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    config = env.aggregator_config(cluster, receiver, RULES, group_wait="4s")
    agg = cluster.start_aggregator(extra=config)
    agent = cluster.start_agent(extra=env.agent_config())
    t0 = env.base_time()

    # churn: page delivered, then SIGKILL, then the problem ends while nothing evaluates.
    env.send(cluster, agent, ["churn:v1"], t0, 6, PER_WINDOW, seed=1)
    env.send(cluster, agent, ["churn:v1"], t0 + 6 * env.MINUTE, 5, PER_WINDOW, SLOW, seed=2)
    wait_for(lambda: receiver.pd_events(), 60, "churn's page")
    time.sleep(1)
    trigger = receiver.pd_events()[0]
    cluster.stop(agg, sig=signal.SIGKILL)
    env.send(cluster, agent, ["churn:v1"], t0 + 11 * env.MINUTE, 6, PER_WINDOW, seed=3)

    # fraud: firing in Redis, page not yet sent (group_wait 4 s), then SIGKILL.
    agg = cluster.start_aggregator(name="aggregator2", extra=config)
    wait_for(lambda: len(receiver.pd_events()) >= 2, 60, "churn's resolve after the restart")
    # (after churn's traffic in event time: lateness is judged per Kafka partition)
    t1 = t0 + 20 * env.MINUTE
    env.send(cluster, agent, ["fraud:v1"], t1, 6, PER_WINDOW, seed=4)
    env.send(cluster, agent, ["fraud:v1"], t1 + 6 * env.MINUTE, 5, PER_WINDOW, SLOW, seed=5)
    wait_for(lambda: env.firing(agg.http_port, "LatencyP99High"), 60, "fraud's alert firing")
    fraud_before = [e for e in receiver.pd_events() if e.get("payload", {}).get("component") ==
                    "fraud"]
    cluster.stop(agg, sig=signal.SIGKILL)
    tap.check(fraud_before == [], "fraud's aggregator died before its page left (group_wait)",
              json.dumps(fraud_before)[:500])
    agg = cluster.start_aggregator(name="aggregator3", extra=config)
    wait_for(lambda: any(e.get("payload", {}).get("component") == "fraud"
                         for e in receiver.pd_events()), 60, "fraud's page after the restart")
    time.sleep(6)  # a lease TTL and two group intervals: anything else would have come by now

    pd = receiver.pd_events()
    churn = [e for e in pd if e["dedup_key"] == trigger["dedup_key"]]
    tap.check([e["event_action"] for e in churn] == ["trigger", "resolve"],
              "churn: one page before the kill, one resolve after the restart, same dedup_key",
              json.dumps(churn)[:1500])
    fraud = [e for e in pd if e["dedup_key"] != trigger["dedup_key"]]
    tap.check([e["event_action"] for e in fraud] == ["trigger"] and
              fraud[0]["payload"]["component"] == "fraud",
              "fraud: the page pending at the kill is sent once after the restart",
              json.dumps(fraud)[:1500])
    tap.check(len(pd) == 3, "three PagerDuty events in all", json.dumps(pd)[:2000])
    log = cluster.log_of(agg)
    tap.check("alerting state restored" in log, "the restarted aggregator restored its state",
              log[-2000:])


if __name__ == "__main__":
    run(main)
