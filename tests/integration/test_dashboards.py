#!/usr/bin/env python3
"""deploy/grafana dashboards against a real Prometheus scraping real aggregators and an agent.

Two aggregator replicas in one consumer group and an agent run with traffic that exercises
every kind of series: two classifiers with errors and labels over past windows, a reference
profile built and pushed for one of them, then drifted traffic, paced so that Prometheus
scrapes while it flows. Prometheus (Debian's, as in test_prometheus.py) scrapes the three and
evaluates the rule groups of deploy/k8s/components/monitoring/prometheusrule.yaml, which the
dashboards' burn-rate panels read.

For every panel target and every template variable of every dashboard, with Grafana's
variables replaced ($model, $version, $feature by ".*", $__rate_interval by 1m):
- Prometheus parses and evaluates the query (an instant query succeeds);
- every metric the query names is one the aggregator or the agent exports (a # TYPE line of
  their /metrics), a recording rule of the PrometheusRule, or Prometheus's own ALERTS;
- the query returns data, unless every series it names has no sample in this traffic (the
  regression metrics, for classifiers only): those are listed, not failed.
The dashboards are valid Grafana JSON (unique uids and panel ids, a datasource variable, every
panel on it) and deploy/grafana/kustomization.yaml ships each of them.
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

import yaml

from harness import TestFailure, free_port, http_get, metrics, run, wait_for

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARDS = os.path.join(SOURCE_ROOT, "deploy", "grafana", "dashboards")
RULES = os.path.join(SOURCE_ROOT, "deploy", "k8s", "components", "monitoring",
                     "prometheusrule.yaml")
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h",
                "${__rate_interval}": "1m"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan", "atan2"}
PROMETHEUS_OWN = {"ALERTS", "ALERTS_FOR_STATE", "up"}


def start_prometheus(cluster, aggregators, agents, rules_file):
    exe = shutil.which("prometheus")
    if not exe:
        raise TestFailure("prometheus is not installed (deploy/local/install-deps.sh --test)")
    port = free_port()
    cfg = cluster.write_config("prometheus.yml", f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - {rules_file}
scrape_configs:
  - job_name: modelwatch-aggregator
    static_configs:
      - targets: {json.dumps(aggregators)}
  - job_name: modelwatch-agent
    static_configs:
      - targets: {json.dumps(agents)}
""")
    proc = cluster.spawn("prometheus", [
        exe, "--config.file", cfg,
        "--storage.tsdb.path", os.path.join(cluster.dir, "prometheus-data"),
        "--web.listen-address", f"127.0.0.1:{port}"])
    proc.http_port = port
    wait_for(lambda: http_get(port, "/-/ready")[0] == 200, 60, "prometheus /-/ready")
    return proc


def query(port, promql):
    """(ok, result or error) of an instant query at now."""
    params = urllib.parse.urlencode({"query": promql, "time": f"{time.time():.3f}"})
    status, body = http_get(port, "/api/v1/query?" + params)
    try:
        doc = json.loads(body)
    except ValueError:
        return False, body
    if status != 200 or doc.get("status") != "success":
        return False, doc.get("error", body)
    return True, doc["data"]["result"]


