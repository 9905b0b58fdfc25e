#!/usr/bin/env python3
"""redis.wait_replicas: a batch's offset is committed only once Redis replicas have it.

A real primary and replica (two redis-server processes, `replicaof`). With wait_replicas: 1:
1. batches are applied and committed while the replica is up;
2. the replica stops: the next batches are applied on the primary, but WAIT finds no replica,
   so nothing is committed (a second member that takes over consumes them again), the
   shortfall is counted on /metrics and /readyz fails;
3. the replica returns: every batch is committed and counted exactly once.
Before, nothing waited for replicas: a failover could lose writes whose offsets were committed.
"""
import shutil
import time

from harness import api_data, free_port, http_get, metrics, run, wait_for
from resp import Redis

PER_BATCH = 100


def start_replica(cluster, port):
    proc = cluster.spawn("redis-replica", [shutil.which("redis-server"), "--port", str(port),
                                           "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                           "no", "--dir", cluster.dir, "--replicaof",
                                           "127.0.0.1", str(cluster.redis_port)])

    def linked():
        with Redis(cluster.redis_port) as r:
            info = r("INFO", "replication")
            return b"connected_slaves:1" in info and b"state=online" in info
    wait_for(linked, 30, "the replica to be in sync with the primary")
    return proc


def start(cluster, name):
    port = free_port()
    cfg = cluster.write_config(f"{name}.yaml", f"""kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
redis:
  port: {cluster.redis_port}
  retry_max: 500ms
  wait_replicas: 1
  wait_timeout: 200ms
http:
  port: {port}
""")
    proc = cluster.spawn(name, [cluster.binary("aggregator/modelwatch-aggregator"), "--config",
                                cfg])
    proc.http_port = port
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
    return proc


def main(tap, cluster):
    cluster.start_redis()
    replica_port = free_port()
    replica = start_replica(cluster, replica_port)
    cluster.start_devkafka()
    now = int(time.time() * 1000)
    t = now - now % 60_000
    seq = [0]

    def batches(n):
        out = []
        for _ in range(n):
            seq[0] += 1
            out.append({"agent": "a1", "boot": "b1", "sequence": seq[0], "partition": 0,
                        "counters": [{"model": "m", "version": "v1", "start_ms": t,
                                      "count": PER_BATCH}]})
        return out

    a = start(cluster, "aggregator-a")
    cluster.produce_batches(batches(5))
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_batches_applied_total"] == 5,
             60, "the batches to be applied with the replica up")
    wait_for(lambda: http_get(a.http_port, "/readyz")[0] == 200, 30, "A to be ready")
    tap.check(metrics(a.http_port)["modelwatch_aggregator_replica_wait_shortfalls_total"] == 0,
              "no shortfall while the replica is up")

    tap.check(cluster.stop(replica) == 0, "the replica stops")
    cluster.produce_batches(batches(5))
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_replica_wait_shortfalls_total"]
             >= 3 and metrics(a.http_port)["modelwatch_aggregator_replicas_behind"] == 1, 60,
             "WAIT to fall short")
    m = metrics(a.http_port)
    tap.check(m["modelwatch_aggregator_batches_applied_total"] == 5,
              "no batch is committed while the replica is down",
              m["modelwatch_aggregator_batches_applied_total"])
    tap.check(m["modelwatch_aggregator_replicas_behind"] == 1, "replicas_behind is 1 on /metrics")
    tap.check(http_get(a.http_port, "/readyz")[0] != 200, "/readyz fails while it persists")
    tap.check("Redis replicas did not acknowledge" in cluster.log_of(a), "the log says so")

    # A second member takes over: it consumes again what A applied but did not commit.
    tap.check(cluster.stop(a) == 0, "A exits 0 while waiting for the replica")
    b = start(cluster, "aggregator-b")
    wait_for(lambda: metrics(b.http_port)["modelwatch_aggregator_records_consumed_total"] >= 1,
             60, "B to consume the uncommitted batch")
    replica = start_replica(cluster, replica_port)
    wait_for(lambda: metrics(b.http_port)["modelwatch_aggregator_batches_applied_total"] == 5,
             60, "B to commit every batch once the replica is back")
    wait_for(lambda: http_get(b.http_port, "/readyz")[0] == 200, 30, "B to be ready again")
    mb = metrics(b.http_port)
    tap.check(mb["modelwatch_aggregator_records_consumed_total"] == 5,
              "B consumed exactly the 5 batches that were never committed",
              mb["modelwatch_aggregator_records_consumed_total"])
    tap.check(m["modelwatch_aggregator_predictions_total"] +
              mb["modelwatch_aggregator_predictions_total"] == 10 * PER_BATCH,
              "every prediction counted once across A and B",
              f"{m['modelwatch_aggregator_predictions_total']} + "
              f"{mb['modelwatch_aggregator_predictions_total']}")
    doc = api_data(b.http_port, f"/api/v1/models/m/windows?from={t}&to={t + 60_000}")
    total = sum(w["count"] for w in doc["windows"])
    tap.check(total == 10 * PER_BATCH, "the window counts every prediction once",
              f"{total} vs {10 * PER_BATCH}")
    with Redis(replica_port) as r:
        tap.check(b"master_link_status:up" in r("INFO", "replication"), "the replica is linked")
    tap.check(cluster.stop(b) == 0, "B exits 0")


if __name__ == "__main__":
    run(main)
