#!/usr/bin/env python3
"""A real Prometheus scrapes two aggregator replicas in one consumer group while known traffic
flows agent -> devkafka -> aggregators, and PromQL over the per-model series gives back what was
sent: exact prediction and error counts summed across replicas, a non-zero rate() per model, and
histogram_quantile(0.99) within the `le` bucket that holds numpy's p99 of the latencies sent. A
replica of another consumer group then replays every batch and counts none of them.
promtool check metrics passes on the aggregators' and an agent's /metrics from the same run.

Prometheus is Debian's `prometheus` binary with a generated config, its TSDB in the test
directory, on a free loopback port; like every other process it is stopped on every path.
"""
import csv
import json
import os
import shutil
import subprocess
import time
import urllib.parse

from harness import TestFailure, free_port, http_get, metrics, run, wait_for

import numpy as np

AGENTS = 4
EVENTS = 3000           # per agent, over two models
RATE = 600              # events per second per agent: traffic lasts several scrapes
MODELS = ["churn:v3", "fraud:v1"]
# modelwatch_prediction_latency_seconds' bounds (aggregator/model_totals.c)
LE = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
ALPHA = 0.01            # the agents' histogram: 1 % relative error


def start_prometheus(cluster, targets):
    exe = shutil.which("prometheus")
    if not exe:
        raise TestFailure("prometheus is not installed (deploy/local/install-deps.sh --test)")
    port = free_port()
    cfg = cluster.write_config("prometheus.yml", f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: modelwatch-aggregator
    static_configs:
      - targets: {json.dumps(targets)}
""")
    proc = cluster.spawn("prometheus", [
        exe, "--config.file", cfg,
        "--storage.tsdb.path", os.path.join(cluster.dir, "prometheus-data"),
        "--web.listen-address", f"127.0.0.1:{port}",
        "--web.enable-lifecycle"])
    proc.http_port = port
    wait_for(lambda: http_get(port, "/-/ready")[0] == 200, 60, "prometheus /-/ready")
    return proc


def query(port, promql, at=None):
    """Instant query; returns {labels-as-tuple: value}."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    status, body = http_get(port, "/api/v1/query?" + urllib.parse.urlencode(params))
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        raise TestFailure(f"query {promql!r} answered {status}: {body}")
    return {tuple(sorted(r["metric"].items())): float(r["value"][1])
            for r in doc["data"]["result"]}


def by_model(result):
    return {dict(k).get("model"): v for k, v in result.items()}


def promtool_check(text):
    exe = shutil.which("promtool")
    if not exe:
        raise TestFailure("promtool is not installed (deploy/local/install-deps.sh --test)")
    return subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True)


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    replicas = [cluster.start_aggregator(name=f"aggregator-{i}") for i in range(2)]
    prom = start_prometheus(cluster, [f"127.0.0.1:{r.http_port}" for r in replicas])
    wait_for(lambda: sorted(query(prom.http_port, "up").values()) == [1.0, 1.0], 30,
             "prometheus to scrape both replicas")
    time.sleep(3)  # let the consumer group settle with both members

    agents = [cluster.start_agent(name=f"agent-{i}", agent_id=f"pod-{i}") for i in range(AGENTS)]
    loads = []
    for i, agent in enumerate(agents):
        dump = os.path.join(cluster.dir, f"sent-{i}.csv")
        loads.append((cluster.start_loadgen(agent.endpoint, MODELS, EVENTS,
                                            extra=["--seed", str(i + 1), "--rate", str(RATE),
                                                   "--error-share", "0.05",
                                                   "--dump-csv", dump]), dump))
    sent, errors, latencies = {}, {}, {}
    for proc, dump in loads:
        report = cluster.finish_loadgen(proc)
        if report["sent"] != EVENTS or report["failed"]:
            raise TestFailure(f"loadgen did not hand every event over: {report}")
        with open(dump) as f:
            for row in csv.DictReader(f):
                m = row["model"]
                sent[m] = sent.get(m, 0) + 1
                errors[m] = errors.get(m, 0) + (row["status"] != "ok")
                latencies.setdefault(m, []).append(int(row["latency_us"]) / 1e6)
    tap.check(sum(sent.values()) == AGENTS * EVENTS and set(sent) == {"churn", "fraud"},
              "the dumps hold every event sent", json.dumps(sent))

    def applied():
        return sum(v for r in replicas for k, v in metrics(r.http_port).items()
                   if k.startswith("modelwatch_predictions_total{"))
    wait_for(lambda: applied() == AGENTS * EVENTS, 120, "the replicas to apply every batch")
    shares = [metrics(r.http_port)["modelwatch_aggregator_batches_applied_total"]
              for r in replicas]
    tap.check(all(s > 0 for s in shares), "both replicas applied part of the traffic", str(shares))

    # Prometheus has the final values once it scraped both replicas after the last batch.
    def scraped_all():
        got = by_model(query(prom.http_port, "sum by (model) (modelwatch_predictions_total)"))
        return got == {m: float(n) for m, n in sent.items()}
    try:
        wait_for(scraped_all, 30, "prometheus to scrape the final counts")
    except TestFailure:
        pass  # the checks below say what differs
    now = time.time()
    got = by_model(query(prom.http_port, "sum by (model) (modelwatch_predictions_total)", now))
    tap.check(got == {m: float(n) for m, n in sent.items()},
              "sum by (model) of the counters across replicas = predictions sent",
              f"{got} vs {sent}")
    got = by_model(query(prom.http_port,
                         "sum by (model) (modelwatch_prediction_errors_total)", now))
    tap.check(got == {m: float(n) for m, n in errors.items()},
              "sum by (model) of the error counters = errors sent", f"{got} vs {errors}")
    got = by_model(query(prom.http_port,
                         "sum by (model) (modelwatch_prediction_latency_seconds_count)", now))
    tap.check(got == {m: float(n) for m, n in sent.items()},
              "the histograms' _count = predictions sent", f"{got} vs {sent}")
    got = by_model(query(prom.http_port,
                         "sum by (model) (modelwatch_prediction_latency_seconds_sum)", now))
    want = {m: sum(v) for m, v in latencies.items()}
    tap.check(set(got) == set(want) and
              all(abs(got[m] - want[m]) <= 1e-9 * want[m] for m in want),
              "the histograms' _sum = the latencies sent, in seconds", f"{got} vs {want}")

    rates = by_model(query(prom.http_port,
                           "sum by (model) (rate(modelwatch_predictions_total[1m]))", now))
    tap.check(set(rates) == set(sent) and all(r > 0 for r in rates.values()),
              "sum by (model) (rate(modelwatch_predictions_total[1m])) is non-zero per model",
              str(rates))
    increases = by_model(query(prom.http_port,
                               "sum by (model) (increase(modelwatch_predictions_total[1m]))",
                               now))
    tap.check(set(increases) == set(sent) and
              all(0 < increases[m] <= 1.5 * sent[m] for m in sent),
              "increase() over the traffic is positive and of the order sent",
              f"{increases} vs {sent}")

    p99 = by_model(query(prom.http_port,
                         "histogram_quantile(0.99, sum by (le, model) "
                         "(rate(modelwatch_prediction_latency_seconds_bucket[1m])))", now))
    for m, values in sorted(latencies.items()):
        truth = float(np.percentile(values, 99))
        lo = max([b for b in LE if b < truth], default=0.0)
        hi = min([b for b in LE if b >= truth], default=float("inf"))
        est = p99.get(m)
        tap.check(est is not None and lo * (1 - ALPHA) <= est <= hi * (1 + ALPHA),
                  f"{m}: histogram_quantile(0.99) is within the bucket ({lo}, {hi}] that holds "
                  f"numpy's p99 {truth:.6f} s", f"got {est}")

    status, targets = http_get(prom.http_port, "/api/v1/targets")
    tap.check(status == 200 and all(t["health"] == "up" for t in
                                    json.loads(targets)["data"]["activeTargets"]),
              "every scrape of the replicas succeeded (the exposition parses)", targets[:2000])

    for name, port in ([(r.mw_name, r.http_port) for r in replicas] +
                       [(agents[0].mw_name, agents[0].http_port)]):
        status, text = http_get(port, "/metrics")
        check = promtool_check(text)
        tap.check(status == 200 and check.returncode == 0,
                  f"{name} /metrics passes promtool check metrics",
                  check.stdout.decode() + check.stderr.decode())
    text = http_get(replicas[0].http_port, "/metrics")[1]
    tap.check("# TYPE modelwatch_prediction_latency_seconds histogram" in text and
              "# TYPE modelwatch_model_latency_seconds summary" in text,
              "the latency histogram and the window's quantiles are typed as such")

    # Every batch again, through a replica of another consumer group: the apply scripts refuse
    # the replays, and a replay is never counted.
    replay = cluster.start_aggregator(name="aggregator-replay",
                                      extra="consumer:\n  group_id: replay-check\n")
    records = cluster.topic_end_offsets("modelwatch.telemetry")
    wait_for(lambda: metrics(replay.http_port)["modelwatch_aggregator_batches_applied_total"]
             == records, 60, f"the replaying replica to go through all {records} records")
    m = metrics(replay.http_port)
    counted = {k: v for k, v in m.items() if k.startswith("modelwatch_predictions_total{")}
    tap.check(not counted and m["modelwatch_aggregator_records_consumed_total"] == records,
              "a replica replaying every batch counts no prediction", json.dumps(counted))
    cluster.stop(replay)

    tap.check(cluster.stop(prom) == 0, "prometheus exits 0 on SIGTERM")
    for agent in agents:
        cluster.stop(agent)
    for r in replicas:
        tap.check(cluster.stop(r) == 0, f"{r.mw_name} exits 0")


if __name__ == "__main__":
    run(main)
