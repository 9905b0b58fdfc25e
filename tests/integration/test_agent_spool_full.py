#!/usr/bin/env python3
"""A full spool counts exactly what it loses, in events, and only what it loses.

(1) Config: spool.max_bytes below two segments is refused (one drop would empty the spool).
(2) Kafka slow (5 s round trip) and a 1 MiB spool of 128 KiB segments: the oldest segments are
dropped while some of their batches are still in flight to Kafka and then delivered. Loss used to
be counted in batches only, and every unacknowledged batch of a dropped segment counted, the
delivered ones too. Now modelwatch_agent_events_lost_total{reason="spool_full"} holds the events
of the batches that were lost and nothing else: events sent == events in the topic + events
counted lost, exactly.
"""
import subprocess

from agent_faults import sample
from harness import metrics, run, wait_for

EVENTS = 60_000


def main(tap, cluster):
    path = cluster.write_config("small.yaml", "spool:\n  max_bytes: 4MiB\n"
                                "  segment_bytes: 16MiB\n")
    out = subprocess.run([cluster.binary("agent/modelwatch-agent"), "--config", path,
                          "--check-config"], capture_output=True, timeout=30)
    text = (out.stdout + out.stderr).decode(errors="replace")
    tap.check(out.returncode != 0 and "spool.max_bytes" in text,
              "spool.max_bytes below two segments is refused", f"rc={out.returncode} {text}")

    cluster.start_devkafka()
    audit = cluster.start_audit()
    agent = cluster.start_agent(
        extra="batch:\n  max_records: 1000\n  max_age: 100ms\n",
        spool_options="  max_bytes: 1MiB\n  segment_bytes: 128KiB\n")
    tap.check(cluster.devkafka_cmd("rtt all 5000").startswith("ok"), "Kafka answers in 5 s")
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], EVENTS)
    tap.check(sent["sent"] == EVENTS, "loadgen handed over every event")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] == EVENTS,
             60, "the agent to accept every event")
    tap.check(cluster.devkafka_cmd("rtt all 0").startswith("ok"), "Kafka fast again")
    wait_for(lambda: (lambda m: m["modelwatch_agent_spool_batches"] == 0 and
                      m["modelwatch_agent_kafka_in_flight_batches"] == 0)(
                          metrics(agent.http_port)), 120, "the spool to drain")
    m = metrics(agent.http_port)
    lost = sample(m, "modelwatch_agent_events_lost_total", reason="spool_full")
    lost_batches = sample(m, "modelwatch_agent_batches_dropped_total", reason="spool_full")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    report = cluster.stop_audit(audit)
    origin = next(iter(report["origins"].values()))
    in_topic = origin["predictions"]
    print(f"# sent={sent['sent']} topic={in_topic} lost_events={lost} "
          f"lost_batches={lost_batches} topic_batches={origin['distinct']} "
          f"sealed={m['modelwatch_agent_batches_sealed_total']}", flush=True)
    tap.check(lost > 0, "the full spool dropped batches", f"lost={lost}")
    tap.check(in_topic + lost == sent["sent"],
              "events sent == events in the topic + events counted lost",
              f"sent={sent['sent']} topic={in_topic} lost={lost}")
    tap.check(origin["distinct"] + lost_batches == m["modelwatch_agent_batches_sealed_total"],
              "batches sealed == batches in the topic + batches counted lost",
              f"topic={origin['distinct']} lost={lost_batches}")
    tap.check("events_lost=" in cluster.log_of(agent), "the log names the events lost")


if __name__ == "__main__":
    run(main)
