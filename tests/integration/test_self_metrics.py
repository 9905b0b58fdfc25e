#!/usr/bin/env python3
"""What the binaries say about themselves on /metrics, checked against what the test sees:

  - process_* (client_golang's names) and modelwatch_build_info on the agent and the
    aggregator: the version `--version` prints, a start time between the test's spawn and the
    first answer of /healthz, the open-files limit the test handed down, resident and virtual
    memory against /proc/PID/status, CPU time within the wall time elapsed;
  - the agent's spool age while every Kafka broker is down: between the time since the last
    event was sent (plus a seal interval) and the time since the first, and 0 once delivered;
  - the aggregator's apply latency histogram: one observation per applied batch, cumulative
    buckets ending in +Inf = _count, and the batch Redis's pause held up above 2.5 s;
  - the aggregator's consumer lag per partition while Redis refuses writes (CLIENT PAUSE
    WRITE): records not consumed plus records consumed make the topic's end offsets, and the
    lag drains to 0 once Redis takes writes again;
  - promtool check metrics on both expositions.
"""
import os
import re
import resource
import shutil
import subprocess
import time

from harness import TestFailure, free_port, http_get, metrics, run, wait_for
from resp import Redis

MODEL = "selfwatch:v1"
PAUSE_MS = 8000


def version_of(exe):
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.split()[-1]


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise TestFailure(f"/proc/{pid}/status has no {field}")


def check_process(tap, name, proc, port, program, exe, spawned_at, ready_at):
    m = metrics(port)
    version = version_of(exe)
    info = f'modelwatch_build_info{{version="{version}",program="{program}"}}'
    tap.check(m.get(info) == 1, f"{name}: {info} 1",
              str({k: v for k, v in m.items() if k.startswith("modelwatch_build_info")}))
    start = m.get("process_start_time_seconds", -1)
    tap.check(spawned_at - 1 <= start <= ready_at + 1,
              f"{name}: process_start_time_seconds is between its spawn and its first /healthz",
              f"{spawned_at} <= {start} <= {ready_at}")
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    tap.check(m.get("process_max_fds") == soft and 0 < m.get("process_open_fds", 0) < soft,
              f"{name}: process_max_fds is the open-files limit it inherited ({soft}), and "
              "process_open_fds is below it",
              f"max {m.get('process_max_fds')} open {m.get('process_open_fds')}")
    rss = proc_status_kib(proc.pid, "VmRSS") * 1024
    vsz = proc_status_kib(proc.pid, "VmSize") * 1024
    tap.check(0.5 * rss <= m.get("process_resident_memory_bytes", 0) <= 2 * rss and
              0.9 * vsz <= m.get("process_virtual_memory_bytes", 0) <= 1.1 * vsz,
              f"{name}: resident and virtual memory agree with /proc/PID/status",
              f"rss {m.get('process_resident_memory_bytes')} vs {rss}, "
              f"vsz {m.get('process_virtual_memory_bytes')} vs {vsz}")
    elapsed = time.time() - spawned_at
    cpu = m.get("process_cpu_seconds_total", -1)
    tap.check(0 <= cpu <= elapsed * os.cpu_count(),
              f"{name}: process_cpu_seconds_total is within the wall time elapsed",
              f"{cpu} s over {elapsed:.1f} s")


def start_timed(start):
    spawned_at = time.time()
    proc = start()
    return proc, spawned_at, time.time()


def check_spool_age(tap, cluster, agent):
    tap.check(metrics(agent.http_port)["modelwatch_agent_spool_oldest_age_seconds"] == 0,
              "spool age is 0 while Kafka takes every batch")
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    sent_from = time.time()
    cluster.loadgen(agent.endpoint, [MODEL], 300)
    sent_to = time.time()
    time.sleep(4)
    before = time.time()
    m = metrics(agent.http_port)
    after = time.time()
    age = m["modelwatch_agent_spool_oldest_age_seconds"]
    seal = 1.5  # batch.max_age 1 s, and the seal timer's tick
    tap.check(m["modelwatch_agent_spool_batches"] > 0 and
              before - sent_to - seal - 0.2 <= age <= after - sent_from + 0.2,
              "spool age is the age of the oldest batch waiting for Kafka",
              f"{before - sent_to - seal:.2f} <= {age} <= {after - sent_from:.2f}, "
              f"batches {m['modelwatch_agent_spool_batches']}")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_spool_batches"] == 0, 60,
             "the spool to drain")
    tap.check(metrics(agent.http_port)["modelwatch_agent_spool_oldest_age_seconds"] == 0,
              "spool age is 0 again once every batch is delivered")


