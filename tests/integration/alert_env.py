"""What the alerting scenarios share: the stand-in receiver (tools/alert_receiver.py) for
PagerDuty and webhooks, an aggregator configuration with rules, routes and receivers, reference
profiles, traffic sent in event time through a real agent, and readers of what the receiver got.

Event times are in the past and advance window by window (loadgen --in-order), so the model's
watermark makes each window final as the next one arrives: the evaluator runs in event time, and
a phase of traffic is minutes of event time sent in a second.
"""
import hashlib
import json
import os
import sys
import time

import numpy as np
from drift_oracle import numeric_profile, profile_document
from harness import TestFailure, api_data, http_put_json, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
RECEIVER = os.path.join(SOURCE, "tools", "alert_receiver.py")
sys.path.insert(0, os.path.dirname(RECEIVER))
import alert_receiver  # noqa: E402

ROUTING_KEY = "0123456789abcdef0123456789ABCDEF"
TOKEN = "silence-writer-token-42"
RUNBOOKS = "https://runbooks.example/modelwatch"
MINUTE = 60000
HOUR = 3600000
NUMERIC = [f"f{k}" for k in range(10)]


def dedup_key(group_key):
    return hashlib.sha256(group_key.encode()).hexdigest()


class Receiver:
    """tools/alert_receiver.py as a process: PagerDuty at /pd/v2/enqueue, a webhook at /hook."""

    def __init__(self, cluster, name="receiver"):
        self.log = os.path.join(cluster.dir, f"{name}.jsonl")
        port_file = os.path.join(cluster.dir, f"{name}.port")
        cluster.spawn(name, [sys.executable, RECEIVER,
                             "--port-file", port_file, "--log", self.log])
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10,
                 "the alert receiver")
        with open(port_file) as f:
            self.port = int(f.read())

    def requests(self, path=None):
        if not os.path.exists(self.log):
            return []
        return [r for r in alert_receiver.read_log(self.log) if path is None or r["path"] == path]

    def pd_events(self):
        return [json.loads(r["body"]) for r in self.requests("/pd/v2/enqueue")]

    def pd_incident(self, alertname):
        """PagerDuty events of `alertname`: its triggers, and the resolves that carry one of
        their dedup_keys (a resolve carries nothing else)."""
        out, keys = [], set()
        for e in self.pd_events():
            if e["event_action"] == "trigger" and \
                    e["payload"]["custom_details"]["alerts"][0]["labels"]["alertname"] == alertname:
                keys.add(e["dedup_key"])
            if e["dedup_key"] in keys:
                out.append(e)
        return out

    def hook_messages(self):
        return [json.loads(r["body"]) for r in self.requests("/hook")]


def aggregator_config(cluster, receiver, rules_text, extra="", route_extra="",
                      evaluation="500ms", lease_ttl="3s", group_wait="1s",
                      group_interval="2s", token=True):
    """The alerting part of an aggregator's configuration, with its files written."""
    rules = cluster.write_config("rules.yaml", rules_text)
    key = cluster.write_config("pd.key", ROUTING_KEY + "\n")
    token_line = ""
    if token:
        token_file = cluster.write_config("api.token", TOKEN + "\n")
        token_line = f"  api_token_file: {token_file}\n"
    return f"""windows:
  allowed_lateness: 0s
  out_of_orderness: 5s
rule_files: ["{rules}"]
route:
  receiver: pd
  group_by: [alertname, model]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 4h
  routes:
    - matchers: ['severity=~"warning|info"']
      receiver: hook
{route_extra}receivers:
  - name: pd
    type: pagerduty
    url: http://127.0.0.1:{receiver.port}/pd
    routing_key_file: {key}
    retry:
      initial: 100ms
      max: 1s
  - name: hook
    type: webhook
    url: http://127.0.0.1:{receiver.port}/hook
    retry:
      initial: 100ms
      max: 1s
alerting:
  runbook_base_url: {RUNBOOKS}
  evaluation_interval: {evaluation}
  lease_ttl: {lease_ttl}
{token_line}{extra}"""


def push_profiles(agg_port, model, versions, seed=7, token=TOKEN):
    """Reference profiles of f0..f9 as loadgen draws them (uniform on [k, 100 + k]), pushed
    with the API token (aggregator_config writes it unless token=False; an aggregator without
    one ignores it)."""
    rng = np.random.default_rng(seed)
    for version in versions:
        features = {name: numeric_profile(rng.uniform(0, 100, 20000) + k)
                    for k, name in enumerate(NUMERIC)}
        doc = profile_document(model, version, features, 20000)
        if http_put_json(agg_port, f"/api/v1/models/{model}/profiles/{version}", doc,
                         token=token) != 200:
            raise TestFailure(f"profile {model}/{version} not stored")


def agent_config():
    """Every payload shipped, no cap: drift sees every event."""
    return ('models:\n  - name: "*"\n    sample_rate: 1.0\n    keep_errors: true\n'
            '    max_events_per_second: 0\n')


def send(cluster, agent, models, start_ms, windows, per_window, extra=(), seed=1):
    """`per_window` events per model version in each of `windows` fine windows from
    `start_ms`, window after window."""
    n = len(models) * per_window * windows
    return cluster.loadgen(agent.endpoint, models, n, windows=windows, start_ms=start_ms,
                           extra=["--in-order", "--seed", str(seed)] + list(extra))


def base_time(hours_ago=6):
    return (int(time.time() * 1000) // HOUR - hours_ago) * HOUR


def alerts(port, state="all"):
    return api_data(port, f"/api/v1/alerts?state={state}")["alerts"]


def firing(port, alertname):
    return [a for a in alerts(port, "firing") if a["labels"].get("alertname") == alertname]

