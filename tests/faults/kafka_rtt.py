#!/usr/bin/env python3
"""High round-trip time to Kafka, then retriable produce errors, under load: every event is
counted once.

loadgen sends 90,000 events at 2,000 events/s (event times following the clock) through an
agent to an aggregator. Phase 1: every broker answers in RTT_MS (1.5 s) for 20 s, for the
producer and the consumer alike: batches pile up in flight and in the spool, fetches and
commits crawl. Phase 2: Kafka is fast again and the next produce requests fail with retriable
errors (NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, NOT_LEADER_FOR_PARTITION), which the idempotent
producer retries without duplicating. Each 1-minute window must hold exactly the events sent
into it, with no loss reported by the agent or the aggregator.

The agent sends one produce request at a time (max.in.flight.requests.per.connection=1).
librdkafka's mock cluster checks an idempotent producer's sequence numbers only for
transactional producers: with two requests in flight, the first failing with an error that
leaves its records possibly written (REQUEST_TIMED_OUT) and the second appended, librdkafka
takes the second's success as proof that the first was written (a real broker would have
refused the second with OUT_OF_ORDER_SEQUENCE_NUMBER) and reports the first delivered although
the mock never stored it.

tests/integration/test_agent_spool_full.py uses a 5 s round trip to fill a small spool and
counts what it drops; this is the round trip and the errors without a full spool, end to end.
"""
import time

import fault_env as fe
from agent_faults import start_agent
from harness import metrics, run, wait_for

EVENTS = 90_000
RATE = 2_000
RTT_MS = 1_500
SLOW_S = 20
ERRORS = (("NOT_ENOUGH_REPLICAS", 10), ("REQUEST_TIMED_OUT", 10),
          ("NOT_LEADER_FOR_PARTITION", 10))


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = start_agent(cluster, kafka_properties={"max.in.flight.requests.per.connection": "1"})
    start_ms = fe.start_ms_now()
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], EVENTS,
                                 extra=fe.load_args(RATE, 1, start_ms))
    time.sleep(5)
    tap.check(cluster.devkafka_cmd(f"rtt all {RTT_MS}").startswith("ok"),
              f"every broker answers in {RTT_MS} ms")
    time.sleep(SLOW_S)
    slow = metrics(agent.http_port)
    tap.check(slow["modelwatch_agent_kafka_in_flight_batches"] +
              slow["modelwatch_agent_spool_batches"] > 1,
              "batches wait for the slow brokers",
              f"in_flight={slow['modelwatch_agent_kafka_in_flight_batches']} "
              f"spooled={slow['modelwatch_agent_spool_batches']}")
    tap.check(cluster.devkafka_cmd("rtt all 0").startswith("ok"), "Kafka fast again")
    for name, count in ERRORS:
        tap.check(cluster.devkafka_cmd(f"produce-errors {name} {count}").startswith("ok"),
                  f"the next {count} produce requests fail with {name}")
    sent = cluster.finish_loadgen(load)
    tap.check(sent["sent"] == EVENTS and sent["failed"] == 0, "loadgen handed over every event",
              str({k: sent[k] for k in ("sent", "failed")}))
    wait_for(lambda: fe.agent_drained(agent.http_port), 120, "the agent to deliver everything")
    expected = fe.expected_counts(sent)
    to_ms = start_ms + 3 * fe.MINUTE_MS
    fe.wait_counted(agg.http_port, ["churn"], start_ms, to_ms, EVENTS, 180)
    time.sleep(2)  # a batch applied twice would show now
    got = fe.counted(agg.http_port, ["churn"], start_ms, to_ms)
    tap.check(got == expected, "every window holds exactly the events sent into it",
              f"{got} vs {expected}")
    am, gm = metrics(agent.http_port), metrics(agg.http_port)
    tap.check(fe.agent_losses(am) == {k: 0 for k in fe.AGENT_EVENT_LOSSES} and
              am["modelwatch_agent_batches_delivered_total"] ==
              am["modelwatch_agent_batches_sealed_total"],
              "the agent delivered every sealed batch and reports no loss",
              str(fe.agent_losses(am)))
    tap.check(fe.aggregator_losses(gm) == {k: 0 for k in fe.AGGREGATOR_LOSSES},
              "the aggregator reports no loss", str(fe.aggregator_losses(gm)))
    print(f"# delivery_errors={int(fe.family(am, 'modelwatch_agent_kafka_delivery_errors_total'))}"
          f" batches={int(am['modelwatch_agent_batches_sealed_total'])}", flush=True)
    tap.check(cluster.stop(agent) == 0 and cluster.stop(agg) == 0, "agent and aggregator exit 0")


if __name__ == "__main__":
    run(main)