def lag_series(m):
    return {k: v for k, v in m.items() if k.startswith("modelwatch_aggregator_consumer_lag_records{")}


def check_apply_histogram(tap, m):
    name = "modelwatch_aggregator_apply_latency_seconds"
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v)
                      for k, v in m.items() if k.startswith(name + "_bucket{")))
    counts = [v for _, v in buckets]
    applied = m["modelwatch_aggregator_batches_applied_total"]
    slow = applied - dict(buckets).get(2.5, applied)
    tap.check(slow >= 1, "the batch held up by Redis's pause is observed above 2.5 s",
              f"{slow} observations above 2.5 s; buckets {buckets}")
    tap.check(applied > 0 and m.get(name + "_count") == applied and
              buckets and buckets[-1][0] == float("inf") and counts[-1] == applied and
              counts == sorted(counts) and m.get(name + "_sum", 0) > 0,
              "apply latency: one observation per applied batch, cumulative buckets, +Inf = "
              "_count", f"applied {applied} count {m.get(name + '_count')} buckets {buckets}")


def check_lag(tap, cluster, agg, agent):
    def settled():
        m = metrics(agg.http_port)
        return (m["modelwatch_aggregator_records_consumed_total"] ==
                cluster.topic_end_offsets("modelwatch.telemetry") and
                sum(lag_series(m).values()) == 0 and lag_series(m))
    wait_for(settled, 60, "the aggregator to consume everything")
    with Redis(cluster.redis_port) as r:
        r("CLIENT", "PAUSE", str(PAUSE_MS), "WRITE")
    paused_at = time.monotonic()
    cluster.loadgen(agent.endpoint, [MODEL], 2000, extra=["--rate", "1000"])
    end = cluster.topic_end_offsets("modelwatch.telemetry")
    seen = {}

    def behind():
        m = metrics(agg.http_port)
        lag = sum(lag_series(m).values())
        seen.update(lag=lag, consumed=m["modelwatch_aggregator_records_consumed_total"],
                    series=lag_series(m))
        return lag > 0 and lag + seen["consumed"] == end
    try:
        wait_for(behind, max(1, PAUSE_MS / 1000 - (time.monotonic() - paused_at) - 0.5),
                 "lag while Redis refuses writes")
        ok = True
    except TestFailure:
        ok = False
    tap.check(ok, "while Redis refuses writes, lag per partition plus records consumed make "
              "the topic's end offsets", f"{seen} end {end}")
    tap.check(set(re.search(r'partition="(\d+)"', k).group(1) for k in seen.get("series", {}))
              <= {"0", "1", "2", "3"}, "lag is labelled by the topic's partitions",
              str(seen.get("series")))
    try:
        wait_for(settled, 60, "the lag to drain once Redis takes writes")
        drained = True
    except TestFailure:
        drained = False
    tap.check(drained, "the lag drains to 0 on every partition once Redis takes writes",
              str(lag_series(metrics(agg.http_port))))


def promtool_check(tap, name, port):
    exe = shutil.which("promtool")
    if not exe:
        raise TestFailure("promtool is not installed (deploy/local/install-deps.sh --test)")
    text = http_get(port, "/metrics")[1]
    out = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True)
    tap.check(out.returncode == 0, f"{name} /metrics passes promtool check metrics",
              out.stdout.decode() + out.stderr.decode())


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    # check_spool_age keeps every broker down for several seconds (longer in a sanitizer
    # build); past the harness's 6 s session timeout the group would rebalance and consume
    # records again, and records_consumed_total is compared with the topic's end offsets.
    agg, agg_spawned, agg_ready = start_timed(lambda: cluster.start_aggregator(
        kafka_properties={"session.timeout.ms": "30000"}))
    agent, agent_spawned, agent_ready = start_timed(cluster.start_agent)
    cluster.loadgen(agent.endpoint, [MODEL], 1000)
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_batches_applied_total"] > 0,
             60, "a batch applied")

    check_process(tap, "aggregator", agg, agg.http_port, "modelwatch-aggregator",
                  cluster.binary("aggregator/modelwatch-aggregator"), agg_spawned, agg_ready)
    check_process(tap, "agent", agent, agent.http_port, "modelwatch-agent",
                  cluster.binary("agent/modelwatch-agent"), agent_spawned, agent_ready)
    check_spool_age(tap, cluster, agent)
    check_lag(tap, cluster, agg, agent)
    check_apply_histogram(tap, metrics(agg.http_port))
    promtool_check(tap, "aggregator", agg.http_port)
    promtool_check(tap, "agent", agent.http_port)
    for proc in (agent, agg):
        tap.check(cluster.stop(proc) == 0, f"{proc.mw_name} exits 0")


if __name__ == "__main__":
    run(main)