def substitute(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def metric_names(expr):
    """Metric names a PromQL expression selects (a tokenizer, not a parser: strings, label
    matchers, grouping clauses and ranges are removed first)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)", e):
        name = m.group(1)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def exported_names(ports):
    """Series names of the # TYPE lines on these /metrics, histograms expanded."""
    names = set()
    for port in ports:
        status, text = http_get(port, "/metrics")
        if status != 200:
            raise TestFailure(f"/metrics of :{port} answered {status}")
        for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
            name, kind = m.groups()
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
            if kind == "summary":
                names |= {name + "_sum", name + "_count"}
    return names


def panels_of(dash):
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out += p.get("panels", [])  # collapsed rows
    return out


def check_static(tap, dashboards):
    uids = [d["uid"] for d in dashboards.values()]
    tap.check(len(uids) == len(set(uids)) and len(dashboards) >= 5,
              "five or more dashboards with unique uids", str(uids))
    wanted = {"slo", "drift", "performance", "cost", "pipeline"}
    tap.check(all(any(w in uid for uid in uids) for w in wanted),
              "dashboards for service SLOs, drift, performance, cost and pipeline health",
              str(uids))
    for name, d in sorted(dashboards.items()):
        variables = d.get("templating", {}).get("list", [])
        ds = [v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
        panels = [p for p in panels_of(d) if p.get("type") != "row"]
        ids = [p["id"] for p in panels_of(d)]
        bad = [p["title"] for p in panels
               if p.get("datasource", {}).get("uid") != "${datasource}" or not p.get("targets")
               or any(t.get("datasource", {}).get("uid") != "${datasource}" for t in p["targets"])]
        tap.check(ds and len(ids) == len(set(ids)) and not bad and d.get("schemaVersion"),
                  f"{name}: a Prometheus datasource variable, unique panel ids, every panel and "
                  f"target on the variable", str(bad))
        tap.check(all(p.get("description") for p in panels),
                  f"{name}: every panel says what it shows",
                  str([p["title"] for p in panels if not p.get("description")]))
    with open(os.path.join(SOURCE_ROOT, "deploy", "grafana", "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    shipped = {os.path.basename(x) for g in kust["configMapGenerator"] for x in g["files"]}
    tap.check(shipped == set(dashboards), "deploy/grafana/kustomization.yaml ships every dashboard",
              f"{sorted(shipped)} vs {sorted(dashboards)}")


def run_traffic(tap, cluster, agent, aggregators):
    now_min = int(time.time()) // 60
    # Reference traffic over three past minutes: its CSV is churn's reference data.
    ref_csv = os.path.join(cluster.dir, "reference.csv")
    ref = cluster.loadgen(agent.endpoint, ["churn:v3", "fraud:v1"], 6000, windows=3,
                          start_ms=(now_min - 6) * 60000,
                          extra=["--error-share", "0.05", "--labels", "0.3",
                                 "--dump-csv", ref_csv])
    with open(ref_csv) as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == "churn"]
    churn_csv = os.path.join(cluster.dir, "churn.csv")
    with open(churn_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ctl = [cluster.binary("tools/modelwatch-ctl"), "--api",
           f"http://127.0.0.1:{aggregators[0].http_port}"]
    profile = os.path.join(cluster.dir, "churn-v3.json")
    out = subprocess.run(ctl + ["profile", "build", "--model", "churn", "--version", "v3",
                                "--ignore", "model", "--ignore", "version",
                                "--ignore", "prediction_id", "--ignore", "latency_us",
                                "--ignore", "status", "--label", "label", "-o", profile,
                                churn_csv], capture_output=True, text=True)
    out2 = subprocess.run(ctl + ["profile", "push", profile], capture_output=True, text=True)
    tap.check(out.returncode == 0 and out2.returncode == 0,
              "a reference profile for churn v3 is built and pushed",
              out.stderr + out2.stdout + out2.stderr)
    # Drifted traffic for the two minutes before this one, paced over several scrapes; then
    # both models in the current minute, so rates are non-zero when the panels are queried.
    drift = cluster.start_loadgen(agent.endpoint, ["churn:v3"], 3000,
                                  extra=["--windows", "2", "--start-ms",
                                         str((now_min - 2) * 60000), "--shift", "15",
                                         "--seed", "11", "--error-share", "0.05",
                                         "--labels", "0.3", "--rate", "600"])
    live = cluster.start_loadgen(agent.endpoint, ["churn:v3", "fraud:v1"], 6000,
                                 extra=["--seed", "12", "--error-share", "0.05",
                                        "--labels", "0.3", "--rate", "600"])
    # Predictions: the per-window counts (a report's "sent" counts labels too).
    sent = sum(w["count"] for report in (ref, cluster.finish_loadgen(drift),
                                         cluster.finish_loadgen(live))
               for w in report["windows"])

    def applied():
        return sum(v for a in aggregators for k, v in metrics(a.http_port).items()
                   if k.startswith("modelwatch_predictions_total{"))
    wait_for(lambda: applied() == sent, 120, "the replicas to apply every batch")
    tap.check(True, f"{sent} predictions applied across the replicas")


def main(tap, cluster):
    dashboards = {}
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path) as f:
            dashboards[os.path.basename(path)] = json.load(f)
    check_static(tap, dashboards)

    with open(RULES) as f:
        rule = yaml.safe_load(f)
    rules_file = os.path.join(cluster.dir, "rules.yaml")
    with open(rules_file, "w") as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f, sort_keys=False)
    recorded = {r["record"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}

    cluster.start_redis()
    cluster.start_devkafka()
    extra = ("cost:\n  cpu_core_hour: 0.05\n  memory_gib_hour: 0.01\n  pod_hour: 0.02\n"
             "drift:\n  windows: fine\n")
    aggregators = [cluster.start_aggregator(name=f"aggregator-{i}", extra=extra)
                   for i in range(2)]
    agent = cluster.start_agent(extra="resources:\n  requested_cores: 2\n"
                                      "  requested_memory: 4GiB\n")
    prom = start_prometheus(cluster, [f"127.0.0.1:{a.http_port}" for a in aggregators],
                            [f"127.0.0.1:{agent.http_port}"], rules_file)
    wait_for(lambda: len(query(prom.http_port, "up == 1")[1]) == 3, 30,
             "prometheus to scrape both replicas and the agent")
    time.sleep(3)  # let the consumer group settle with both members
    run_traffic(tap, cluster, agent, aggregators)

    # Drift gauges appear once the drifted windows are closed and refreshed.
    def drift_exported():
        return any(k.startswith("modelwatch_model_drift_psi{") for a in aggregators
                   for k in metrics(a.http_port))
    wait_for(drift_exported, 60, "the drift gauges on /metrics")
    # 5 % errors burn a 0.1 % budget 50 times too fast: the PrometheusRule's page alerts go
    # pending (their `for` is longer than this test).
    def burning():
        ok, r = query(prom.http_port, 'ALERTS{alertname="ModelwatchErrorBudgetBurnFast"}')
        return ok and {s["metric"]["model"] for s in r} == {"churn", "fraud"}
    try:
        wait_for(burning, 30, "the fast burn-rate alert to go pending")
    except TestFailure:
        pass
    tap.check(burning(), "real traffic with 5 % errors makes ModelwatchErrorBudgetBurnFast "
              "pending for both models",
              str(query(prom.http_port, 'ALERTS or modelwatch:error_budget_burn:rate5m')))
    time.sleep(3)  # a few more scrapes and rule evaluations
    exported = exported_names([a.http_port for a in aggregators] + [agent.http_port])
    tap.check("modelwatch_predictions_total" in exported and
              "modelwatch_agent_spool_bytes" in exported,
              "the aggregators' and the agent's /metrics list their series",
              str(sorted(exported))[:2000])
    ok, series = query(prom.http_port, 'count by (__name__) ({__name__=~"modelwatch.+"})')
    with_samples = {s["metric"]["__name__"] for s in series} if ok else set()

    for name, d in sorted(dashboards.items()):
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
            if not m:
                tap.check(False, f"{name}: variable {v['name']} is label_values(...)", q)
                continue
            selector, label = substitute(m.group(1)), m.group(2)
            status, body = http_get(prom.http_port, f"/api/v1/label/{label}/values?" +
                                    urllib.parse.urlencode({"match[]": selector}))
            values = json.loads(body).get("data", []) if status == 200 else []
            tap.check(values and metric_names(selector) <= exported,
                      f"{name}: variable ${v['name']} ({q}) lists values: {values[:5]}", body[:500])
        for p in panels_of(d):
            for t in p.get("targets", []):
                expr = substitute(t["expr"])
                ok, result = query(prom.http_port, expr)
                names = metric_names(expr)
                unknown = names - exported - recorded - PROMETHEUS_OWN
                what = f"{name}: {p['title']} [{t['refId']}]"
                tap.check(ok and not unknown,
                          f"{what}: parses, and names only exported or recorded series",
                          f"{expr}\n{result if not ok else ''}\nunknown: {sorted(unknown)}")
                if not ok:
                    continue
                empty_inputs = {n for n in names - PROMETHEUS_OWN
                                if n not in with_samples and n not in recorded}
                if result:
                    tap.check(True, f"{what}: returns {len(result)} series")
                elif names - PROMETHEUS_OWN and empty_inputs == names - PROMETHEUS_OWN:
                    tap.check(True, f"{what}: no data: {sorted(empty_inputs)} have no sample in "
                              f"this traffic (exported, empty)")
                else:
                    tap.check(False, f"{what}: returns data", expr)

    tap.check(cluster.stop(prom) == 0, "prometheus exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
