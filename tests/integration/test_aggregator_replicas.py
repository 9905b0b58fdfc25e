#!/usr/bin/env python3
"""Two aggregator replicas in one consumer group on a 4-partition topic produce the same
windows as one: exactly the counts sent, with both replicas doing part of the work."""
import time

from harness import api_data, metrics, run, wait_for

AGENTS = 6
EVENTS = 5_000


def windows(port, model, start_ms):
    doc = api_data(port, f"/api/v1/models/{model}/windows?from={start_ms}&to={start_ms + 600_000}")
    return {(w["version"], w["start_ms"]): w["count"] for w in doc["windows"]}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    replicas = [cluster.start_aggregator(name=f"aggregator-{i}") for i in range(2)]
    time.sleep(3)  # let the group settle with both members
    start_ms = (int(time.time() * 1000) // 60000 - 20) * 60000
    expected = {}
    for i in range(AGENTS):
        agent = cluster.start_agent(name=f"agent-{i}", agent_id=f"pod-{i}")
        sent = cluster.loadgen(agent.endpoint, [f"model{i % 2}:v1"], EVENTS, windows=3,
                               start_ms=start_ms, extra=["--seed", str(i + 1)])
        for w in sent["windows"]:
            key = (w["model"], w["version"], w["start_ms"])
            expected[key] = expected.get(key, 0) + w["count"]

    def total():
        return sum(metrics(r.http_port)["modelwatch_aggregator_predictions_total"]
                   for r in replicas)
    wait_for(lambda: total() == AGENTS * EVENTS, 120, "the replicas to apply every batch")
    shares = [metrics(r.http_port)["modelwatch_aggregator_records_consumed_total"]
              for r in replicas]
    tap.check(all(s > 0 for s in shares), "both replicas consumed part of the topic", str(shares))
    for port in (replicas[0].http_port, replicas[1].http_port):
        got = {}
        for model in ("model0", "model1"):
            for (version, start), count in windows(port, model, start_ms).items():
                got[(model, version, start)] = count
        tap.check(got == expected, f"windows read through replica :{port} equal the events sent",
                  f"{got} vs {expected}")
    for r in replicas:
        tap.check(cluster.stop(r) == 0, f"{r.mw_name} exits 0")


if __name__ == "__main__":
    run(main)
