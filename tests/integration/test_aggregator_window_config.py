#!/usr/bin/env python3
"""Window settings that corrupt counts are refused at load, naming file, line and key.

Each bad file goes through `--check-config` (it must exit 2 with FILE:LINE: KEY) and the two
that corrupted counts at run time are also started for real: the aggregator must refuse to
start; if it does start, 1,000 events must still be counted exactly once (before the fix,
fine == coarse counted 2,000 and a 30 s fine window sent every batch to the dead-letter topic,
counting 0).
"""
import os
import subprocess
import time

from harness import TestFailure, api_data, free_port, http_get, metrics, run, wait_for

EVENTS = 1000

# name, windows text (line 2 of the file is the first line of it), line and key of the error,
# a phrase of the message, and whether to run it.
BAD = [
    ("fine equal to coarse", "windows:\n  fine: 1m\n  coarse: 1m\n", 4, "windows.coarse",
     "both 1m", True),
    ("fine equal to coarse, only fine set", "windows:\n  fine: 1h\n", 3, "windows.fine",
     "both 1h", False),
    ("fine not a multiple of the agents' counter buckets", "windows:\n  fine: 30s\n", 3,
     "windows.fine", "multiple of windows.counter_bucket", True),
    ("fine not whole seconds", "windows:\n  fine: 1500ms\n", 3, "windows.fine",
     "whole number of seconds", False),
    ("coarse not whole seconds", "windows:\n  coarse: 3600500ms\n", 3, "windows.coarse",
     "whole number of seconds", False),
    ("coarse not a multiple of fine", "windows:\n  fine: 2m\n  coarse: 3m\n", 4,
     "windows.coarse", "multiple of windows.fine", False),
    ("counter bucket not dividing fine", "windows:\n  counter_bucket: 40s\n", 3,
     "windows.counter_bucket", "multiple of windows.counter_bucket", False),
    ("dedup shorter than the coarse windows (the old default)",
     "windows:\n  dedup_retention: 7d\n", 3, "windows.dedup_retention",
     "must be at least 43270m", False),
    ("coarse retention outliving dedup",
     "windows:\n  coarse_retention: 60d\n", 3, "windows.coarse_retention",
     "must be at least 86470m", False),
]

GOOD = [
    ("the defaults", ""),
    ("10 s fine windows over 10 s agent buckets",
     "windows:\n  counter_bucket: 10s\n  fine: 10s\n  coarse: 10m\n"),
    ("dedup exactly as long as needed",
     "windows:\n  coarse_retention: 1h\n  fine_retention: 1m\n  dedup_retention: 130m\n"),
]


def check_config(cluster, text, name):
    path = cluster.write_config(name, "log_level: info\n" + text)
    out = subprocess.run([cluster.binary("aggregator/modelwatch-aggregator"), "--config", path,
                          "--check-config"], capture_output=True, text=True, timeout=30)
    return path, out


def start_or_refuse(cluster, name, windows):
    """Start an aggregator with `windows`; (None, log) when it exits, (proc, None) when up."""
    port = free_port()
    cfg = cluster.write_config(f"{name}.yaml", f"""
kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
consumer:
  group_id: {name}
redis:
  port: {cluster.redis_port}
http:
  port: {port}
{windows}""")
    proc = cluster.spawn(name, [cluster.binary("aggregator/modelwatch-aggregator"), "--config",
                                cfg])
    proc.http_port = port
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, proc.returncode, cluster.log_of(proc)
        try:
            if http_get(port, "/healthz", timeout=1)[0] == 200:
                return proc, None, None
        except OSError:
            pass
        time.sleep(0.1)
    raise TestFailure(f"{name} neither started nor exited")


def windows_counted(port, model, resolution, start_ms):
    try:
        doc = api_data(port, f"/api/v1/models/{model}/windows?resolution={resolution}"
                             f"&from={start_ms - 7200_000}&to={start_ms + 7200_000}")
    except TestFailure:  # a width that is not configured answers 400
        return None
    return sum(w["count"] for w in doc["windows"])


def main(tap, cluster):
    for i, (what, text, line, key, phrase, _) in enumerate(BAD):
        path, out = check_config(cluster, text, f"bad-{i}.yaml")
        tap.check(out.returncode == 2 and f"{path}:{line}: {key}: " in out.stderr
                  and out.stderr.count("\n") == 1
                  and phrase in out.stderr,
                  f"--check-config refuses {what} at {key} line {line}",
                  f"exit {out.returncode}: {out.stdout}{out.stderr}")
    for i, (what, text) in enumerate(GOOD):
        path, out = check_config(cluster, text, f"good-{i}.yaml")
        tap.check(out.returncode == 0, f"--check-config accepts {what}", out.stderr)

    cluster.start_redis()
    cluster.start_devkafka()
    agent = cluster.start_agent()
    start_ms = (int(time.time() * 1000) // 3600_000 - 1) * 3600_000
    for i, (what, text, line, key, phrase, live) in enumerate(BAD):
        if not live:
            continue
        name = f"agg-{i}"
        proc, rc, log = start_or_refuse(cluster, name, text)
        if proc is None:
            tap.check(rc == 2 and f".yaml:{line + 10}: {key}: " in log,
                      f"the aggregator refuses to start with {what}", f"exit {rc}: {log}")
            continue
        # It started: whatever it accepted must still count every event exactly once.
        model = f"m{i}"
        sent = cluster.loadgen(agent.endpoint, [f"{model}:v1"], EVENTS, windows=2,
                               start_ms=start_ms)
        port = proc.http_port
        try:
            wait_for(lambda: metrics(port)["modelwatch_aggregator_records_consumed_total"] > 0
                     and EVENTS in (windows_counted(port, model, 60, start_ms),
                                    windows_counted(port, model, 3600, start_ms)), 30,
                     f"{name} to count {EVENTS} events")
        except TestFailure:
            pass
        fine = windows_counted(port, model, 60, start_ms)
        if fine is None:  # 60 s is not a width it keeps: count its coarse windows
            fine = windows_counted(port, model, 3600, start_ms)
        m = metrics(port)
        dlq = sum(v for k, v in m.items() if k.startswith("modelwatch_aggregator_dlq_records"))
        tap.check(sent["sent"] == EVENTS and fine == EVENTS,
                  f"{what}: not refused, yet {EVENTS} sent must count {EVENTS}",
                  f"counted {fine}, dead-lettered records {dlq}")
        cluster.stop(proc)


if __name__ == "__main__":
    run(main)
