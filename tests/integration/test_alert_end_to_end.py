#!/usr/bin/env python3
"""Alerting end to end with real processes: a synthetic model's latency regresses on one version
and one feature drifts; exactly one notification per alert group reaches the stand-in PagerDuty
and webhook receivers, saying what a page must say; when traffic returns to normal the resolves
arrive, with the same dedup_key.

churn:v1 and churn:v2 serve half the traffic each through a real agent; event time runs six
hours in the past, window after window, so each 1-minute window becomes final as the next one
arrives and the rules run in event time:

  phase A  8 windows  normal
  phase B  6 windows  v2 twenty times slower (p99 about 0.16 s); f3 shifted by 40 on both
  phase C 10 windows  normal again

LatencyP99High (p99 > 0.05 s for 2m, critical) routes to PagerDuty; FeatureDrift (PSI of f3 >
0.25 for 2m, warning) to the webhook; both grouped by alertname and model. The test waits for
the pages before it sends phase C (a problem that starts and ends inside group_wait pages
nobody, as in Alertmanager).
"""
import json
import time

import alert_env as env
from harness import TestFailure, api_data, metrics, run, wait_for

PER_WINDOW = 200
RULES = """groups:
  - name: e2e
    rules:
      - name: LatencyP99High
        signal: latency_p99
        resolution: 1m
        comparison: ">"
        threshold: 0.05
        for: 2m
        min_samples: 100
        severity: critical
        labels: {team: ml}
        annotations:
          summary: "{{ $labels.model }} {{ $labels.version }} p99 latency {{ $value }} s over {{ $threshold }} s"
          runbook_url: "{{ $runbook_base }}/deploy/runbooks/latency-p99-high.md"
      - name: FeatureDrift
        signal: psi
        feature: f3
        resolution: 1m
        comparison: ">"
        threshold: 0.25
        for: 2m
        min_samples: 100
        severity: warning
        annotations:
          summary: "{{ $labels.model }} {{ $labels.version }}: feature {{ $labels.feature }} drifted (PSI {{ $value | fixed2 }})"
          runbook_url: "{{ $runbook_base }}/deploy/runbooks/feature-drift.md"
"""
MODELS = ["churn:v1", "churn:v2"]


