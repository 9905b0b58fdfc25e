#!/usr/bin/env python3
"""The example configs are the documentation: each must load, equal the built-in defaults,
and mention every key the binary accepts; a bad key must be refused naming file, line and key.

Usage: test_config_examples.py BUILD_ROOT SOURCE_ROOT
"""
import os
import re
import subprocess
import sys
import tempfile

build, source = sys.argv[1], sys.argv[2]
n = failed = 0


def check(cond, what, detail=""):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond:
        failed += 1
        for line in str(detail).splitlines():
            print(f"# {line}")


def keys_of(dump):
    """Dotted keys of the scalar entries of a YAML dump (two-space indentation)."""
    keys, stack = [], []
    for line in dump.splitlines():
        m = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(.*)$", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        keys.append(".".join(stack))
    return keys


for binary, example in (("agent/modelwatch-agent", "config/agent.example.yaml"),
                        ("aggregator/modelwatch-aggregator", "config/aggregator.example.yaml")):
    exe, path = os.path.join(build, binary), os.path.join(source, example)
    run = subprocess.run([exe, "--config", path, "--check-config"], capture_output=True,
                         text=True)
    check(run.returncode == 0, f"{example} passes --check-config", run.stderr)
    dump = subprocess.run([exe, "--config", path, "--dump-config"], capture_output=True,
                          text=True).stdout
    defaults = subprocess.run([exe, "--config", "/dev/null", "--dump-config"],
                              capture_output=True, text=True).stdout
    check(dump == defaults and dump, f"{example} holds exactly the defaults")
    text = open(path).read()
    missing = [k for k in keys_of(defaults) if not re.search(
        r"^\s*#?\s*" + re.escape(k.split(".")[-1]) + r":", text, re.M)]
    check(not missing, f"{example} documents every key", f"missing: {missing}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as bad:
        bad.write("log_level: info\nkafka:\n  topik: x\n")
    run = subprocess.run([exe, "--config", bad.name, "--check-config"], capture_output=True,
                         text=True)
    check(run.returncode == 2 and f"{bad.name}:3: kafka.topik: unknown key" in run.stderr,
          f"{binary}: an unknown key is refused with file:line: key", run.stderr)
    os.unlink(bad.name)

print(f"1..{n}")
sys.exit(1 if failed or n == 0 else 0)
