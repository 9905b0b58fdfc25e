#!/usr/bin/env python3
"""Alert receivers failing for a minute: answering 429, answering 500, or never answering.

The real delivery code (mw-alert-drive: receivers, queues, retries, libcurl on libuv) sends two
notifications to each of four PagerDuty receivers played by test_receiver.py. For OUTAGE_S
(60 s) the receivers answer: /a 429 with Retry-After: 5; /b 500; /c nothing at all (each
request hangs past the 2 s timeout); /d 500, and d's notifications may not be older than 20 s
(retry.max_age). Then every receiver answers 202.

Each notification must end exactly one way, and the receivers' records must agree with it:
a, b and c deliver each notification once (one 202 per dedup_key, after the minute, nothing
accepted twice); d's two fail, are counted failed, and the receiver accepted none of them. So
every page the system reports delivered arrived once, and every one missing is reported.

tests/integration/test_delivery.py covers single 429s, 500s and a hang; here they last a minute.
"""
import argparse
import json
import sys
import threading
import time

import fault_env  # noqa: F401  (puts tests/integration on the path)
from harness import run
from test_delivery import Env, counters, dedup_key, note, results

OUTAGE_S = 60
FAILING = {"a": {"status": 429, "retry_after": 5}, "b": {"status": 500},
           "c": {"hang": 8}, "d": {"status": 500}}


def options():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?")
    p.add_argument("--outage-s", type=float, default=OUTAGE_S)
    return p.parse_args()


OPT = options()


def receiver_yaml(env, name, max_age):
    return f"""  - name: pd-{name}
    type: pagerduty
    url: http://127.0.0.1:{env.port}/{name}
    routing_key_file: {env.key_file}
    timeout: 2s
    connect_timeout: 1s
    retry:
      initial: 1s
      max: 8s
      max_attempts: 1000
      max_age: {max_age}
"""


def main(tap, cluster):
    env = Env(cluster)
    env.script({f"/{n}/v2/enqueue#default": answer for n, answer in FAILING.items()})
    yaml = "".join(receiver_yaml(env, n, "20s" if n == "d" else "10m") for n in FAILING)
    notes, want = [], {}
    for n in FAILING:
        for g in range(2):
            group = f'route-0/{{model="m{g}"}}:{n}'
            want[len(notes)] = (n, group)
            notes.append(note(0, f"pd-{n}", group, model=f"m{g}"))
    out = []
    drive = threading.Thread(target=lambda: out.append(env.drive(yaml, notes,
                                                                 deadline_ms=240_000)))
    drive.start()
    time.sleep(OPT.outage_s)
    env.script({"default": {"status": 202}})
    recovered_at = time.time()
    drive.join(300)
    tap.check(bool(out), "mw-alert-drive finished")
    if not out:
        return
    events, _ = out[0]
    res = results(events)
    for index, (n, group) in want.items():
        reqs = [r for r in env.requests(f"/{n}/v2/enqueue")
                if json.loads(r["body"]).get("dedup_key") == dedup_key(group)]
        accepted = [r for r in reqs if r["answer"].get("status") == 202]
        failing = [r for r in reqs if r["answer"] == FAILING[n]]
        r = res.get(index, {})
        if n == "d":
            tap.check(r.get("outcome") == "failed" and not accepted,
                      f"{n} ({FAILING[n]}) #{index}: older than retry.max_age, it fails, is "
                      "reported failed, and the receiver accepted none of it",
                      f"{r} accepted={len(accepted)}")
        else:
            tap.check(r.get("outcome") == "delivered" and len(accepted) == 1 and
                      accepted[0]["t"] >= recovered_at and r.get("attempts") == len(reqs),
                      f"{n} ({FAILING[n]}) #{index}: retried through the minute and delivered "
                      f"once ({len(failing)} failed attempts)",
                      f"{r} requests={len(reqs)} accepted={len(accepted)}")
        tap.check(len(failing) >= 2, f"{n} #{index}: the receiver refused it during the outage",
                  f"{len(failing)} refused")
    c = counters(events)
    for n in FAILING:
        delivered, failed = (0, 2) if n == "d" else (2, 0)
        got = c.get(f"pd-{n}", {})
        tap.check(got.get("delivered") == delivered and got.get("failed") == failed and
                  got.get("dropped") == 0,
                  f"pd-{n} counters: {delivered} delivered, {failed} failed, none dropped",
                  str(got))
    print("# attempts per notification: " +
          " ".join(f"{want[i][0]}{i}={res.get(i, {}).get('attempts')}" for i in sorted(want)),
          flush=True)


if __name__ == "__main__":
    sys.argv = sys.argv[:2] if OPT.build else sys.argv[:1]
    run(main)