def check_trigger(tap, ev, agg_port):
    payload = ev["payload"]
    details = payload["custom_details"]
    alerts = details["alerts"]
    tap.check(len(alerts) == 1 and alerts[0]["labels"]["version"] == "v2" and
              alerts[0]["labels"]["alertname"] == "LatencyP99High",
              "the page is about v2's latency only", json.dumps(alerts)[:1000])
    a = alerts[0]
    tap.check(payload["severity"] == "critical" and payload["component"] == "churn" and
              payload["class"] == "latency_p99", "severity, component and class",
              json.dumps(payload)[:600])
    tap.check("churn v2 p99 latency" in payload["summary"], "the summary is the rule's",
              payload["summary"])
    links = {l["text"]: l["href"] for l in ev.get("links", [])}
    tap.check(links.get("Runbook") == f"{env.RUNBOOKS}/deploy/runbooks/latency-p99-high.md",
              "a runbook link", json.dumps(ev.get("links")))
    api = links.get("Window in the modelwatch API", "")
    tap.check(api.startswith(f"http://127.0.0.1:{agg_port}/api/v1/models/churn/windows?"
                             "version=v2&resolution=60&from="), "a link to the window in the API",
              api)
    windows = api_data(agg_port, api[api.index("/api/"):])["windows"]
    tap.check(windows[0]["latency_us"]["p99"] > 50000, "the API link shows the slow window",
              json.dumps(windows)[:300])
    v = a["values"]
    tap.check(v["value"] > 0.05 and v["threshold"] == 0.05 and v["samples"] >= 100,
              "value, threshold and sample size", json.dumps(v)[:600])
    tap.check(abs(v["version.v1.traffic_share"] - 0.5) < 0.01 and
              abs(v["version.v2.traffic_share"] - 0.5) < 0.01 and
              v["version.v1.value"] < 0.02 < 0.05 < v["version.v2.value"],
              "every version live in the window with its traffic share and the same signal",
              json.dumps(v)[:800])
    ann = a["annotations"]
    tap.check("v1: 50.0% of traffic, latency_p99" in ann.get("versions", "") and
              "v2: 50.0% of traffic, latency_p99" in ann.get("versions", ""),
              "the per-version breakdown reads in the page", ann.get("versions"))
    tap.check(ann.get("ctl_command", "").startswith("modelwatch-ctl --api http://127.0.0.1:") and
              "windows churn --version v2 --resolution 60" in ann.get("ctl_command", ""),
              "the modelwatch-ctl command that shows the window", ann.get("ctl_command"))
    tap.check("1m window" in ann.get("window", "") and "event time" in ann.get("window", ""),
              "the window, in event time", ann.get("window"))


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(
        cluster, receiver, RULES, extra="drift:\n  windows: both\n  min_values: 50\n"))
    agent = cluster.start_agent(extra=env.agent_config())
    env.push_profiles(agg.http_port, "churn", ["v1", "v2"])
    t0 = env.base_time()

    env.send(cluster, agent, MODELS, t0, 8, PER_WINDOW, seed=1)
    bad = ["--latency-scale", "20", "--slow", "churn:v2", "--shift", "40",
           "--shift-feature", "f3"]
    env.send(cluster, agent, MODELS, t0 + 8 * env.MINUTE, 6, PER_WINDOW, bad, seed=2)
    wait_for(lambda: receiver.pd_events() and receiver.hook_messages(), 60,
             "a page at PagerDuty and a webhook message")
    time.sleep(4)  # two group intervals: anything else that would be sent is sent now

    pd = receiver.pd_events()
    triggers = [e for e in pd if e["event_action"] == "trigger"]
    tap.check(len(pd) == 1 and len(triggers) == 1, "exactly one PagerDuty event for the group",
              json.dumps(pd)[:2000])
    check_trigger(tap, triggers[0], agg.http_port)
    hooks = receiver.hook_messages()
    tap.check(len(hooks) == 1 and hooks[0]["status"] == "firing",
              "exactly one webhook message for the drift group", json.dumps(hooks)[:2000])
    drift = hooks[0]["alerts"] if hooks else []
    tap.check(sorted(a["labels"]["version"] for a in drift) == ["v1", "v2"] and
              all(a["labels"]["feature"] == "f3" for a in drift),
              "f3 drifted on both versions, in one message", json.dumps(drift)[:1000])
    if drift:
        ann = drift[0]["annotations"]
        tap.check("f3: drift, PSI" in ann.get("top_features", "") and
                  "KS p-value" in ann.get("top_features", "") and
                  "values observed" in ann.get("top_features", ""),
                  "the top drifting features with PSI, p-value and counts",
                  ann.get("top_features"))
        tap.check(ann.get("runbook_url") == f"{env.RUNBOOKS}/deploy/runbooks/feature-drift.md",
                  "the drift alert links its runbook", json.dumps(ann))
        tap.check(hooks[0]["groupLabels"] == {"alertname": "FeatureDrift", "model": "churn"},
                  "grouped by alertname and model", json.dumps(hooks[0]["groupLabels"]))
    active = env.firing(agg.http_port, "LatencyP99High")
    tap.check(len(active) == 1 and active[0]["labels"]["version"] == "v2" and
              active[0]["value"] > 0.05, "GET /api/v1/alerts lists the firing alert",
              json.dumps(active)[:600])
    m = metrics(agg.http_port)
    key = ('modelwatch_alert_state{alertname="LatencyP99High",rule="e2e/LatencyP99High",'
           'model="churn",version="v2",feature="",severity="critical"}')
    tap.check(m.get(key) == 2, "/metrics exports the alert's state (2 = firing)",
              [k for k in m if k.startswith("modelwatch_alert_state")])

    env.send(cluster, agent, MODELS, t0 + 14 * env.MINUTE, 10, PER_WINDOW, seed=3)
    wait_for(lambda: any(e["event_action"] == "resolve" for e in receiver.pd_events()) and
             any(h["status"] == "resolved" for h in receiver.hook_messages()), 60,
             "the resolves")
    time.sleep(4)
    pd = receiver.pd_events()
    resolves = [e for e in pd if e["event_action"] == "resolve"]
    tap.check(len(pd) == 2 and len(resolves) == 1 and
              resolves[0]["dedup_key"] == triggers[0]["dedup_key"],
              "one resolve, with the trigger's dedup_key", json.dumps(pd)[:1500])
    hooks = receiver.hook_messages()
    tap.check(len(hooks) == 2 and hooks[1]["status"] == "resolved" and
              hooks[1]["groupKey"] == hooks[0]["groupKey"] and
              all(a["status"] == "resolved" for a in hooks[1]["alerts"]),
              "one resolved webhook message for the same group", json.dumps(hooks)[-1500:])
    tap.check(env.alerts(agg.http_port, "active") == [], "nothing active any more",
              json.dumps(env.alerts(agg.http_port, "active"))[:500])
    m = metrics(agg.http_port)
    tap.check(m.get("modelwatch_alert_pages_total") == 3 and
              m.get("modelwatch_alert_resolves_total") == 3,
              "three alerts fired and resolved (v2 latency, f3 on v1 and v2)",
              {k: v for k, v in m.items() if k.startswith("modelwatch_alert_")})
    tap.check(m.get('modelwatch_alert_delivery_delivered_total{receiver="pd"}') == 2 and
              m.get('modelwatch_alert_delivery_delivered_total{receiver="hook"}') == 2,
              "delivery counters per receiver", {k: v for k, v in m.items() if "delivery" in k})


if __name__ == "__main__":
    run(main)
