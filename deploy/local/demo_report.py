#!/usr/bin/env python3
"""The end of the local demo's story: what the pipeline counted against what the model sent,
the pages and resolves the PagerDuty stand-in got (tools/alert_receiver.py's log), which
incidents are still open, and where to look next: the API, modelwatch-ctl commands, the Grafana
dashboards and the runbooks the pages link.

    python3 deploy/local/demo_report.py --log receiver.jsonl --api URL [--api URL]
        --ctl PATH --root SOURCE_DIR --run-dir DIR --story-start-ms MS --sent FILE...

--sent names the JSON reports modelwatch-loadgen printed (one per line). Standard library only.
"""
import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import alert_receiver  # noqa: E402
from live_view import scrape  # noqa: E402

PAGERDUTY_PATH = "/v2/enqueue"


def pagerduty_events(log):
    """[(wall time, event)] of every Events API v2 request the receiver recorded, in order."""
    out = []
    for request in alert_receiver.read_log(log):
        if request["path"].endswith(PAGERDUTY_PATH):
            out.append((request["t"], json.loads(request["body"])))
    return out


def predictions_sent(paths):
    """Predictions modelwatch-loadgen handed to the agents, from its JSON reports."""
    total = 0
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    total += sum(w["count"] for w in json.loads(line)["windows"])
    return total


def pipeline_counts(apis):
    """(counted, late, dead letters) summed over the aggregators' /metrics; None if one is down."""
    wanted = {"modelwatch_aggregator_predictions_total": 0,
              "modelwatch_aggregator_late_dropped_total": 1,
              "modelwatch_aggregator_dlq_records_total": 2}
    out = [0.0, 0.0, 0.0]
    for api in apis:
        samples = scrape(f"{api}/metrics")
        if samples is None:
            return None
        for name, _, value in samples:
            if name in wanted:
                out[wanted[name]] += value
    return tuple(int(x) for x in out)


def print_pipeline(apis, sent, timeout_s=30):
    """Wait until the aggregators have applied everything sent (or timeout_s), then say so."""
    deadline = time.monotonic() + timeout_s
    counts = pipeline_counts(apis)
    while time.monotonic() < deadline and (counts is None or counts[0] + counts[1] < sent):
        time.sleep(0.5)
        counts = pipeline_counts(apis)
    if counts is None:
        print("pipeline: an aggregator does not answer /metrics")
        return
    counted, late, dlq = counts
    print(f"pipeline: {sent} predictions sent by the model, {counted} counted by the aggregators, "
          f"{late} late, {dlq} batches to the dead-letter topic")


def wall(t):
    return time.strftime("%H:%M:%S", time.localtime(t))


def print_events(events):
    print("What PagerDuty got (Events API v2, recorded by tools/alert_receiver.py):")
    if not events:
        print("  nothing")
        return
    print(f"  {'time':8}  {'action':8} {'severity':9} {'dedup_key':14} summary")
    summaries = {}
    for t, ev in events:
        key = ev.get("dedup_key", "")
        payload = ev.get("payload") or {}
        if ev.get("event_action") == "trigger":
            summaries[key] = payload.get("summary", "")
        severity = payload.get("severity", "-")
        summary = payload.get("summary") or f"(resolves) {summaries.get(key, '')}"
        print(f"  {wall(t):8}  {ev.get('event_action', '?'):8} {severity:9} {key[:12] + '..':14} "
              f"{summary}")


def open_incidents(events):
    """Triggers with no resolve after them, by dedup_key: {key: trigger event}."""
    still = {}
    for _, ev in events:
        key = ev.get("dedup_key", "")
        if ev.get("event_action") == "trigger":
            still[key] = ev
        elif ev.get("event_action") == "resolve":
            still.pop(key, None)
    return still


def page_details(events):
    """What the triggers point at: runbooks, API windows, ctl commands (in page order, once)."""
    runbooks, windows, commands = [], [], []
    for _, ev in events:
        if ev.get("event_action") != "trigger":
            continue
        for link in ev.get("links") or []:
            target = runbooks if link.get("text") == "Runbook" else windows
            if link.get("href") and link["href"] not in target:
                target.append(link["href"])
        for alert in ((ev.get("payload") or {}).get("custom_details") or {}).get("alerts", []):
            cmd = (alert.get("annotations") or {}).get("ctl_command")
            if cmd and cmd not in commands:
                commands.append(cmd)
    return runbooks, windows, commands


def dashboards(root):
    """[(file, title)] of the Grafana dashboards in deploy/grafana/dashboards."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "deploy", "grafana", "dashboards", "*.json"))):
        try:
            with open(path) as f:
                title = json.load(f).get("title", "")
        except (OSError, ValueError):
            title = ""
        out.append((os.path.relpath(path, root), title))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--api", action="append", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--story-start-ms", type=int, required=True)
    ap.add_argument("--sent", nargs="+", required=True)
    args = ap.parse_args()

    print()
    print_pipeline(args.api, predictions_sent(args.sent))
    events = pagerduty_events(args.log)
    print()
    print_events(events)
    still = open_incidents(events)
    for key, ev in still.items():
        print(f"  still open: {key[:12]}.. {(ev.get('payload') or {}).get('summary', '')}")
    if not still and events:
        print("  every incident paged was resolved")
    if still:
        print("  (an alert resolves on a clear window of its model version, or once the model's "
              "windows have gone on five minutes of event time without that version)")

    api = args.api[0]
    ctl = f"modelwatch-ctl --api {api}"
    runbooks, windows, commands = page_details(events)
    print()
    print("Where to look next:")
    print(f"  API      {api}/api/v1/models")
    print(f"           {api}/api/v1/models/churn/windows?resolution=60&from={args.story_start_ms}")
    print(f"           {api}/api/v1/alerts?state=all")
    for url in windows:
        print(f"           {url}   (the window a page points at)")
    print(f"  metrics  " + "  ".join(f"{a}/metrics" for a in args.api))
    print(f"  ctl      {ctl} models                  (modelwatch-ctl is {args.ctl})")
    print(f"           {ctl} windows churn --version v1 --resolution 60 "
          f"--from {args.story_start_ms}")
    print(f"           {ctl} drift churn --version v1 --resolution 60")
    print(f"           {ctl} alerts --state all")
    for cmd in commands:
        print(f"           {cmd}   (from a page)")
    print("  Grafana  point a Prometheus at both /metrics and load (deploy/grafana/README.md):")
    for path, title in dashboards(args.root):
        print(f"           {path}" + (f"   {title}" if title else ""))
    for url in runbooks:
        print(f"  runbook  {url}")
    print(f"  logs     {args.run_dir} (configs, every process's log, the receiver's requests in "
          f"{os.path.basename(args.log)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
