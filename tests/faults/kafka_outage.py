#!/usr/bin/env python3
"""Kafka down under load, end to end: every event sent is counted once in the windows.

loadgen sends at a fixed rate (event times follow the clock) through a real agent to
modelwatch-devkafka, which an aggregator consumes into Redis. Every broker goes down for
OUTAGE_S while the load goes on: the agent spools, the aggregator's consumer loses its brokers
and coordinator. Once Kafka is back, each 1-minute window read through the API must hold exactly
the events loadgen sent into it, with no loss reported anywhere (none may happen within the
spool bound and the windows' lateness), and both binaries exit 0.

tests/integration/test_agent_outage.py proves the agent's side (the topic holds every batch
once); this adds the consumer's side. The suite runs a 20 s outage (the agent spools after its
first failed delivery, and the consumer's session and coordinator are gone after a few seconds,
so a longer outage adds only more of the same); bench/README.md records the full minute:

    /usr/bin/python3 tests/faults/kafka_outage.py build --outage-s 60 --events 200000 \
        --sample-rate 0.01

(--sample-rate: modelwatch-devkafka keeps only about the last 5 MB of a partition, and a
minute's backlog of batches carrying every payload (the agent's default) is larger: replayed at once, its first
batches would be gone before the consumer reads them, which the aggregator reports as records
skipped. The exact counters, and so the counts, cover every event at any sampling rate.)
"""
import argparse
import sys
import time

import fault_env as fe
from harness import metrics, run, wait_for


def options():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?")
    p.add_argument("--outage-s", type=float, default=20)
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--rate", type=int, default=2_000)
    p.add_argument("--down-after-s", type=float, default=8)
    p.add_argument("--sample-rate", type=float, help="payload sampling of every model")
    return p.parse_args()


OPT = options()


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    sampling = (f'models:\n  - name: "*"\n    sample_rate: {OPT.sample_rate}\n'
                if OPT.sample_rate is not None else "")
    agent = cluster.start_agent(extra=sampling)
    start_ms = fe.start_ms_now()
    minutes = int(OPT.events / OPT.rate / 60) + 1
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], OPT.events,
                                 extra=fe.load_args(OPT.rate, minutes, start_ms))
    time.sleep(OPT.down_after_s)
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "every broker taken down")
    t_down = time.monotonic()
    time.sleep(OPT.outage_s)
    during = metrics(agent.http_port)
    tap.check(during["modelwatch_agent_spool_batches"] > 0,
              "the agent spooled while Kafka was down",
              f"spool_batches={during['modelwatch_agent_spool_batches']}")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "brokers back up")
    outage_s = time.monotonic() - t_down
    t_up = time.monotonic()
    sent = cluster.finish_loadgen(load)
    # (loadgen retries what the client refuses while its buffer is full: "dropped" counts
    # those refusals, "failed" the events given up.)
    tap.check(sent["sent"] == OPT.events and sent["failed"] == 0,
              "loadgen handed over every event", str({k: sent[k] for k in ("sent", "failed")}))
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
             == sent["sent"], 60, "the agent to accept every event")
    wait_for(lambda: fe.agent_drained(agent.http_port), 180, "the agent to deliver its spool")
    expected = fe.expected_counts(sent)
    to_ms = start_ms + (minutes + 1) * fe.MINUTE_MS
    got = fe.wait_counted(agg.http_port, ["churn"], start_ms, to_ms, sent["sent"], 180)
    caught_up_s = time.monotonic() - t_up
    time.sleep(2)  # anything applied twice would show now
    got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    tap.check(got == expected, "every window holds exactly the events sent into it",
              f"{got} vs {expected}")
    am = metrics(agent.http_port)
    gm = metrics(agg.http_port)
    tap.check(fe.agent_losses(am) == {k: 0 for k in fe.AGENT_EVENT_LOSSES},
              "the agent reports no loss", str(fe.agent_losses(am)))
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES},
              "the aggregator reports no loss", str(fe.aggregator_losses(gm)))
    print(f"# outage_s={outage_s:.1f} events={sent['sent']} counted={sum(got.values())} "
          f"spooled_batches={int(am['modelwatch_agent_batches_spooled_total'])} "
          f"peak_spool_batches_seen={int(during['modelwatch_agent_spool_batches'])} "
          f"replayed_batches={int(am['modelwatch_agent_batches_replayed_total'])} "
          f"counted_all_s_after_up={caught_up_s:.1f}", flush=True)
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")
    tap.check(cluster.stop(agg) == 0, "aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    sys.argv = sys.argv[:2] if OPT.build else sys.argv[:1]
    run(main)
