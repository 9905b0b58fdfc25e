#!/usr/bin/env python3
"""Twenty-four hours of stationary traffic, sent in accelerated time, with every ready-made
rule set of config/rules/ enabled, pages zero times.

Three model versions (churn v1 and v2, fraud v1) each serve 60 predictions a minute for a day
of event time (1,440 one-minute windows, 24 hourly ones), sent window after window in seconds:
latencies of 1 to 8 ms, 0.03 % errors (a burn rate of 0.3 against the default 99.9 %
objective), features drawn from the very distributions their reference profiles were built
from. The evaluator steps every final window of the day through the SLO burn-rate pairs, the
latency guard, drift (the model's verdict, prediction and feature PSI, missing values), cost
and pipeline rules; the test waits until it has, then checks that nothing reached the receiver
and nothing fires.

Labels are not joined in this scenario (labels.models: []): loadgen sends labels after all
predictions with the wall clock as their time, so a day replayed in seconds has no label
coverage that a live day would have had, and the performance rules (accuracy, label coverage)
have no value to judge. Pipeline signals without a source in the aggregator (agent drops,
spool use, DLQ rate, consumer lag) are not evaluated.
"""
import glob
import json
import os
import time

import yaml

import alert_env as env
from harness import api_data, metrics, run, wait_for

PER_MINUTE = 60
WINDOWS = 1440
CHUNK = 120
MODELS = ["churn:v1", "churn:v2", "fraud:v1"]


WALL_CLOCK = {"absence", "agent_drops", "spool_use", "dlq_rate", "consumer_lag"}


def duration_ms(text):
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
    for unit in ("ms", "s", "m", "h", "d"):
        if str(text).endswith(unit) and str(text)[:-len(unit)].isdigit():
            return int(str(text)[:-len(unit)]) * units[unit]
    return int(text)


def rule_delays(pattern):
    """The distinct delays of the per-window rules in the files, fine and coarse (0 included
    where a rule has none)."""
    fine, coarse = set(), set()
    for f in glob.glob(pattern):
        for g in yaml.safe_load(open(f))["groups"]:
            for r in g["rules"]:
                if r["signal"] in WALL_CLOCK:
                    continue
                coarse_rule = r.get("resolution") in ("1h", "coarse") and r["signal"] != "burn_rate"
                (coarse if coarse_rule else fine).add(duration_ms(r.get("delay", 0)))
    return sorted(fine), sorted(coarse)


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    rules = os.path.join(env.SOURCE, "config", "rules", "*.yaml")
    config = env.aggregator_config(cluster, receiver, "groups: []\n",
                                   extra="labels:\n  models: []\n")
    config = config.replace(f'rule_files: ["{cluster.dir}/rules.yaml"]',
                            f'rule_files: ["{rules}"]')
    agg = cluster.start_aggregator(extra=config)
    agent = cluster.start_agent(extra=env.agent_config())
    env.push_profiles(agg.http_port, "churn", ["v1", "v2"], seed=11)
    env.push_profiles(agg.http_port, "fraud", ["v1"], seed=12)
    n_rules = sum(len(g["rules"]) for f in glob.glob(rules)
                  for g in yaml.safe_load(open(f))["groups"])
    started_line = [l for l in cluster.log_of(agg).splitlines() if "msg=started rules=" in l]
    tap.check(len(glob.glob(rules)) == 5 and started_line and
              f"rules={n_rules} " in started_line[0],
              f"every ready-made rule set is loaded ({n_rules} rules)", started_line)
    t0 = env.base_time(hours_ago=26)
    started = time.monotonic()
    # Two hours at a time, each applied before the next is sent: the mock Kafka keeps only the
    # last few MB of a partition, and loadgen outruns the aggregator.
    total = failed = 0
    for chunk in range(WINDOWS // CHUNK):
        sent = env.send(cluster, agent, MODELS, t0 + chunk * CHUNK * env.MINUTE, CHUNK,
                        PER_MINUTE, ["--error-share", "0.0003"], seed=5 + chunk)
        total += sent["sent"]
        failed += sent["failed"]
        wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
                 == total, 120, f"the aggregator to apply {total} predictions")
    tap.check(total == PER_MINUTE * WINDOWS * len(MODELS) and failed == 0,
              "a day of traffic sent and applied", {"sent": total, "failed": failed})

    # Every final window of the day evaluated once per cursor: 1,438 fine and 23 coarse per
    # version (the last ones wait for later traffic to become final), and for each `delay` the
    # rules use, that much fewer (a delayed cursor judges a window `delay` after it is final).
    fine_delays, coarse_delays = rule_delays(rules)
    want = len(MODELS) * (sum(WINDOWS - 2 - d // env.MINUTE for d in fine_delays) +
                          sum(23 - d // env.HOUR for d in coarse_delays))

    def evaluated():
        return metrics(agg.http_port).get("modelwatch_alert_windows_evaluated_total", 0)
    wait_for(lambda: evaluated() >= want, 300, f"{want} windows evaluated")
    elapsed = time.monotonic() - started
    time.sleep(4)  # group_wait and an interval: a page would have been sent by now
    m = metrics(agg.http_port)
    tap.check(m["modelwatch_alert_windows_evaluated_total"] == want,
              f"every final window evaluated once per cursor ({want})",
              m["modelwatch_alert_windows_evaluated_total"])
    tap.check(receiver.requests() == [], "zero pages and zero webhook messages",
              json.dumps(receiver.requests())[:2000])
    tap.check(m.get("modelwatch_alert_pages_total") == 0, "no alert fired",
              {k: v for k, v in m.items() if k.startswith("modelwatch_alert_state")})
    active = env.alerts(agg.http_port, "active")
    tap.check(active == [], "nothing pending or firing at the end of the day",
              json.dumps(active)[:1500])
    # The drift rules had data to judge: the hourly windows hold drift for the profiles.
    drift = api_data(agg.http_port, f"/api/v1/models/churn/drift?version=v1"
                                    f"&window={t0 + 5 * env.HOUR}&resolution=3600")
    tap.check(drift["verdict"] in ("none", "possible"),
              "the drift rules judged real drift data (an hour's verdict)",
              json.dumps(drift)[:400])
    print(f"# a day of event time sent and evaluated in {elapsed:.1f} s of wall time")


if __name__ == "__main__":
    run(main)
