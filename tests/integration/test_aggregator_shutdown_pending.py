#!/usr/bin/env python3
"""Regression: SIGTERM with a Redis command still waiting for its reply used freed memory.

mw_store_destroy asked hiredis to disconnect and freed the store once its timer closed; with a
reply still pending, hiredis disconnects only when that reply arrives, and its disconnect
callback then wrote into the freed store. The alerting lease holder always has a command
pending at shutdown (it releases the lease), so every graceful stop of an aggregator that held
the lease did this. The aggregator runs here under valgrind (memcheck), takes the lease, and is
stopped with SIGTERM: valgrind must report no error.
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


def main(tap, cluster):
    valgrind = shutil.which("valgrind")
    if not valgrind:
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
    agg = cluster.spawn("aggregator", [valgrind, "--error-exitcode=9", f"--log-file={log}",
                                       cluster.binary("aggregator/modelwatch-aggregator"),
                                       "--config", cfg])
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60, "the aggregator under valgrind")
    wait_for(lambda: metrics(port).get("modelwatch_alerting_leader") == 1, 60, "the lease")
    code = cluster.stop(agg, sig=signal.SIGTERM, timeout_s=60)
    with open(log) as f:
        report = f.read()
    tap.check(code == 0 and "ERROR SUMMARY: 0 errors" in report,
              "SIGTERM with a Redis reply pending: no use of freed memory",
              "\n".join(report.splitlines()[-60:]))
    released = cluster.redis_cmd("EXISTS", "mw:{alert}:lease")
    tap.check(released == ":0", "the lease was released on the way out", released)


if __name__ == "__main__":
    run(main)
