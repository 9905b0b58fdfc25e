#!/usr/bin/env python3
"""`modelwatch-ctl rules check` on the ready-made rule sets and on broken rule files, with the
real binary.

  - every file of config/rules/ passes, alone and all together, and says how many rules and
    groups it holds (counted here from the YAML with PyYAML, not by the loader);
  - every rule has a summary and a runbook_url pointing at deploy/runbooks/<name>.md, and that
    runbook exists with its three sections (what it means, how to confirm, what to do);
  - the rule sets cover what the issue asks for: burn-rate pairs 14.4 over 1h/5m and 6 over
    6h/30m as pages, 3 over 1d/2h and 1 over 3d/6h as tickets; the model's drift verdict on 1h
    windows with a minimum sample; performance, cost per 1k, and pipeline health (absence,
    agent drops, spool, DLQ, late data, consumer lag);
  - each kind of mistake in a copy of a good file exits 1 with `FILE:LINE: KEY: reason` on
    stderr, where the line is found here by a marker in the text, and a good file checked in the
    same call still reports ok;
  - a missing file exits 1; no file is a usage error (2).

Run: /usr/bin/python3 test_rules_check.py BUILD_ROOT  (TAP on stdout).
"""
import os
import subprocess

import yaml

from harness import run

SOURCE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULES_DIR = os.path.join(SOURCE, "config", "rules")
RUNBOOKS = os.path.join(SOURCE, "deploy", "runbooks")
RULE_SETS = ["slo.yaml", "drift.yaml", "performance.yaml", "cost.yaml", "pipeline.yaml"]


def ctl(cluster, *args):
    return subprocess.run([cluster.binary("tools/modelwatch-ctl")] + list(args),
                          capture_output=True, text=True, timeout=60)


