#!/usr/bin/env python3
"""End to end with real processes: loadgen -> agent -> devkafka -> aggregator -> Redis -> API.

10,000 events for two models over three one-minute windows; the API must return exactly the
counts sent, per model, version and window, at both resolutions, and every process must stop
cleanly on SIGTERM.
"""
import json
import shutil
import subprocess
import time

from harness import api_data, api_error, http_get, metrics, run, wait_for

EVENTS = 10000
WINDOW_MS = 60000


def expected_windows(sent):
    out = {}
    for w in sent["windows"]:
        out.setdefault(w["model"], {})[(w["version"], w["start_ms"])] = w["count"]
    return out


def api_windows(port, model, resolution, start_ms):
    return api_data(port, f"/api/v1/models/{model}/windows?resolution={resolution}"
                          f"&from={start_ms - 3600_000}&to={start_ms + 3600_000}")


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()

    # Three whole windows that ended a while ago, aligned to the hour so the coarse window
    # holds all three.
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms // 3600_000 - 1) * 3600_000
    sent = cluster.loadgen(agent.endpoint, ["churn:v3", "fraud:v1"], EVENTS, windows=3,
                           start_ms=start_ms, extra=["--error-share", "0.05"])
    tap.check(sent["sent"] == EVENTS and sent["failed"] == 0, "loadgen handed every event over",
              json.dumps(sent))

    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == EVENTS, 60, "the aggregator to apply every event")
    m = metrics(agg.http_port)
    tap.check(m["modelwatch_aggregator_predictions_total"] == EVENTS,
              "aggregator counted exactly the events sent")

    models = api_data(agg.http_port, "/api/v1/models")
    tap.check(models == {"models": ["churn", "fraud"]}, "GET /api/v1/models lists both models",
              models)

    want = expected_windows(sent)
    for model, windows in sorted(want.items()):
        doc = api_windows(agg.http_port, model, 60, start_ms)
        got = {(w["version"], w["start_ms"]): w["count"] for w in doc["windows"]}
        tap.check(got == windows, f"{model}: per-minute counts equal what was sent",
                  f"want {windows}\ngot  {got}")
        tap.check(all(w["end_ms"] - w["start_ms"] == WINDOW_MS for w in doc["windows"]),
                  f"{model}: minute windows are 60 s wide")
        errors = sum(w["errors"] for w in doc["windows"])
        tap.check(0 < errors < sum(windows.values()) and
                  all(w["errors_by_code"].get("timeout", 0) == w["errors"] for w in doc["windows"]),
                  f"{model}: errors counted by code", json.dumps(doc["windows"][0]))
        tap.check(all(w["latency_us"]["p50"] <= w["latency_us"]["p99"] for w in doc["windows"]),
                  f"{model}: latency percentiles ordered")
        hourly = api_windows(agg.http_port, model, 3600, start_ms)
        tap.check([(w["start_ms"], w["count"]) for w in hourly["windows"]] ==
                  [(start_ms, sum(windows.values()))],
                  f"{model}: the hour window holds the sum of its minutes",
                  json.dumps(hourly["windows"]))

    # Burn rates as of the end of the data: the 5 m..2 h lookbacks add up minute windows, the
    # 6 h..3 d ones the hour window; with all the data in the last 3 minutes they all see the
    # same errors and requests.
    doc = api_windows(agg.http_port, "churn", 60, start_ms)
    errors = sum(w["errors"] for w in doc["windows"])
    count = sum(w["count"] for w in doc["windows"])
    tap.check(all(w["slo"]["availability"] == 1 - w["errors"] / w["count"]
                  for w in doc["windows"]), "per-window availability = 1 - error rate")
    slo = api_data(agg.http_port, f"/api/v1/models/churn/slo?at={start_ms + 180_000}")
    tap.check(all(abs(slo["error_rate"][k] - errors / count) < 1e-12
                  for k in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")),
              "error rate over every lookback", json.dumps(slo))
    rates = {(p["long"], p["short"]): p for p in slo["burn_rates"]}
    want = errors / count / (1 - 0.999)
    tap.check(set(rates) == {("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")} and
              all(abs(p["long_burn_rate"] - want) < 1e-9 and p["burning"] for p in rates.values()),
              "burn rates = error rate / (1 - objective), all four pairs burning at 5 % errors",
              json.dumps(slo))
    slo = api_data(agg.http_port, f"/api/v1/models/churn/slo?at={start_ms - 600_000}")
    tap.check(slo["error_rate"]["5m"] is None, "no data before the traffic: no error rate")

    error = api_error(agg.http_port, "/api/v1/models/no%20such/windows")
    tap.check(error[:2] == (400, "bad_data"), "a bad model name is refused with 400", error)
    error = api_error(agg.http_port, "/api/v1/models/churn/windows?resolution=7")
    tap.check(error[:2] == (400, "bad_data"), "an unknown resolution is refused with 400", error)

    promtool = shutil.which("promtool")
    for name, port in (("agent", agent.http_port), ("aggregator", agg.http_port)):
        status, text = http_get(port, "/metrics")
        if promtool:
            check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                                   capture_output=True)
            tap.check(check.returncode == 0, f"{name} /metrics passes promtool check metrics",
                      check.stdout.decode() + check.stderr.decode())
        else:
            tap.check(status == 200 and "# TYPE" in text, f"{name} /metrics is served")

    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
