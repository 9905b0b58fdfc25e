#!/usr/bin/env python3
"""Regression: SIGTERM with a Redis command still waiting for its reply used freed memory.

mw_store_destroy asked hiredis to disconnect and freed the store once its timer closed; with a
reply still pending, hiredis disconnects only when that reply arrives, and its disconnect
callback then wrote into the freed store. The alerting lease holder always has a command
pending at shutdown (it releases the lease), so every graceful stop of an aggregator that held
the lease did this. The aggregator runs here under valgrind (memcheck), takes the lease, and is
stopped with SIGTERM: valgrind must report no error. A sanitizer build cannot run under
valgrind; AddressSanitizer watches the same stop there and must report nothing.
"""
import os
import shutil
import signal
import subprocess

import alert_env as env
from harness import TestFailure, free_port, http_get, metrics, run, wait_for

RULES = """groups:
  - name: g
    rules:
      - name: ErrorRateHigh
        signal: error_rate
        comparison: ">"
        threshold: 0.5
        severity: critical
        annotations: {summary: x}
"""


def built_with_asan(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    return "libasan" in out.stdout


def main(tap, cluster):
    binary = cluster.binary("aggregator/modelwatch-aggregator")
    asan = built_with_asan(binary)
    valgrind = shutil.which("valgrind")
    if not valgrind and not asan:
        raise TestFailure("valgrind is not installed (this regression test needs memcheck)")
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    port = free_port()
    cfg = cluster.write_config("aggregator.yaml", f"""
kafka:
  bootstrap_file: {cluster.bootstrap_file}
redis:
  port: {cluster.redis_port}
http:
  port: {port}
{env.aggregator_config(cluster, receiver, RULES, lease_ttl="2s")}""")
    log = os.path.join(cluster.dir, "valgrind.txt")
    memcheck = [] if asan else [valgrind, "--error-exitcode=9", f"--log-file={log}"]
    agg = cluster.spawn("aggregator", memcheck + [binary, "--config", cfg])
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60, "the aggregator under valgrind")
    wait_for(lambda: metrics(port).get("modelwatch_alerting_leader") == 1, 60, "the lease")
    code = cluster.stop(agg, sig=signal.SIGTERM, timeout_s=60)
    if asan:
        report = "\n\n".join(text for _, text in cluster.sanitizer_reports())
        clean = not report
    else:
        with open(log) as f:
            report = f.read()
        clean = "ERROR SUMMARY: 0 errors" in report
    tap.check(code == 0 and clean, "SIGTERM with a Redis reply pending: no use of freed memory",
              "\n".join(report.splitlines()[-60:]))
    released = cluster.redis_cmd("EXISTS", "mw:{alert}:lease")
    tap.check(released == ":0", "the lease was released on the way out", released)


if __name__ == "__main__":
    run(main)
