#!/usr/bin/env python3
"""Slowloris against the aggregator's HTTP server: /healthz keeps answering.

Before the fix, 256 sockets sending one byte every few seconds kept every connection slot (each
byte re-armed the 30 s idle timer), so /healthz was refused and a liveness probe would have
restarted the pod. Now a request must arrive whole within http.request_timeout, one client
address holds at most http.max_connections_per_client connections, and a full server makes
room by closing the connection that has waited longest for its request.

Attackers connect from 127.0.0.2 and up (all of 127/8 is loopback on Linux); the probe comes
from 127.0.0.1, as a kubelet's would from the node.
"""
import socket
import threading
import time

from harness import http_get, metrics, run

SLOTS = 256
REQUEST_TIMEOUT_S = 10  # http.request_timeout's default


class Attack:
    """Keep `n` connections open from `addresses`, each sending one byte every `gap_s`, and
    reconnect whichever the server closes (as a real attacker would)."""

    def __init__(self, port, addresses, n, gap_s):
        self.port, self.addresses, self.n, self.gap_s = port, addresses, n, gap_s
        self.socks = [None] * n
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def connect(self, i):
        s = socket.socket()
        s.bind((self.addresses[i % len(self.addresses)], 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(b"G")
            s.setblocking(False)
            self.socks[i] = s
        except OSError:
            s.close()
            self.socks[i] = None

    def alive(self, s):
        try:
            data = s.recv(4096)
            return data != b""  # b"": closed by the server
        except BlockingIOError:
            return True
        except OSError:
            return False

    def loop(self):
        for i in range(self.n):
            self.connect(i)
        while not self.stop.wait(self.gap_s):
            for i, s in enumerate(self.socks):
                if s is not None and self.alive(s):
                    try:
                        s.send(b"E")
                        continue
                    except OSError:
                        pass
                if s is not None:
                    s.close()
                    self.closed_by_server += 1
                self.connect(i)

    def finish(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            if s is not None:
                s.close()


def probe_for(port, seconds):
    """Ask /healthz every half second for `seconds`; the answers that failed."""
    failures, n = [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        n += 1
        try:
            status, _ = http_get(port, "/healthz", timeout=2)
            if status != 200:
                failures.append(status)
        except Exception as e:  # refused, reset, timed out
            failures.append(type(e).__name__)
        time.sleep(0.5)
    return n, failures


def closed_within(port, source, seconds):
    """Send a request one byte a second from `source`; when the server closed it (s), or None."""
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.settimeout(1)
    start = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 100
    try:
        for byte in request:
            try:
                s.send(bytes([byte]))
            except OSError:
                return time.monotonic() - start
            try:
                if s.recv(4096) == b"":
                    return time.monotonic() - start
            except socket.timeout:
                pass
            except OSError:
                return time.monotonic() - start
            if time.monotonic() - start > seconds:
                return None
        return None
    finally:
        s.close()


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()  # default limits
    port = agg.http_port

    took = closed_within(port, "127.0.0.2", 2 * REQUEST_TIMEOUT_S + 5)
    tap.check(took is not None and took < REQUEST_TIMEOUT_S + 2,
              f"a request trickling one byte a second is cut off after the request timeout "
              f"({REQUEST_TIMEOUT_S} s)", f"closed after {took}")

    # One address opening every slot: it gets only its share.
    attack = Attack(port, ["127.0.0.3"], SLOTS, 1.0)
    attack.thread.start()
    time.sleep(2)
    n, failures = probe_for(port, 6)
    tap.check(not failures, f"/healthz answers all {n} probes while one address holds "
              f"{SLOTS} trickling connections", f"failures: {failures}")
    attack.finish()

    # Many addresses, more connections than slots, each trickling a byte every second.
    addresses = [f"127.0.{i // 250}.{i % 250 + 2}" for i in range(SLOTS + 64)]
    attack = Attack(port, addresses, SLOTS + 64, 1.0)
    attack.thread.start()
    time.sleep(2)
    n, failures = probe_for(port, 2 * REQUEST_TIMEOUT_S)
    tap.check(not failures, f"/healthz answers all {n} probes while {SLOTS + 64} trickling "
              f"connections from {len(addresses)} addresses hold the server",
              f"failures: {failures}")
    attack.finish()
    tap.check(attack.closed_by_server > 0, "the server cut trickling connections off",
              f"closed {attack.closed_by_server}")
    tap.check(http_get(port, "/healthz")[0] == 200, "/healthz answers after the attack")
    m = metrics(port)
    dropped = {r: m.get(f'modelwatch_http_connections_dropped_total{{reason="{r}"}}', -1)
               for r in ("full", "per_client", "evicted", "request_timeout")}
    tap.check(dropped["per_client"] >= SLOTS - 64 and dropped["request_timeout"] >= 1
              and dropped["evicted"] + dropped["request_timeout"] >= 64,
              "/metrics counts the connections the limits dropped, by reason", f"{dropped}")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0")


if __name__ == "__main__":
    run(main)
