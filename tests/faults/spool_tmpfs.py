#!/usr/bin/env python3
"""The agent's spool on a real, small filesystem that fills up (ENOSPC) while Kafka is down:
every event the agent loses is counted, exactly.

The spool lives on a 1 MiB tmpfs mounted for the test. Kafka is down. (1) 60,000 events fill it:
segment writes fail with ENOSPC, the agent counts the write errors, holds what the spool could
not take in memory (up to its bound, beyond which it counts the events lost) and fails /readyz.
(2) 20,000 more events arrive with the filesystem still full: nothing more can be written.
(3) Kafka comes back: the agent delivers the spool and what it held, and frees the space. Then
events sent == events in the aggregator's windows + every loss the agent reports.
(A read-only remount is refused while the agent holds its segment open for writing, EBUSY; the
"unwritable" spool is test_agent_spool_unwritable.py's.)

tests/integration/test_agent_spool_full.py (the spool's own byte bound) and
test_agent_spool_unwritable.py (RLIMIT_FSIZE: EFBIG on the same write path, kill -9 and a
delivery timeout) prove the accounting without a mount; this is the real full disk. Mounting
needs CAP_SYS_ADMIN: without it the scenario is skipped, saying so.
"""
import os
import shutil
import subprocess
import tempfile
import time

import fault_env as fe
from agent_faults import family, start_agent
from harness import http_get, metrics, run, wait_for

FS_BYTES = 1 << 20
FILL_EVENTS = 60_000
STILL_FULL_EVENTS = 20_000
SPOOL = "  max_bytes: 64MiB\n  segment_bytes: 256KiB\n"
BATCH = "batch:\n  max_records: 500\n  max_age: 200ms\n"
# Every payload shipped: batches are large enough to fill the filesystem quickly.
SAMPLE_ALL = 'models:\n  - name: "*"\n    sample_rate: 1.0\n    max_events_per_second: 0\n'


def mount(path, options):
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                         capture_output=True, text=True)
    return out.returncode == 0, out.stderr.strip()


def main(tap, cluster):
    mnt = tempfile.mkdtemp(prefix="mw-spool-fs-")
    ok, why = mount(mnt, f"size={FS_BYTES},mode=0755")
    if not ok:
        print(f"ok 1 # SKIP cannot mount a tmpfs here ({why}): this scenario needs "
              "CAP_SYS_ADMIN", flush=True)
        tap.n += 1
        os.rmdir(mnt)
        return
    agent = None
    try:
        cluster.start_redis()
        cluster.start_devkafka()
        agg = cluster.start_aggregator()
        tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
        agent = start_agent(cluster, spool_dir=os.path.join(mnt, "spool"),
                            spool_options=SPOOL, extra=BATCH + SAMPLE_ALL)
        start_ms = fe.start_ms_now()
        first = cluster.loadgen(agent.endpoint, ["churn:v1"], FILL_EVENTS,
                                start_ms=start_ms, extra=["--rate", "20000"])
        wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
                 == FILL_EVENTS, 60, "the agent to accept the first events")
        time.sleep(1)  # the last batch sealed
        m = metrics(agent.http_port)
        errors_full = m.get("modelwatch_agent_spool_write_errors_total", 0)
        tap.check(errors_full > 0, "spool writes fail once the filesystem is full (ENOSPC)",
                  f"errors={errors_full} spool_bytes={m['modelwatch_agent_spool_bytes']}")
        tap.check(http_get(agent.http_port, "/readyz")[0] == 503,
                  "/readyz fails while the spool cannot be written")
        tap.check("No space left on device" in cluster.log_of(agent),
                  "the log names the full disk")

        second = cluster.loadgen(agent.endpoint, ["churn:v1"], STILL_FULL_EVENTS,
                                 start_ms=start_ms, extra=["--rate", "20000", "--seed", "5"])
        wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
                 == FILL_EVENTS + STILL_FULL_EVENTS, 60, "the agent to accept the next events")
        time.sleep(1)
        m = metrics(agent.http_port)
        tap.check(m["modelwatch_agent_spool_write_errors_total"] > errors_full,
                  "spool writes go on failing while the filesystem is full")
        tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
        wait_for(lambda: fe.agent_drained(agent.http_port), 120,
                 "the agent to deliver what it spooled and held")
        # Found by this test: /readyz stayed 503 for good once the spool had failed, as only a
        # successful append cleared it, and an idle agent appends nothing. An unready sidecar
        # keeps its pod's traffic away, so none would ever come.
        wait_for(lambda: http_get(agent.http_port, "/readyz")[0] == 200, 30,
                 "/readyz 200 once the spool has drained, with no new traffic")
        tap.check(True, "/readyz is 200 again once the spool drained, without new traffic")
        m = metrics(agent.http_port)
        lost = sum(fe.agent_losses(m).values())
        sent = first["sent"] + second["sent"]
        expected = sent - lost
        to_ms = start_ms + 2 * fe.MINUTE_MS
        try:
            fe.wait_counted(agg.http_port, ["churn"], start_ms, to_ms, expected, 120)
        except Exception as e:  # the equality below reports the numbers
            print(f"# {e}", flush=True)
        time.sleep(2)
        counted = sum(fe.counted(agg.http_port, ["churn"], start_ms, to_ms).values())
        print(f"# sent={sent} counted={counted} losses={fe.agent_losses(m)} "
              f"by_reason={ {k: v for k, v in m.items() if 'lost_total' in k and v} } "
              f"write_errors={int(m['modelwatch_agent_spool_write_errors_total'])} "
              f"dropped_batches={int(family(m, 'modelwatch_agent_batches_dropped_total'))}",
              flush=True)
        tap.check(counted + lost == sent,
                  "events sent == events in the windows + events the agent reports lost",
                  f"sent={sent} counted={counted} lost={lost}")
        tap.check(cluster.stop(agent) == 1,
                  "agent exits 1 on SIGTERM: it lost sealed batches (its exit status says so)")
        agent = None
        tap.check(cluster.stop(agg) == 0, "aggregator exits 0")
    finally:
        if agent is not None:
            cluster.stop(agent, sig=9)
        subprocess.run(["umount", mnt], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


if __name__ == "__main__":
    run(main)
