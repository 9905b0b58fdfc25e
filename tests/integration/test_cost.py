#!/usr/bin/env python3
"""Cost per 1k predictions from the pod's cgroup and its requests.

The agent reads a cgroup v2 directory the test controls (cpu.stat, memory.current) and knows
the pod's requests (2 cores, 2 GiB). Used CPU stays under the request, so every interval bills
the request: billed core-seconds = 2 x pod-seconds and billed GiB-seconds = 2 x pod-seconds
while 1 GiB is used; the idle share is 1 - used / requested; the window's cost is the sum of
each billed quantity times its price, and cost per 1k = 1000 x cost / predictions. Sums of
floating-point increments, hence a 1e-9 relative tolerance.
"""
import json
import os
import time

from harness import api_data, metrics, run, wait_for

PRICES = {"cpu_core_hour": 3.6, "memory_gib_hour": 0.36, "pod_hour": 36.0}


def close(a, b):
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)


def main(tap, cluster):
    cgroup = os.path.join(cluster.dir, "cgroup")
    os.makedirs(cgroup)

    def write_cgroup(usage_usec):
        with open(os.path.join(cgroup, "cpu.stat"), "w") as f:
            f.write(f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")
        with open(os.path.join(cgroup, "memory.current"), "w") as f:
            f.write(f"{1 << 30}\n")
    write_cgroup(1_000_000)
    cluster.start_redis()
    cluster.start_devkafka()
    prices = "".join(f"  {k}: {v}\n" for k, v in PRICES.items())
    agg = cluster.start_aggregator(extra="cost:\n" + prices)
    agent = cluster.start_agent(extra=f"resources:\n  cgroup_dir: {cgroup}\n"
                                      "  requested_cores: 2\n  requested_memory: 2GiB\n")
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], 4000, extra=["--rate", "1000"])
    for step in range(1, 5):  # 0.25 core used: always under the 2-core request
        time.sleep(1)
        write_cgroup(1_000_000 + step * 250_000)
    sent = cluster.finish_loadgen(load)
    tap.check(cluster.stop(agent) == 0, "agent drains and exits 0")
    wait_for(lambda: metrics(agg.http_port)["modelwatch_aggregator_predictions_total"]
             == sent["sent"], 30, "the aggregator to apply every batch")
    now = int(time.time() * 1000)
    windows = api_data(agg.http_port,
                       f"/api/v1/models/churn/windows?from={now - 600_000}&to={now}")["windows"]
    cost = {k: sum(w["cost"][k] for w in windows)
            for k in ("cpu_core_seconds", "cpu_core_seconds_billed", "memory_gib_seconds",
                      "memory_gib_seconds_billed", "pod_seconds", "total")}
    count = sum(w["count"] for w in windows)
    pod = cost["pod_seconds"]
    tap.check(count == sent["sent"] and pod > 2, "resources attributed to the model's windows",
              json.dumps(cost))
    tap.check(cost["cpu_core_seconds"] <= 1.0 + 1e-9,
              "used core-seconds are the cgroup's usage deltas", json.dumps(cost))
    tap.check(close(cost["cpu_core_seconds_billed"], 2 * pod),
              "CPU billed at the 2-core request (max of requested and used)", json.dumps(cost))
    tap.check(close(cost["memory_gib_seconds"], pod) and
              close(cost["memory_gib_seconds_billed"], 2 * pod),
              "memory used 1 GiB, billed at the 2 GiB request", json.dumps(cost))
    want = (cost["cpu_core_seconds_billed"] * PRICES["cpu_core_hour"] +
            cost["memory_gib_seconds_billed"] * PRICES["memory_gib_hour"] +
            pod * PRICES["pod_hour"]) / 3600
    tap.check(close(cost["total"], want), "cost = billed quantities x prices",
              f"{cost['total']} vs {want}")
    for w in windows:
        if w["count"]:
            c = w["cost"]
            tap.check(close(c["per_1k_predictions"], 1000 * c["total"] / w["count"]) and
                      close(c["idle_share"],
                            1 - c["cpu_core_seconds"] / c["cpu_core_seconds_billed"]),
                      "per window: cost per 1k and idle share", json.dumps(c))


if __name__ == "__main__":
    run(main)
