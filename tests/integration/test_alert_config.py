#!/usr/bin/env python3
"""The aggregator's alerting configuration under `--check-config`, with the real binary.

  - every ready-made rule set of config/rules/, a routing tree with children, inhibition rules
    and a PagerDuty and a webhook receiver pass together;
  - relative `rule_files` globs are read from the config file's directory, wherever the
    aggregator runs;
  - each kind of mistake exits 2 with `FILE:LINE: KEY: reason`: a glob that matches nothing, a
    broken rule (the rule file's line), a route naming an unknown receiver, a receiver whose key
    file is missing, a malformed matcher, an inhibition rule without targets; the line is found
    here by a marker in the text, not taken from the binary.
"""
import os
import shutil
import subprocess

from harness import run

SOURCE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULES_DIR = os.path.join(SOURCE, "config", "rules")

GOOD = """rule_files:
  - "rules/*.yaml"
route:
  receiver: pd
  group_by: [alertname, model, version]
  group_wait: 10s
  routes:
    - matchers: ['severity=~"warning|info"']  #<route
      receiver: hook  #<recv
inhibit_rules:
  - source_matchers: ['alertname="ModelAbsent"']
    target_matchers: ['signal=~"drift_verdict|psi"']  #<inhibit
    equal: [model]
receivers:
  - name: pd
    type: pagerduty
    routing_key_file: KEYFILE  #<key
  - name: hook
    type: webhook
    url: http://127.0.0.1:9/hook
alerting:
  runbook_base_url: https://runbooks.example
"""

# (what, old text, new text, key expected in the message, reason fragment, file with the error)
BAD = [
    ("a glob matching no file", '"rules/*.yaml"', '"rules/*.yml"', None, "no rule file matches",
     None),
    ("a glob in a directory that does not exist", '"rules/*.yaml"', '"nope/*.yaml"', None,
     "no rule file matches", None),
    ("a route to an unknown receiver", "receiver: hook", "receiver: hooky",
     "route.routes[0].receiver", 'no receiver named "hooky"', "recv"),
    ("a malformed matcher", """'severity=~"warning|info"'""", """'severity=~"(warning"'""",
     "route.routes[0].matchers[0]", "", "route"),
    ("a missing routing key file", "KEYFILE", "/nonexistent/pd.key",
     "receivers[0].routing_key_file", "cannot read", "key"),
    ("an inhibition rule without targets", """target_matchers: ['signal=~"drift_verdict|psi"']""",
     "target_matchers: []", "inhibit_rules[0]", "target", "inhibit"),
]


def check(cluster, path):
    return subprocess.run([cluster.binary("aggregator/modelwatch-aggregator"), "--config", path,
                           "--check-config"], capture_output=True, text=True, timeout=60,
                          cwd="/")


def line_of(text, marker):
    for i, line in enumerate(text.splitlines(), 1):
        if f"#<{marker}" in line:
            return i
    raise AssertionError(marker)


def main(tap, cluster):
    conf_dir = os.path.join(cluster.dir, "etc")
    os.makedirs(conf_dir)
    shutil.copytree(RULES_DIR, os.path.join(conf_dir, "rules"),
                    ignore=shutil.ignore_patterns("*.md"))
    key = os.path.join(conf_dir, "pd.key")
    with open(key, "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    good = GOOD.replace("KEYFILE", key)
    path = os.path.join(conf_dir, "aggregator.yaml")
    with open(path, "w") as f:
        f.write(good)
    out = check(cluster, path)
    tap.check(out.returncode == 0 and "ok" in out.stdout,
              "every ready-made rule set, routes, inhibition and receivers pass --check-config "
              "(relative rule_files from the config's directory)", out.stderr)

    for what, old, new, key_name, reason, marker in BAD:
        text = GOOD.replace(old, new).replace("KEYFILE", key)
        bad = os.path.join(conf_dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write(text)
        out = check(cluster, bad)
        if key_name:
            want = f"{bad}:{line_of(text, marker)}: {key_name}"
        else:
            want = reason
        tap.check(out.returncode == 2 and want in out.stderr and reason in out.stderr,
                  f"{what}: exit 2 with {want!r}", out.stderr)

    # A rule file's own mistake names the rule file, its line and key.
    rules = os.path.join(conf_dir, "rules", "cost.yaml")
    with open(rules) as f:
        text = f.read()
    text = text.replace("threshold: 0.50 ", "threshold: 0.40 ")
    with open(rules, "w") as f:
        f.write(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "resolve_threshold" in l)
    out = check(cluster, path)
    want = f"{rules}:{line}: groups[0].rules[0].resolve_threshold"
    tap.check(out.returncode == 2 and want in out.stderr,
              "a broken rule in a rule file: FILE:LINE: KEY of the rule file", out.stderr)


if __name__ == "__main__":
    run(main)
