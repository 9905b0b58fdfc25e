#!/usr/bin/env python3
"""A rule's `delay`: a window is judged only once it has been final for that long in event
time, so records that arrive after the allowed lateness are in it. With real processes:

  windows 0-4 of churn:v1 arrive in order (200 events each), so window 2 is final; then 100
  more events of window 2 arrive (late: a third of that window); then windows 5-12.

  - LateDataAtFinality (late_rate > 5 %, no delay) judged window 2 when it became final, before
    the late records came: it never pages;
  - LateDataDelayed (the same rule with `delay: 5m`) judges window 2 once the watermark is 5
    minutes past it: it pages once, for window 2, with late_rate 100 / 300 and 300 samples;
  - windows 13-20 carry no late data: it resolves, with the same dedup_key;
  - the API's window 2 agrees: 200 on time, 100 late.
"""
import json

import alert_env as env
from harness import api_data, run, wait_for
from resp import Redis

PER_WINDOW = 200
LATE = 100
RULE = """      - name: {name}
        signal: late_rate
        resolution: 1m
        comparison: ">"
        threshold: 0.05
        min_samples: 100
        keep_firing_for: 5m
{delay}        severity: critical
        annotations:
          summary: "{{{{ $labels.model }}}}: {{{{ $value | percent }}}} of records arrived late"
"""
RULES = "groups:\n  - name: lateness\n    rules:\n" + \
    RULE.format(name="LateDataAtFinality", delay="") + \
    RULE.format(name="LateDataDelayed", delay="        delay: 5m\n")


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(cluster, receiver, RULES))
    agent = cluster.start_agent(extra=env.agent_config())
    t0 = env.base_time()
    w2 = t0 + 2 * env.MINUTE

    env.send(cluster, agent, ["churn:v1"], t0, 5, PER_WINDOW)
    wait_for(lambda: (cursor(cluster, "c|60000|churn") or 0) >= w2, 60,
             "window 2 to be judged at finality")
    delayed_cursor = cursor(cluster, "c|60000+300000|churn")
    tap.check(delayed_cursor is None or delayed_cursor < w2,
              "the delayed rules have not judged window 2 yet", str(delayed_cursor))
    env.send(cluster, agent, ["churn:v1"], w2, 1, LATE, seed=2)
    env.send(cluster, agent, ["churn:v1"], t0 + 5 * env.MINUTE, 8, PER_WINDOW, seed=3)
    wait_for(lambda: len(receiver.pd_incident("LateDataDelayed")) >= 1, 60,
             "the delayed rule to page")
    env.send(cluster, agent, ["churn:v1"], t0 + 13 * env.MINUTE, 8, PER_WINDOW, seed=4)
    wait_for(lambda: len(receiver.pd_incident("LateDataDelayed")) >= 2, 60,
             "the delayed rule to resolve")

    delayed = receiver.pd_incident("LateDataDelayed")
    tap.check([e["event_action"] for e in delayed] == ["trigger", "resolve"],
              "the delayed rule paged once and resolved once",
              json.dumps([e["event_action"] for e in delayed]))
    alert = delayed[0]["payload"]["custom_details"]["alerts"][0]
    values = alert["values"]
    tap.check(values.get("window_start_ms") == w2, "the page is about window 2",
              json.dumps(values)[:400])
    tap.check(abs(values.get("value", 0) - LATE / (PER_WINDOW + LATE)) < 1e-9 and
              values.get("samples") == PER_WINDOW + LATE,
              "late_rate 100 / 300 over 300 samples", json.dumps(values)[:400])
    tap.check(delayed[1]["dedup_key"] == delayed[0]["dedup_key"],
              "the resolve has the trigger's dedup_key")
    tap.check(receiver.pd_incident("LateDataAtFinality") == [],
              "the rule without a delay never saw the late records",
              json.dumps(receiver.pd_incident("LateDataAtFinality"))[:400])
    window = api_data(agg.http_port, f"/api/v1/models/churn/windows?version=v1&resolution=60"
                                     f"&from={w2}&to={w2}")["windows"][0]
    tap.check(window["count"] == PER_WINDOW and window["late"] == LATE,
              "the API's window 2: 200 on time, 100 late", json.dumps(window)[:300])


def cursor(cluster, field):
    """Start of the last window evaluated on one alerting cursor (mw:{alert}:cursors), or None."""
    with Redis(cluster.redis_port) as r:
        v = r("HGET", "mw:{alert}:cursors", field)
    return int(v) if v is not None else None


if __name__ == "__main__":
    run(main)
