#!/usr/bin/env python3
"""Redis durability is checked, and a Redis that came back empty is noticed and said loudly.

(1) A real redis-server without persistence is restarted mid-run (kill -9, started again empty
on the same port). Before, the aggregator logged only "connected to Redis": the 10,000 events
applied before were gone and nothing said so. Now its epoch key is found missing: an error in
the log, modelwatch_aggregator_redis_data_lost_total 1, /readyz 503; the 5,000 events sent
afterwards are counted exactly.
(2) The same Redis has no append-only file: modelwatch_aggregator_redis_durable is 0 and the
log names appendonly; an evicting maxmemory-policy is named too.
(3) With redis.durability: refuse, nothing is applied to that Redis (and /readyz fails) until it
is made durable (CONFIG SET appendonly yes): then the 1,000 events waiting are counted exactly.
"""
import signal
import time

from harness import TestFailure, api_data, free_port, http_get, metrics, run, wait_for
from resp import Redis


def start(cluster, name, group, extra=""):
    port = free_port()
    cfg = cluster.write_config(f"{name}.yaml", f"""kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
consumer:
  group_id: {group}
redis:
  port: {cluster.redis_port}
  retry_max: 500ms
{extra}http:
  port: {port}
""")
    proc = cluster.spawn(name, [cluster.binary("aggregator/modelwatch-aggregator"), "--config",
                                cfg])
    proc.http_port = port
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
    return proc


def counted(port, model, start_ms):
    doc = api_data(port, f"/api/v1/models/{model}/windows?resolution=3600"
                         f"&from={start_ms - 7200_000}&to={start_ms + 7200_000}")
    return sum(w["count"] for w in doc["windows"])


def main(tap, cluster):
    cluster.start_redis()  # no persistence
    port = cluster.redis_port
    cluster.start_devkafka()
    agent = cluster.start_agent()
    agg = start(cluster, "aggregator", "g")
    start_ms = (int(time.time() * 1000) // 3600_000 - 1) * 3600_000

    cluster.loadgen(agent.endpoint, ["churn:v1"], 10_000, windows=2, start_ms=start_ms)
    wait_for(lambda: counted(agg.http_port, "churn", start_ms) == 10_000, 60,
             "the first 10,000 events to be counted")
    wait_for(lambda: http_get(agg.http_port, "/readyz")[0] == 200, 30, "the aggregator ready")

    cluster.stop(cluster.redis, sig=signal.SIGKILL)
    cluster.start_redis(port=port)  # empty: it kept nothing
    cluster.loadgen(agent.endpoint, ["churn:v2"], 5_000, windows=2, start_ms=start_ms)
    try:
        wait_for(lambda: counted(agg.http_port, "churn", start_ms) == 5_000, 60,
                 "the 5,000 events sent after the restart to be counted")
    except TestFailure:
        pass
    time.sleep(6)  # a check period
    m = metrics(agg.http_port)
    log = cluster.log_of(agg)
    tap.check(counted(agg.http_port, "churn", start_ms) == 5_000,
              "the events sent after the restart are counted exactly (5,000)",
              f"{counted(agg.http_port, 'churn', start_ms)}")
    tap.check(m.get("modelwatch_aggregator_redis_data_lost_total") == 1,
              "/metrics says Redis lost its data once",
              f"{m.get('modelwatch_aggregator_redis_data_lost_total')}")
    tap.check("Redis lost modelwatch's data" in log and "level=error" in log,
              "the log says Redis lost modelwatch's data", log[-2000:])
    tap.check(http_get(agg.http_port, "/readyz")[0] == 503,
              "/readyz fails after the loss (redis.data_loss_unready)")

    tap.check(m.get("modelwatch_aggregator_redis_durable") == 0
              and 'problem="appendonly=no' in log,
              "a Redis without an append-only file is reported as not durable",
              f"{m.get('modelwatch_aggregator_redis_durable')}")
    with Redis(port) as r:
        r("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    wait_for(lambda: "maxmemory-policy=volatile-lru" in cluster.log_of(agg), 15,
             "the evicting policy to be named in the log")
    tap.check(True, "an evicting maxmemory-policy is named in the log")
    with Redis(port) as r:
        r("CONFIG", "SET", "maxmemory-policy", "noeviction")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")

    # (3) refuse: nothing applied until Redis keeps what it is given.
    agg = start(cluster, "refusing", "refusing", extra="  durability: refuse\n")
    cluster.loadgen(agent.endpoint, ["fraud:v1"], 1_000, windows=2, start_ms=start_ms)
    time.sleep(8)
    m = metrics(agg.http_port)
    tap.check(m["modelwatch_aggregator_batches_applied_total"] == 0
              and http_get(agg.http_port, "/readyz")[0] == 503,
              "redis.durability: refuse applies nothing to a Redis without persistence, and "
              "/readyz fails", f"applied {m['modelwatch_aggregator_batches_applied_total']}")
    with Redis(port) as r:
        r("CONFIG", "SET", "appendonly", "yes")
    wait_for(lambda: counted(agg.http_port, "fraud", start_ms) == 1_000, 60,
             "the waiting events to be applied once Redis is durable")
    tap.check(counted(agg.http_port, "fraud", start_ms) == 1_000
              and metrics(agg.http_port)["modelwatch_aggregator_redis_durable"] == 1,
              "once Redis keeps an append-only file, the 1,000 waiting events are counted "
              "exactly")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
