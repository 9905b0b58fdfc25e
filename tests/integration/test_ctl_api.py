#!/usr/bin/env python3
"""modelwatch-ctl against a real aggregator: its command line and its output formats.

  - --version prints the project's version; --help lists every command, slo among them; each
    command's --help gives its usage and its own options;
  - -o json prints exactly the API's data (harness.api_data of the same request) for models,
    windows, slo, drift, profile show, alerts and silence list; -o table is the default and
    -o wide adds columns;
  - --since/--until take RFC 3339, Unix seconds, Unix ms and durations before now (2h), and
    each gives the same windows as the same time in ms; --at and --window likewise;
  - a bad format, a bad time or an option a command does not take is a usage error (exit 2);
    an API error is exit 1 with the API's status, errorType and message.
"""
import json
import os
import re
import subprocess
import time

import alert_env as env
from harness import api_data, run, wait_for

PER_WINDOW = 100
WINDOWS = 5
RULES = """groups:
  - name: ctl
    rules:
      - name: LatencyP99High
        signal: latency_p99
        resolution: 1m
        comparison: ">"
        threshold: 5
        for: 2m
        severity: critical
        annotations:
          summary: "{{ $labels.model }} p99 latency {{ $value }} s"
"""


class Ctl:
    def __init__(self, cluster, port):
        self.exe = cluster.binary("tools/modelwatch-ctl")
        self.api = f"http://127.0.0.1:{port}"

    def __call__(self, *args, api=True):
        argv = [self.exe] + (["--api", self.api] if api else []) + [str(a) for a in args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def json(self, *args):
        p = self(*args, "-o", "json")
        if p.returncode != 0:
            raise AssertionError(f"modelwatch-ctl {args} failed: {p.stderr}")
        return json.loads(p.stdout)


def project_version():
    with open(os.path.join(env.SOURCE, "meson.build")) as f:
        return re.search(r"version: '([^']+)'", f.read()).group(1)


def check_help(tap, ctl):
    p = ctl("--version", api=False)
    tap.check(p.returncode == 0 and p.stdout == f"modelwatch-ctl {project_version()}\n",
              "--version prints the project's version", p.stdout + p.stderr)
    p = ctl("--help", api=False)
    commands = ["models", "windows", "slo", "drift", "profile build", "profile push",
                "profile show", "rules check", "alerts", "silence add", "silence list",
                "silence expire"]
    tap.check(p.returncode == 0 and all(f"\n  {c} " in p.stdout for c in commands),
              "--help lists every command", p.stdout)
    own = {"windows": ["--since", "--until", "--resolution", "-o, --output"],
           "slo": ["--at", "--version", "-o, --output"],
           "drift": ["--window", "--resolution"], "alerts": ["--state"],
           "silence add": ["--duration", "--token-file"], "profile build": ["--bins", "-o FILE"],
           "models": ["-o, --output"]}
    for cmd, options in own.items():
        p = ctl(*cmd.split(), "--help", api=False)
        tap.check(p.returncode == 0 and p.stdout.startswith(f"usage: modelwatch-ctl {cmd} ") and
                  all(o in p.stdout for o in options),
                  f"`{cmd} --help` gives its usage and options", p.stdout + p.stderr)
    p = ctl("models", "--help", api=False)
    tap.check("--since" not in p.stdout, "`models --help` names no option it does not take",
              p.stdout)


def check_windows(tap, ctl, port, t0):
    first, last = t0, t0 + (WINDOWS - 1) * env.MINUTE
    api = api_data(port, f"/api/v1/models/churn/windows?limit=10000&from={first}&to={last}")
    tap.check(len(api["windows"]) == WINDOWS and
              sum(w["count"] for w in api["windows"]) == WINDOWS * PER_WINDOW,
              f"the API has the {WINDOWS} windows sent", len(api["windows"]))
    by_ms = ctl.json("windows", "churn", "--since", first, "--until", last)
    tap.check(by_ms == api, "windows -o json prints the API's data", json.dumps(by_ms)[:300])
    rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first // 1000))
    for form, since, until in (("RFC 3339", rfc, last), ("Unix seconds", first // 1000,
                                                          f"{last / 1000:.3f}"),
                               ("--from/--to", None, None)):
        if since is None:
            got = ctl.json("windows", "churn", "--from", first, "--to", last)
        else:
            got = ctl.json("windows", "churn", "--since", since, "--until", until)
        tap.check(got == api, f"--since/--until as {form}: the same windows", form)
    hours = (int(time.time() * 1000) - t0) // env.HOUR + 1
    rel = ctl.json("windows", "churn", "--since", f"{hours}h")
    tap.check([w["start_ms"] for w in rel["windows"]] == [w["start_ms"] for w in api["windows"]],
              f"--since {hours}h: every window of the last {hours} hours", rel["windows"][:1])
    recent = ctl.json("windows", "churn", "--since", "30m")
    tap.check(recent["windows"] == [], "--since 30m: none (the traffic is hours old)", recent)
    p = ctl("windows", "churn", "--since", first, "--until", last)
    rows = [line for line in p.stdout.splitlines()[2:] if line.strip()]
    tap.check(p.returncode == 0 and len(rows) == WINDOWS and
              all(len(r.split()) == 10 for r in rows),
              "windows table: one row of 10 cells per window", p.stdout)
    p = ctl("windows", "churn", "--since", first, "--until", last, "-o", "wide")
    header = p.stdout.splitlines()[1]
    rows = [line for line in p.stdout.splitlines()[2:] if line.strip()]
    tap.check(p.returncode == 0 and "P95_US" in header and "COST/1K" in header and
              [r.split()[-1] for r in rows] == ["final" if w["final"] else "open"
                                                for w in api["windows"]] and
              all(len(r.split()) == 17 for r in rows),
              "windows -o wide: 7 more cells, the last saying final or open as the API does",
              p.stdout)


def check_slo(tap, ctl, port, t0):
    at = t0 + WINDOWS * env.MINUTE
    api = api_data(port, f"/api/v1/models/churn/slo?at={at}")
    got = ctl.json("slo", "churn", "--at", at)
    tap.check(got == api and api["error_rate"]["5m"] == 0, "slo -o json prints the API's data",
              json.dumps(got)[:300])
    rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at // 1000))
    tap.check(ctl.json("slo", "churn", "--at", rfc) == api, "slo --at RFC 3339: the same")
    p = ctl("slo", "churn", "--at", at)
    lines = p.stdout.splitlines()
    tap.check(p.returncode == 0 and lines[1].split()[:2] == ["LONG", "SHORT"] and
              [line.split()[:2] for line in lines[2:]] ==
              [["1h", "5m"], ["6h", "30m"], ["1d", "2h"], ["3d", "6h"]] and
              all(line.split()[-1] == "no" for line in lines[2:]),
              "slo table: the four burn-rate pairs, none burning", p.stdout)
    p = ctl("slo", "churn", "--at", at, "-o", "wide")
    lookbacks = [line.split() for line in p.stdout.splitlines() if
                 re.match(r"^(5m|30m|1h|2h|6h|1d|3d) ", line)]
    tap.check(p.returncode == 0 and [x[0] for x in lookbacks[:7]] ==
              ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] and lookbacks[0][1] == "0.0000%",
              "slo -o wide: the error rate of every lookback first", p.stdout)
    p = ctl("slo", "churn", "--at", "2h")
    tap.check(p.returncode == 0 and "slo of churn" in p.stdout, "slo --at 2h (relative)",
              p.stderr)


