#!/usr/bin/env python3
"""A batch Kafka refuses as too large is dropped and counted, never retried forever.

(1) Config: batch.max_bytes above the producer's message.max.bytes (librdkafka's default is
1,000,000) is refused by --check-config, naming the key; up to it, it is accepted.
(2) A sealed batch can still outgrow message.max.bytes: its exact counters ride along on top of
batch.max_bytes of records, and here 16 models x 40 event-time buckets in one interval make the
counters larger than a message.max.bytes of 4000.
librdkafka refuses such a record (MSG_SIZE_TOO_LARGE); the agent used to treat that as a
transient failure, rewind and try the same batch again forever, with every later batch waiting
behind it and nothing counted. Now it is a permanent error for that batch: the batch is dropped,
its events counted under reason "too_large", and the rest flows.
(3) The same from the broker: a produce request the broker answers with MSG_SIZE_TOO_LARGE
drops that batch and counts its events.
In each case the events sent equal the events in the topic plus the events counted lost.
"""
import subprocess
import time

from agent_faults import family, sample, start_agent
from harness import metrics, run, wait_for

MODELS = [f"m{i}:v1" for i in range(16)]
WINDOWS = 40


def check_config(cluster, name, body):
    path = cluster.write_config(name, body)
    out = subprocess.run([cluster.binary("agent/modelwatch-agent"), "--config", path,
                          "--check-config"], capture_output=True, timeout=30)
    return out.returncode, (out.stdout + out.stderr).decode(errors="replace")


def drained(agent, events):
    m = metrics(agent.http_port)
    return (m["modelwatch_agent_events_accepted_total"] == events and
            m["modelwatch_agent_spool_batches"] == 0 and
            m["modelwatch_agent_kafka_in_flight_batches"] == 0)


def topic_predictions(report):
    return sum(o["predictions"] for o in report["origins"].values())


def main(tap, cluster):
    rc, out = check_config(cluster, "big.yaml", "batch:\n  max_bytes: 64MiB\n")
    tap.check(rc != 0 and "batch.max_bytes" in out and "message.max.bytes" in out,
              "batch.max_bytes above message.max.bytes is refused", f"rc={rc} {out}")
    rc, out = check_config(cluster, "fits.yaml", "batch:\n  max_bytes: 900KiB\n")
    tap.check(rc == 0, "batch.max_bytes below the default message.max.bytes is accepted", out)
    rc, out = check_config(cluster, "raised.yaml", "batch:\n  max_bytes: 4MiB\n"
                           "kafka:\n  properties:\n    message.max.bytes: \"8000000\"\n")
    tap.check(rc == 0, "a raised message.max.bytes admits a larger batch", out)

    cluster.start_devkafka()
    audit = cluster.start_audit()
    agent = start_agent(cluster, kafka_properties={"message.max.bytes": "4000"},
                        extra="batch:\n  max_bytes: 2KiB\n  max_age: 1s\n"
                        "models:\n  - name: \"*\"\n    sample_rate: 0\n    keep_errors: false\n")
    events = len(MODELS) * WINDOWS * 5
    # Buckets of the last WINDOWS minutes (future ones would be refused as invalid times).
    start_ms = (int(time.time() * 1000) // 60000 - WINDOWS - 1) * 60000
    sent = cluster.loadgen(agent.endpoint, MODELS, events, windows=WINDOWS, start_ms=start_ms)
    tap.check(sent["sent"] == events, "loadgen handed over every event")
    try:
        wait_for(lambda: drained(agent, events), 60, "the agent to settle every batch")
        tap.check(True, "an oversized batch does not block the batches after it")
    except Exception as e:
        tap.check(False, "an oversized batch does not block the batches after it", str(e))
    m = metrics(agent.http_port)
    lost = sample(m, "modelwatch_agent_events_lost_total", reason="too_large")
    lost_batches = sample(m, "modelwatch_agent_batches_dropped_total", reason="too_large")
    tap.check(lost > 0 and lost_batches > 0, "oversized batches are dropped and counted",
              f"events={lost} batches={lost_batches}")
    tap.check("too large" in cluster.log_of(agent), "the log names the dropped batch")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")

    # (3) The broker refuses one produce request as too large.
    second = start_agent(cluster, name="agent-2", agent_id="agent-2",
                         extra="batch:\n  max_records: 500\n  max_age: 100ms\n")
    first = cluster.loadgen(second.endpoint, ["churn:v1"], 2_000)
    wait_for(lambda: drained(second, 2_000), 30, "the first events delivered")
    tap.check(cluster.devkafka_cmd("produce-errors MSG_SIZE_TOO_LARGE 1").startswith("ok"),
              "the broker will refuse the next produce request as too large")
    more = cluster.loadgen(second.endpoint, ["churn:v1"], 2_000, extra=["--seed", "7"])
    try:
        wait_for(lambda: drained(second, 4_000), 60, "the second agent to settle every batch")
        tap.check(True, "the refused batch does not block the agent")
    except Exception as e:
        tap.check(False, "the refused batch does not block the agent", str(e))
    m2 = metrics(second.http_port)
    lost2 = sample(m2, "modelwatch_agent_events_lost_total", reason="too_large")
    tap.check(lost2 > 0, "the batch the broker refused is counted in events", f"lost={lost2}")
    tap.check(cluster.stop(second) == 0, "second agent exits 0 on SIGTERM")

    report = cluster.stop_audit(audit)
    in_topic = topic_predictions(report)
    total_sent = sent["sent"] + first["sent"] + more["sent"]
    print(f"# sent={total_sent} topic={in_topic} lost_too_large={lost}+{lost2}", flush=True)
    tap.check(in_topic + lost + lost2 == total_sent,
              "events sent == events in the topic + events counted lost",
              f"sent={total_sent} topic={in_topic} lost={lost}+{lost2} "
              f"all_lost={family(m, 'modelwatch_agent_events_lost_total')}")


if __name__ == "__main__":
    run(main)
