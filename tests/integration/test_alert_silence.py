#!/usr/bin/env python3
"""Silences through the API and modelwatch-ctl, with real processes.

  - writes need the bearer token from alerting.api_token_file: none or a wrong one gets 401,
    for the API and for `modelwatch-ctl silence` alike;
  - a silence created with `modelwatch-ctl silence add` before churn's latency regresses
    suppresses the page; `silence list` and `alerts` show it, and /api/v1/alerts names the
    silence that mutes the firing alert;
  - fraud is paged, then silenced; when fraud recovers its resolve is still delivered;
  - `silence expire` ends churn's silence, and churn's still-firing alert is paged then.
"""
import json
import subprocess
import time

import alert_env as env
from harness import api_data, api_error, run, wait_for

PER_WINDOW = 200
RULES = """groups:
  - name: silence
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
"""
SLOW = ["--latency-scale", "20"]


def ctl(cluster, agg, *args, token=True):
    argv = [cluster.binary("tools/modelwatch-ctl"), "--api", f"http://127.0.0.1:{agg.http_port}"]
    argv += list(args)
    if token:
        argv += ["--token-file", cluster.token_file]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def pd_of(receiver, model):
    out = []
    keys = set()
    for e in receiver.pd_events():
        if e["event_action"] == "trigger" and e["payload"]["component"] == model:
            keys.add(e["dedup_key"])
        if e["dedup_key"] in keys:
            out.append(e)
    return out


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(cluster, receiver, RULES))
    cluster.token_file = cluster.write_config("ctl.token", env.TOKEN + "\n")
    wrong = cluster.write_config("wrong.token", "not-the-token\n")
    agent = cluster.start_agent(extra=env.agent_config())
    t0 = env.base_time()

    body = {"matchers": ['model="churn"'], "duration": "1h", "created_by": "t", "comment": "c"}
    error = api_error(agg.http_port, "/api/v1/silences", "POST", body)
    tap.check(error[:2] == (401, "unauthorized"), "POST /api/v1/silences without a token: 401",
              error)
    error = api_error(agg.http_port, "/api/v1/silences", "POST", body, token="nope")
    tap.check(error[:2] == (401, "unauthorized"), "with a wrong token: 401", error)
    error = api_error(agg.http_port, "/api/v1/silences/abc", "DELETE")
    tap.check(error[:2] == (401, "unauthorized"), "DELETE without a token: 401", error)
    out = subprocess.run([cluster.binary("tools/modelwatch-ctl"), "--api",
                          f"http://127.0.0.1:{agg.http_port}", "silence", "add",
                          'model="churn"', "--duration", "1h", "--token-file", wrong],
                         capture_output=True, text=True, timeout=30)
    tap.check(out.returncode == 1 and "401" in out.stderr, "ctl with a wrong token fails (401)",
              out.stderr)
    error = api_error(agg.http_port, "/api/v1/silences", "POST",
                      {"matchers": ['model=~".*"'], "duration": "1h"}, token=env.TOKEN)
    tap.check(error[:2] == (400, "bad_data"), "a silence that would match everything is refused",
              error)

    env.send(cluster, agent, ["churn:v1"], t0, 6, PER_WINDOW, seed=1)
    out = ctl(cluster, agg, "silence", "add", 'alertname="LatencyP99High"', 'model="churn"',
              "--duration", "2h", "--comment", "rolling out v1 again", "--author", "ana")
    silence_id = out.stdout.strip()
    tap.check(out.returncode == 0 and len(silence_id) == 36,
              "modelwatch-ctl silence add prints the new silence's id", out.stderr)
    env.send(cluster, agent, ["churn:v1"], t0 + 6 * env.MINUTE, 5, PER_WINDOW, SLOW, seed=2)
    wait_for(lambda: env.firing(agg.http_port, "LatencyP99High"), 60, "churn's alert firing")
    time.sleep(5)  # group_wait and more: a page would be here by now
    tap.check(pd_of(receiver, "churn") == [], "the silenced alert pages nobody",
              json.dumps(receiver.pd_events())[:1000])
    alerts = env.firing(agg.http_port, "LatencyP99High")
    tap.check(len(alerts) == 1 and alerts[0]["silenced_by"] == silence_id,
              "/api/v1/alerts names the silence muting the firing alert", json.dumps(alerts)[:800])
    out = ctl(cluster, agg, "silence", "list", token=False)
    tap.check(out.returncode == 0 and silence_id in out.stdout and "active" in out.stdout and
              "rolling out v1 again" in out.stdout and 'alertname="LatencyP99High"' in out.stdout,
              "modelwatch-ctl silence list shows it, active", out.stdout + out.stderr)
    out = ctl(cluster, agg, "alerts", token=False)
    tap.check(out.returncode == 0 and "firing" in out.stdout and "LatencyP99High" in out.stdout and
              silence_id in out.stdout, "modelwatch-ctl alerts lists the alert and its silence",
              out.stdout + out.stderr)

    # fraud: paged, then silenced, then resolved: the resolve still reaches PagerDuty.
    t1 = t0 + 11 * env.MINUTE
    env.send(cluster, agent, ["fraud:v1"], t1, 6, PER_WINDOW, seed=3)
    env.send(cluster, agent, ["fraud:v1"], t1 + 6 * env.MINUTE, 5, PER_WINDOW, SLOW, seed=4)
    wait_for(lambda: pd_of(receiver, "fraud"), 60, "fraud's page")
    answer = api_data(agg.http_port, "/api/v1/silences", "POST",
                      {"matchers": ['model="fraud"'], "duration": "1h", "created_by": "bob",
                       "comment": "known"}, token=env.TOKEN)
    tap.check(len(answer["id"]) == 36, "POST /api/v1/silences with the token", answer)
    time.sleep(2)
    env.send(cluster, agent, ["fraud:v1"], t1 + 11 * env.MINUTE, 6, PER_WINDOW, seed=5)
    wait_for(lambda: len(pd_of(receiver, "fraud")) >= 2, 60, "fraud's resolve")
    time.sleep(3)
    fraud = pd_of(receiver, "fraud")
    tap.check([e["event_action"] for e in fraud] == ["trigger", "resolve"],
              "an incident paged before its silence began still gets its resolve",
              json.dumps(fraud)[:1500])

    out = ctl(cluster, agg, "silence", "expire", silence_id)
    tap.check(out.returncode == 0, "modelwatch-ctl silence expire", out.stderr)
    error = api_error(agg.http_port, f"/api/v1/silences/{silence_id}", "DELETE",
                      token=env.TOKEN)
    tap.check(error[:2] == (404, "not_found"), "expiring it again: 404", error)
    wait_for(lambda: pd_of(receiver, "churn"), 30, "churn's page once its silence expired")
    out = ctl(cluster, agg, "silence", "list", "--json", token=False)
    states = {s["id"]: s["state"] for s in json.loads(out.stdout)["silences"]}
    tap.check(states.get(silence_id) == "expired", "the silence is listed as expired", states)
    time.sleep(3)
    tap.check([e["event_action"] for e in pd_of(receiver, "churn")] == ["trigger"],
              "churn is paged once", json.dumps(pd_of(receiver, "churn"))[:800])


if __name__ == "__main__":
    run(main)
