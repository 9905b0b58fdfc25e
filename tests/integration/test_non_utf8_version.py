#!/usr/bin/env python3
"""A model version that is not valid UTF-8 keeps the API and /metrics valid.

Versions are free text to the client library (control characters aside), so bytes such as
"v\\xff1" reach the aggregator. JSON and Prometheus text must be UTF-8: before the fix the
windows API dropped the window's "version", /api/v1/models/M/slo?version=... answered 500, and
the exporter silently dropped the model from /metrics. Now the invalid bytes are shown as
U+FFFD wherever a version is encoded, and every count is still there.
"""
import json
import subprocess
import time
import urllib.error
import urllib.request

from harness import TestFailure, api_data, api_request, run, wait_for

EVENTS = 2000
VERSION = b"v\xff1"
SHOWN = "v\ufffd1"


def get(port, path):
    """(status, body bytes)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()
    port = agg.http_port
    start_ms = (int(time.time() * 1000) // 3600_000 - 1) * 3600_000
    out = subprocess.run([cluster.binary("tools/modelwatch-loadgen"), "--endpoint",
                          agent.endpoint, "--events", str(EVENTS), "--windows", "2",
                          "--start-ms", str(start_ms), "--model", b"churn:" + VERSION],
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        raise TestFailure(f"loadgen failed: {out.stderr!r}")
    path = (f"/api/v1/models/churn/windows?resolution=60&from={start_ms - 3600_000}"
            f"&to={start_ms + 3600_000}")

    # api_request decodes strictly: bytes that are not UTF-8 fail it.
    def windows():
        return api_data(port, path)["windows"]
    wait_for(lambda: sum(w["count"] for w in windows()) == EVENTS, 60,
             "the windows to count every event")
    ws = windows()
    tap.check(len(ws) == 2 and all(w.get("version") == SHOWN for w in ws)
              and sum(w["count"] for w in ws) == EVENTS,
              f"the windows API is valid JSON, counts {EVENTS} and shows the version",
              json.dumps(ws)[:500])

    slo = api_data(port, "/api/v1/models/churn/slo?version=v%FF1")
    tap.check(slo["version"] == SHOWN, "the SLO API answers valid JSON for that version", slo)

    status, envelope = api_request(port, "/api/v1/models/churn/drift")
    tap.check(status in (200, 404), "the drift API answers valid JSON (no profile: 404)",
              f"{status} {envelope}")

    def requests_series():
        status, body = get(port, "/metrics")
        text = body.decode("utf-8", errors="strict")
        return [line for line in text.splitlines()
                if line.startswith("modelwatch_model_requests{") and 'model="churn"' in line]
    try:
        wait_for(lambda: requests_series(), 30, "the exporter to show the model")
    except TestFailure:
        pass
    series = requests_series()
    tap.check(len(series) == 1 and f'version="{SHOWN}"' in series[0],
              "/metrics is valid UTF-8 and exports the model's latest window", f"{series}")
    status, body = get(port, "/metrics")
    m = {}
    for line in body.decode("utf-8", errors="strict").splitlines():
        if line.startswith("modelwatch_predictions_total{") and 'model="churn"' in line:
            m[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    tap.check(sum(m.values()) == EVENTS, f"per-model totals count {EVENTS}", f"{m}")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