def check_other_listings(tap, ctl, port, t0):
    models = ctl.json("models")
    tap.check(models == api_data(port, "/api/v1/models") == {"models": ["churn"]},
              "models -o json prints the API's data", models)
    p = ctl("models")
    tap.check(p.returncode == 0 and p.stdout == "MODEL\nchurn\n", "models table", p.stdout)
    p = ctl("models", "-o", "wide")
    tap.check(p.returncode == 0 and p.stdout.splitlines()[1].split() == ["churn", "v1"],
              "models -o wide: each model's profile versions", p.stdout)
    drift = ctl.json("drift", "churn", "--version", "v1", "--window", t0, "--resolution", 3600)
    tap.check(drift == api_data(port, f"/api/v1/models/churn/drift?version=v1&window={t0}"
                                      "&resolution=3600"), "drift -o json prints the API's data")
    p = ctl("drift", "churn", "--version", "v1", "--window",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 // 1000)), "--resolution", 3600,
            "-o", "wide")
    rows = [line.split() for line in p.stdout.splitlines() if re.match(r"^f\d ", line)]
    tap.check(p.returncode == 0 and "BASIS" in p.stdout and len(rows) == 10 and
              all(len(r) == 17 for r in rows),
              "drift -o wide (--window as RFC 3339): 5 more cells per feature", p.stdout)
    shown = ctl.json("profile", "show", "churn", "--version", "v1")
    tap.check(shown == api_data(port, "/api/v1/models/churn/profiles/v1"),
              "profile show -o json prints the API's data")
    alerts = ctl.json("alerts", "--state", "all")
    tap.check(alerts == api_data(port, "/api/v1/alerts?state=all"),
              "alerts -o json prints the API's data", alerts)
    p = ctl("silence", "add", 'model="churn"', "--duration", "2h", "--comment", "ctl test",
            "--token-file", ctl.token_file)
    silence_id = p.stdout.strip()
    silences = ctl.json("silence", "list")
    tap.check(silences == api_data(port, "/api/v1/silences") and
              [s["id"] for s in silences["silences"]] == [silence_id],
              "silence list -o json prints the API's data", silences)
    p = ctl("silence", "list", "-o", "wide")
    tap.check(p.returncode == 0 and "FOR" in p.stdout.splitlines()[0] and
              "  2h00m  " in p.stdout.splitlines()[1], "silence list -o wide: how long",
              p.stdout)


