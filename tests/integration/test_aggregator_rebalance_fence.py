#!/usr/bin/env python3
"""A partition that moves while its old owner still holds a batch in flight.

Replica A reaches Redis through a proxy that can hold Redis's replies; replica B reaches Redis
directly. A holds every partition of the 4-partition topic and applies batches on partition 3.
Then the proxy holds A's replies while A has one batch of partition 3 in flight, and B joins
(client ids "a" < "b": whichever assignor, partition 3 moves to B). B applies more batches of
partition 3 and commits. Then A's reply is let through.

Before, A had no rebalance callback: librdkafka revoked partition 3 behind its back, and when
the held reply arrived A committed its older offset over B's, so the group's committed offset
went backwards: a fresh member of the group consumed B's batches again. Now A fences work of
a revoked partition: it neither commits nor applies for a partition it no longer holds, and a
fresh member finds nothing left to consume. Counts stay exact throughout.
"""
import socket
import threading
import time

from harness import api_data, free_port, http_get, metrics, run, wait_for

PARTITION = 3
PER_BATCH = 100


class HoldingProxy:
    """TCP proxy to Redis whose replies can be held (requests always pass)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.open = threading.Event()
        self.open.set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self.pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, True), daemon=True).start()

    def pipe(self, src, dst, replies):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if replies:
                    self.open.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    proxy = HoldingProxy(cluster.redis_port)
    now = int(time.time() * 1000)
    t = now - now % 60_000
    seq = [0]

    def batches(n):
        out = []
        for _ in range(n):
            seq[0] += 1
            out.append({"agent": "a1", "boot": "b1", "sequence": seq[0], "partition": PARTITION,
                        "counters": [{"model": "m", "version": "v1", "start_ms": t,
                                      "count": PER_BATCH}]})
        return out

    redis_port, cluster.redis_port = cluster.redis_port, proxy.port  # A goes through the proxy
    # A's replies are held for up to half a minute: a slow Redis, not a dead one, so A waits
    # for them (redis.command_timeout would otherwise give up on the connection at 10 s).
    a = cluster.start_aggregator(name="aggregator-a", kafka_properties={"client.id": "a"},
                                 redis_options={"command_timeout": "120s"})
    cluster.redis_port = redis_port
    cluster.produce_batches(batches(5))
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_batches_applied_total"] == 5,
             60, "A to apply the first batches")
    consumed = metrics(a.http_port)["modelwatch_aggregator_records_consumed_total"]

    proxy.open.clear()
    cluster.produce_batches(batches(1))
    wait_for(lambda: metrics(a.http_port)["modelwatch_aggregator_records_consumed_total"]
             == consumed + 1, 30, "A to take the next batch (its reply held)")

    b = cluster.start_aggregator(name="aggregator-b", kafka_properties={"client.id": "b"})
    cluster.produce_batches(batches(10))
    try:  # B takes partition 3 at once where the old owner cannot hold the rebalance back
        wait_for(lambda: metrics(b.http_port)["modelwatch_aggregator_batches_applied_total"]
                 >= 10, 30, "B to apply the batches of the moved partition")
    except Exception:
        pass
    time.sleep(2)  # B's commits reach the group
    proxy.open.set()

    def counted():
        return sum(metrics(r.http_port)["modelwatch_aggregator_predictions_total"]
                   for r in (a, b))
    wait_for(lambda: counted() == 16 * PER_BATCH, 60, "every batch to be counted")
    time.sleep(3)  # A's late reply, and whatever it commits, reach the group
    tap.check(cluster.stop(a) == 0, "A exits 0")
    tap.check(cluster.stop(b) == 0, "B exits 0")

    c = cluster.start_aggregator(name="aggregator-c")
    wait_for(lambda: http_get(c.http_port, "/readyz")[0] == 200, 60, "C to hold the partitions")
    time.sleep(5)
    m = metrics(c.http_port)
    tap.check(m["modelwatch_aggregator_records_consumed_total"] == 0,
              "a fresh member finds the committed offsets at the end (they never went back)",
              f"it consumed {m['modelwatch_aggregator_records_consumed_total']} records again")
    doc = api_data(c.http_port, f"/api/v1/models/m/windows?from={t}&to={t + 60_000}")
    total = sum(w["count"] for w in doc["windows"])
    tap.check(total == 16 * PER_BATCH, "the window counts every prediction sent exactly once",
              f"{total} vs {16 * PER_BATCH}")
    tap.check(cluster.stop(c) == 0, "C exits 0")


if __name__ == "__main__":
    run(main)
