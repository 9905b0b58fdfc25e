#!/usr/bin/env python3
"""bench/redis_state.py — is everything two builds write to Redis identical?

Runs build/bench/mw-bench-aggregator (30 batches of 1,000 records, as the benchmark builds
them) against a fresh private redis-server for each build and each mode (default, -n, -s, -f),
then compares every key: its type, its value (hashes field by field, sorted sets member by
member with their scores, strings byte for byte) and its expiry. Expiries set by PEXPIREAT
(from the plan's clock) must be equal; those set by PEXPIRE (relative to Redis's own clock)
may differ by the time between the two runs, at most --ttl-slack-ms.

    python3 bench/redis_state.py BUILD_BEFORE BUILD_AFTER [--batches N] [--ttl-slack-ms MS]

Prints one line per mode and exits 1 on any difference, naming the first ones found.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from resp import Redis  # noqa: E402

MODES = {"default": [], "-n": ["-n"], "-s": ["-s"], "-f": ["-f"]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(build, flags, batches):
    """Key -> (type, value, absolute expiry ms or -1) after one benchmark run on a fresh Redis,
    and the wall clock (ms) when the run ended."""
    port, tmp = free_port(), tempfile.mkdtemp()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", tmp],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                r = Redis(port)
                r("PING")
                break
            except OSError:
                time.sleep(0.05)
        exe = os.path.join(build, "bench", "mw-bench-aggregator")
        subprocess.run([exe, "-b", str(batches), "-r", "1000", "-p", str(port)] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        state = {}
        for key in r.scan_all():
            kind = r("TYPE", key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind == "hash":
                flat = r("HGETALL", key)
                value = dict(zip(flat[0::2], flat[1::2]))
            elif kind == "zset":
                flat = r("ZRANGE", key, "0", "-1", "WITHSCORES")
                value = dict(zip(flat[0::2], flat[1::2]))
            elif kind == "set":
                value = sorted(r("SMEMBERS", key))
            elif kind == "string":
                value = r("GET", key)
            else:
                value = r("DUMP", key)
            state[key] = (kind, value, r("PEXPIRETIME", key))
        r.close()
        return state
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def differences(before, after, slack_ms, limit=10):
    found = []
    for key in sorted(set(before) | set(after)):
        if key not in after or key not in before:
            found.append(f"{key!r} only {'before' if key in before else 'after'}")
        else:
            (tb, vb, eb), (ta, va, ea) = before[key], after[key]
            if tb != ta or vb != va:
                detail = ""
                if isinstance(vb, dict) and isinstance(va, dict):
                    diff = sorted(f for f in set(vb) | set(va) if vb.get(f) != va.get(f))
                    detail = " fields " + ", ".join(
                        f"{f!r}: {vb.get(f)!r} -> {va.get(f)!r}" for f in diff[:3])
                found.append(f"{key!r} value differs{detail}")
            elif (eb < 0) != (ea < 0) or abs(eb - ea) > slack_ms:
                found.append(f"{key!r} expiry {eb} -> {ea}")
        if len(found) >= limit:
            break
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--ttl-slack-ms", type=int, default=120_000)
    args = ap.parse_args()
    failed = False
    for mode, flags in MODES.items():
        before = snapshot(args.before, flags, args.batches)
        after = snapshot(args.after, flags, args.batches)
        found = differences(before, after, args.ttl_slack_ms)
        fields = sum(len(v) for _, v, _ in before.values() if isinstance(v, dict))
        print(f"{mode:8} keys {len(before)} / {len(after)}, hash and zset entries {fields}: "
              + ("identical" if not found else "DIFFERENT"))
        for line in found:
            print("   ", line)
        failed |= bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