def check_errors(tap, ctl):
    for args, why in ((["models", "-o", "xml"], "-o xml"),
                      (["windows", "churn", "--since", "yesterday"], "a time that is none"),
                      (["windows", "churn", "--since", "1h", "--until", "2h"], "since > until"),
                      (["slo", "churn", "--since", "1h"], "an option slo does not take"),
                      (["profile", "push", "x.json", "-o", "json"], "-o on profile push"),
                      (["windows"], "a missing argument")):
        p = ctl(*args)
        tap.check(p.returncode == 2 and p.stderr, f"usage error: {why}", p.stdout + p.stderr)
    p = ctl("windows", "nosuch")
    tap.check(p.returncode == 1 and "HTTP 404 not_found: model: unknown" in p.stderr,
              "an unknown model: exit 1 with the API's 404 not_found and message", p.stderr)


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(cluster, receiver, RULES))
    agent = cluster.start_agent(extra=env.agent_config())
    ctl = Ctl(cluster, agg.http_port)
    ctl.token_file = cluster.write_config("ctl.token", env.TOKEN + "\n")
    check_help(tap, ctl)
    t0 = env.base_time()
    env.push_profiles(agg.http_port, "churn", ["v1"])
    env.send(cluster, agent, ["churn:v1"], t0, WINDOWS, PER_WINDOW)
    wait_for(lambda: sum(w["count"] for w in api_data(
        agg.http_port, f"/api/v1/models/churn/windows?from={t0}")["windows"])
        == WINDOWS * PER_WINDOW, 60, "every request applied")
    check_windows(tap, ctl, agg.http_port, t0)
    check_slo(tap, ctl, agg.http_port, t0)
    check_other_listings(tap, ctl, agg.http_port, t0)
    check_errors(tap, ctl)


if __name__ == "__main__":
    run(main)