def all_rules(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    return [(g["name"], r) for g in doc["groups"] for r in g["rules"]]


# A good rule; each bad case replaces one line (marked) or adds one.
BASE = """groups:
  - name: g
    rules:
      - name: ErrorRateHigh
        signal: error_rate
        comparison: ">"
        threshold: 0.05
        for: 5m
        severity: critical
        annotations:
          summary: "{{ $labels.model }} fails {{ $value | percent }}"
"""

# (what, old line or None to append, new text with "#<" marking the line to be named, key,
#  reason)
BAD = [
    ("unknown key", "        for: 5m\n", "        fro: 5m #<\n",
     "groups[0].rules[0].fro", "unknown key"),
    ("unknown signal", "        signal: error_rate\n", "        signal: eror_rate #<\n",
     "groups[0].rules[0].signal", "unknown signal \"eror_rate\""),
    ("bad comparison", "        comparison: \">\"\n", "        comparison: \"=>\" #<\n",
     "groups[0].rules[0].comparison", "invalid value \"=>\""),
    ("bad threshold", "        threshold: 0.05\n", "        threshold: high #<\n",
     "groups[0].rules[0].threshold", "expected a finite number"),
    ("bad duration", "        for: 5m\n", "        for: five #<\n",
     "groups[0].rules[0].for", "invalid duration \"five\""),
    ("bad severity", "        severity: critical\n", "        severity: urgent #<\n",
     "groups[0].rules[0].severity", "invalid value \"urgent\""),
    ("resolve threshold on the wrong side", "        for: 5m\n",
     "        for: 5m\n        resolve_threshold: 0.07 #<\n",
     "groups[0].rules[0].resolve_threshold", "0.07 is on the wrong side of threshold 0.05"),
    ("unknown template variable", "          summary: \"{{ $labels.model }} fails {{ $value | percent }}\"\n",
     "          summary: \"{{ $labels.model }} fails {{ $vale }}\" #<\n",
     "groups[0].rules[0].annotations.summary", "unknown variable $vale"),
    ("feature on a model signal", "        for: 5m\n", "        for: 5m\n        feature: amount #<\n",
     "groups[0].rules[0].feature", "signal error_rate is not per feature"),
    ("burn rate without its short window", "        signal: error_rate\n        comparison: \">\"\n        threshold: 0.05\n",
     "        signal: burn_rate\n        comparison: \">\"\n        long_window: 1h\n        factor: 14.4\n",
     "groups[0].rules[0].short_window", "required key missing (signal burn_rate)"),
    ("duplicate rule name", None,
     "      - name: ErrorRateHigh #<\n        signal: error_rate\n        comparison: \">\"\n"
     "        threshold: 0.1\n        severity: info\n        annotations: {summary: again}\n",
     "groups[0].rules[1].name", "rule \"ErrorRateHigh\" is already defined on line 4"),
    ("reserved label", "        for: 5m\n", "        for: 5m\n        labels:\n          severity: low #<\n",
     "groups[0].rules[0].labels.severity", "the rule sets this label itself"),
    ("not YAML", "        for: 5m\n", "        for: [5m #<\n", None, None),
]


def main(tap, cluster):
    # Every ready-made set passes, alone and together.
    expected_counts = {}
    for name in RULE_SETS:
        path = os.path.join(RULES_DIR, name)
        rules = all_rules(path)
        with open(path) as f:
            n_groups = len(yaml.safe_load(f)["groups"])
        expected_counts[path] = (len(rules), n_groups)
        r = ctl(cluster, "rules", "check", path)
        want = f"{path}: ok, {len(rules)} rule{'s' if len(rules) != 1 else ''} in {n_groups} group"
        tap.check(r.returncode == 0 and r.stdout.startswith(want) and not r.stderr,
                  f"{name} passes rules check ({len(rules)} rules)", r.stdout + r.stderr)
    paths = [os.path.join(RULES_DIR, n) for n in RULE_SETS]
    r = ctl(cluster, "rules", "check", *paths)
    tap.check(r.returncode == 0 and len(r.stdout.splitlines()) == len(paths),
              "all rule sets pass in one call", r.stdout + r.stderr)
    present = sorted(n for n in os.listdir(RULES_DIR) if n.endswith(".yaml"))
    tap.check(present == sorted(RULE_SETS), "config/rules holds exactly the five rule sets",
              present)

    # Runbooks: every rule links one that exists and says what to do.
    problems = []
    for name in RULE_SETS:
        for group, rule in all_rules(os.path.join(RULES_DIR, name)):
            ann = rule.get("annotations", {})
            url = ann.get("runbook_url", "")
            if not ann.get("summary"):
                problems.append(f"{rule['name']}: no summary")
            prefix = "{{ $runbook_base }}/deploy/runbooks/"
            if not url.startswith(prefix) or not url.endswith(".md"):
                problems.append(f"{rule['name']}: runbook_url {url!r}")
                continue
            doc = os.path.join(RUNBOOKS, url[len(prefix):])
            if not os.path.isfile(doc):
                problems.append(f"{rule['name']}: {doc} missing")
                continue
            text = open(doc).read()
            for section in ("## What it means", "## Confirm", "## What to do"):
                if section not in text:
                    problems.append(f"{doc}: no '{section}'")
            if rule["name"] not in text.splitlines()[0]:
                problems.append(f"{doc}: title does not name {rule['name']}")
            if "modelwatch-ctl " not in text.split("## Confirm")[-1].split("## What to do")[0]:
                problems.append(f"{doc}: no modelwatch-ctl command to confirm with")
    tap.check(not problems, "every rule links an existing runbook with its three sections",
              "\n".join(problems))

    # Coverage of what the rule sets must hold.
    rules = {r["name"]: r for n in RULE_SETS for _, r in all_rules(os.path.join(RULES_DIR, n))}
    burns = sorted((r["long_window"], r["short_window"], r["factor"], r["labels"]["action"],
                    r["severity"]) for r in rules.values() if r["signal"] == "burn_rate")
    tap.check(burns == sorted([("1h", "5m", 14.4, "page", "critical"),
                               ("6h", "30m", 6, "page", "critical"),
                               ("1d", "2h", 3, "ticket", "warning"),
                               ("3d", "6h", 1, "ticket", "warning")]),
              "burn-rate pairs: page at 14.4 (1h/5m) and 6 (6h/30m), ticket at 3 and 1", burns)
    verdict = [r for r in rules.values() if r["signal"] == "drift_verdict" and "feature" not in r]
    tap.check(len(verdict) == 1 and verdict[0]["resolution"] == "1h"
              and verdict[0].get("min_samples", 0) > 0,
              "the model's drift verdict on 1h windows with a minimum sample", verdict)
    signals = {r["signal"] for r in rules.values()}
    needed = {"accuracy", "label_coverage", "cost_per_1k", "absence", "agent_drops", "spool_use",
              "dlq_rate", "late_rate", "consumer_lag", "latency_p99", "psi", "missing_rate"}
    tap.check(needed <= signals, "performance, cost and pipeline health are covered",
              sorted(needed - signals))

    # Broken files: exit 1 with FILE:LINE: KEY: reason, the line found by its marker.
    good = os.path.join(cluster.dir, "good.yaml")
    with open(good, "w") as f:
        f.write(BASE)
    r = ctl(cluster, "rules", "check", good)
    tap.check(r.returncode == 0, "the base of the broken files is itself good", r.stderr)
    for i, (what, old, new, key, reason) in enumerate(BAD):
        text = BASE.replace(old, new) if old else BASE + new
        assert text != BASE
        path = os.path.join(cluster.dir, f"bad{i}.yaml")
        with open(path, "w") as f:
            f.write(text)
        # The marked line; a missing key is named at its rule (line 4).
        line = next((n for n, l in enumerate(text.splitlines(), 1) if "#<" in l), 4)
        r = ctl(cluster, "rules", "check", good, path)
        if key:
            want = f"modelwatch-ctl: {path}:{line}: {key}: {reason}"
        else:
            want = f"modelwatch-ctl: {path}:"
        ok = (r.returncode == 1 and r.stderr.startswith(want)
              and len(r.stderr.splitlines()) == 1 and r.stdout.startswith(f"{good}: ok"))
        tap.check(ok, f"{what}: exit 1 naming {os.path.basename(path)}"
                  + (f":{line} and {key}" if key else ""),
                  f"want: {want}\ngot:  {r.stderr}rc={r.returncode}")

    r = ctl(cluster, "rules", "check", os.path.join(cluster.dir, "absent.yaml"))
    tap.check(r.returncode == 1 and "cannot open" in r.stderr, "a missing file exits 1",
              r.stderr)
    r = ctl(cluster, "rules", "check")
    tap.check(r.returncode == 2 and "rules check takes one or more arguments" in r.stderr,
              "no file is a usage error", r.stderr)
    r = ctl(cluster, "rules", "lint", good)
    tap.check(r.returncode == 2 and "rules takes check" in r.stderr,
              "an unknown rules subcommand is a usage error", r.stderr)


run(main)
