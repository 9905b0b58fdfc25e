#!/usr/bin/env python3
"""The local demo's story, played short: `deploy/local/demo.sh --duration 30` with the build
directory under test (so it neither installs nor builds) and a private run directory.

The story (18 one-minute windows of event time through two agents and two aggregator replicas):
normal traffic on churn v1; feature f3 shifted by 40; f3 back to normal while v2 takes half the
traffic with 20x its latency; v2 rolled back. What PagerDuty's stand-in must have got, exactly:

  FeatureDrift, model churn (v1, f3), severity warning: one trigger, then one resolve with the
      same dedup_key once f3 is back to normal
  LatencyP99High, model churn (v2), severity critical: one trigger, then one resolve with the
      same dedup_key once churn's windows have gone on five minutes without v2 (a rolled-back
      version is gone, as a Prometheus series that disappears)

Also checked: the demo exits 0; every prediction the model sent was counted, none late; the
plain live lines (stdout is not a terminal) show v2's p99 as loadgen draws it (latencies
exp(7 + 2U) us, U uniform, times 20: p99 = 20 exp(8.98) us = 158.8 ms, within 1 %
histogram error and the sampling noise of 600 values); and the report lists what the receiver
got and where to look next.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Tap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import alert_receiver  # noqa: E402

DURATION_S = 30
TIMEOUT_S = 170


def run_demo(build_dir, run_dir):
    """Run the demo to its end; (exit code, stdout+stderr text, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(["bash", os.path.join(SOURCE, "deploy", "local", "demo.sh"),
                             "--duration", str(DURATION_S), "--build-dir", build_dir,
                             "--run-dir", run_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out.decode(errors="replace"), time.monotonic() - t0
    return proc.returncode, out.decode(errors="replace"), time.monotonic() - t0


def pagerduty_events(run_dir):
    log = os.path.join(run_dir, "receiver.jsonl")
    return [(r["t"], json.loads(r["body"])) for r in alert_receiver.read_log(log)
            if r["path"] == "/pd/v2/enqueue"]


def alerts_of(event):
    return ((event.get("payload") or {}).get("custom_details") or {}).get("alerts", [])


def check_receiver(tap, events):
    detail = json.dumps([e for _, e in events])[:3000]
    triggers = [(t, e) for t, e in events if e.get("event_action") == "trigger"]
    resolves = [(t, e) for t, e in events if e.get("event_action") == "resolve"]
    tap.check(len(events) == 4 and len(triggers) == 2 and len(resolves) == 2,
              "the receiver got exactly two triggers and two resolves", detail)
    by_name = {}
    for t, e in triggers:
        names = sorted(a["labels"]["alertname"] for a in alerts_of(e))
        by_name[",".join(names)] = (t, e)
    tap.check(sorted(by_name) == ["FeatureDrift", "LatencyP99High"],
              "one trigger per story problem: FeatureDrift and LatencyP99High", sorted(by_name))
    drift = by_name.get("FeatureDrift")
    latency = by_name.get("LatencyP99High")
    if drift:
        t, e = drift
        labels = alerts_of(e)[0]["labels"]
        tap.check(labels["model"] == "churn" and labels["version"] == "v1" and
                  labels["feature"] == "f3" and e["payload"]["severity"] == "warning",
                  "the drift page is about f3 of churn v1, severity warning", json.dumps(labels))
        tap.check("feature f3 drifted" in e["payload"]["summary"], "the drift page's summary",
                  e["payload"]["summary"])
        key = e["dedup_key"]
        tap.check(re.fullmatch(r"[0-9a-f]{64}", key) is not None,
                  "the drift page's dedup_key is a SHA-256 in hex", key)
        same = [(rt, r) for rt, r in resolves if r["dedup_key"] == key]
        tap.check(len(same) == 1 and same[0][0] > t,
                  "f3 back to normal: one resolve with the drift page's dedup_key, after it",
                  detail)
    if latency:
        t, e = latency
        labels = alerts_of(e)[0]["labels"]
        tap.check(len(alerts_of(e)) == 1 and labels["model"] == "churn" and
                  labels["version"] == "v2" and e["payload"]["severity"] == "critical",
                  "the latency page is about churn v2 only, severity critical",
                  json.dumps(alerts_of(e))[:800])
        tap.check(not drift or e["dedup_key"] != drift[1]["dedup_key"],
                  "the two incidents have their own dedup_keys")
        same = [(rt, r) for rt, r in resolves if r["dedup_key"] == e["dedup_key"]]
        tap.check(len(same) == 1 and same[0][0] > t,
                  "v2 rolled back: one resolve with the latency page's dedup_key, after it",
                  detail)


def check_live_lines(tap, out):
    lines = [line for line in out.splitlines() if line.startswith("live: ")]
    phases = re.findall(r"^live: phase (\w+):", out, re.M)
    tap.check(phases == ["normal", "drift", "rollout", "rollback", "end"],
              "the live view follows the story's phases", phases)
    v2 = [line for line in lines if " churn v2 " in line]
    p99s = [float(m.group(1)) for line in v2 for m in [re.search(r" p99=([0-9.]+)ms ", line)]
            if m]
    want_ms = 20 * math.exp(7 + 2 * 0.99) / 1000
    tap.check(p99s and all(abs(p - want_ms) / want_ms < 0.05 for p in p99s),
              f"v2's p99 in the live view is about {want_ms:.1f} ms", v2[:5])
    tap.check(any("alerts=LatencyP99High:firing" in line for line in v2),
              "the live view shows v2's latency alert firing", v2[-3:])
    v1 = [line for line in lines if " churn v1 " in line and "rps=10.0 " in line]
    tap.check(len(v1) >= 3, "the live view shows churn v1 at 10 requests/s (600 a minute)",
              lines[:6])


def check_report(tap, out, events):
    m = re.search(r"^pipeline: (\d+) predictions sent by the model, (\d+) counted by the "
                  r"aggregators, (\d+) late, (\d+) batches to the dead-letter topic$", out, re.M)
    # 6,000 reference predictions, 18 windows x 600 per version, 4 of them with two versions.
    want = 6000 + 18 * 600 + 4 * 600
    tap.check(m is not None and [int(x) for x in m.groups()] == [want, want, 0, 0],
              f"the report: {want} predictions sent and counted, none late, no dead letters",
              m.group(0) if m else out[-2000:])
    for _, e in events:
        if e.get("event_action") == "trigger":
            tap.check(re.search(r"trigger\s+%s\s+%s\.\.\s+%s" % (
                e["payload"]["severity"], e["dedup_key"][:12], re.escape(e["payload"]["summary"])),
                out) is not None, "the report lists the trigger with its severity, key and "
                "summary", e["payload"]["summary"])
    tap.check("every incident paged was resolved" in out and "still open: " not in out and
              "Where to look next:" in out and
              "/api/v1/alerts" in out and "modelwatch-ctl --api http://127.0.0.1:" in out and
              "deploy/grafana/dashboards/modelwatch-slo.json" in out and
              "deploy/runbooks/latency-p99-high.md" in out,
              "the report says every incident was resolved, and where to look next", out[-2500:])


def main():
    build_dir = os.environ.get("MW_BUILD_DIR") or (sys.argv[1] if len(sys.argv) > 1 else "build")
    tap = Tap()
    run_dir = tempfile.mkdtemp(prefix="mw-test-demo-")
    try:
        rc, out, seconds = run_demo(os.path.abspath(build_dir), run_dir)
        tap.check(rc == 0, f"demo.sh --duration {DURATION_S} exits 0 (took {seconds:.0f} s)",
                  out[-3000:])
        events = pagerduty_events(run_dir)
        check_receiver(tap, events)
        check_live_lines(tap, out)
        check_report(tap, out, events)
        if tap.failed:
            for name in sorted(os.listdir(run_dir)):
                if name.endswith(".log"):
                    with open(os.path.join(run_dir, name), errors="replace") as f:
                        tail = f.read().splitlines()[-15:]
                    print(f"# ----- {name} -----\n" + "\n".join("# " + x for x in tail))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    sys.exit(tap.finish())


if __name__ == "__main__":
    main()
