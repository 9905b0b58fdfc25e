#!/usr/bin/env python3
"""A spool that cannot be written (disk full) is counted, fails readiness, and every event the
agent then loses is counted.

The agent's files cannot grow past 256 KiB (RLIMIT_FSIZE: writes fail with EFBIG as on a full
disk) while its spool segments may be 4 MiB, and Kafka is down. Sealed batches the spool cannot
take used to be produced from memory with only a log line: no metric moved, /readyz stayed 200,
and since the state file already counted them sealed, a kill -9 lost them unreported; an outage
longer than message.timeout.ms lost them too, counted only in batches.
(1) kill -9: spool write errors and batches held in memory show on /metrics, /readyz fails; the
restarted agent's modelwatch_agent_events_lost_before_start covers every event that died with
the process, so events sent == events in the topic + events counted lost.
(2) message.timeout.ms of 3 s: the batches held in memory fail delivery and their events are
counted under modelwatch_agent_events_lost_total{reason="unspooled_failed"} (or
"spool_unwritable" beyond what memory may hold); the same equality holds.
"""
import signal
import time

from agent_faults import family, sample, start_agent
from harness import http_get, metrics, run, wait_for

LIMIT = 256 * 1024
EVENTS = 20_000
SPOOL = "  max_bytes: 64MiB\n  segment_bytes: 4MiB\n"
BATCH = "batch:\n  max_records: 500\n  max_age: 100ms\n"


def lost_events(m):
    return family(m, "modelwatch_agent_events_lost_total")


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")

    # (1) kill -9 with batches the spool could not take.
    agent = start_agent(cluster, extra=BATCH, spool_options=SPOOL, file_size_limit=LIMIT)
    first = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS)
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS,
             30, "the agent to accept every event")
    time.sleep(0.5)  # the last batch sealed
    m = metrics(agent.http_port)
    errors = m.get("modelwatch_agent_spool_write_errors_total", 0)
    held = m.get("modelwatch_agent_unspooled_batches", 0)
    print(f"# spool_write_errors={errors} held_in_memory={held} lost={lost_events(m)}",
          flush=True)
    tap.check(errors > 0, "spool write errors are counted", f"errors={errors}")
    tap.check(held > 0, "batches held in memory only are shown", f"held={held}")
    tap.check(http_get(agent.http_port, "/readyz")[0] == 503,
              "/readyz fails while the spool cannot be written")
    lost_counted_1 = lost_events(m)
    cluster.stop(agent, sig=signal.SIGKILL)
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    restarted = start_agent(cluster, name="agent-restarted", spool_dir=agent.spool_dir,
                            spool_options=SPOOL)
    wait_for(lambda: metrics(restarted.http_port)["modelwatch_agent_spool_batches"] == 0, 60,
             "the restarted agent to replay what was spooled")
    lost_at_kill = metrics(restarted.http_port)["modelwatch_agent_events_lost_before_start"]
    tap.check(cluster.stop(restarted) == 0, "restarted agent exits 0")

    # (2) an outage longer than message.timeout.ms.
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker down again")
    second = start_agent(cluster, name="agent-2", agent_id="agent-2", extra=BATCH,
                         spool_options=SPOOL, file_size_limit=LIMIT,
                         kafka_properties={"message.timeout.ms": "3000"})
    more = cluster.loadgen(second.endpoint, ["fraud:v1"], EVENTS, extra=["--seed", "5"])
    wait_for(lambda: metrics(second.http_port)["modelwatch_agent_unspooled_batches"] == 0 and
             metrics(second.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS, 60,
             "the batches held in memory to time out")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    wait_for(lambda: (lambda m: m["modelwatch_agent_spool_batches"] == 0 and
                      m["modelwatch_agent_kafka_in_flight_batches"] == 0)(
                          metrics(second.http_port)), 60, "the spooled part delivered")
    m2 = metrics(second.http_port)
    lost_2 = lost_events(m2)
    timed_out = sample(m2, "modelwatch_agent_events_lost_total", reason="unspooled_failed")
    tap.check(timed_out > 0, "batches held in memory that time out are counted in events",
              f"unspooled_failed={timed_out}")
    tap.check("events_lost=" in cluster.log_of(second), "the log names the events lost")
    cluster.stop(second)

    report = cluster.stop_audit(audit)
    topic = {o: v["predictions"] for o, v in report["origins"].items()}
    in_topic = sum(topic.values())
    sent = first["sent"] + more["sent"]
    print(f"# sent={sent} topic={in_topic} lost_before_start={lost_at_kill} "
          f"lost_counted={lost_counted_1}+{lost_2}", flush=True)
    tap.check(in_topic + lost_at_kill + lost_counted_1 + lost_2 == sent,
              "events sent == events in the topic + events counted lost",
              f"sent={sent} topic={in_topic} lost_before_start={lost_at_kill} "
              f"counted={lost_counted_1}+{lost_2}")


if __name__ == "__main__":
    run(main)
