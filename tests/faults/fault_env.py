"""What the fault scenarios share: the integration harness (imported from tests/integration),
the pipeline under load (redis, devkafka, aggregators, an agent, loadgen at a fixed rate with
event times that follow the clock), and the two sides of every exact count: the events the
aggregator's windows hold, read through the API, and every loss the agent and the aggregator
report on /metrics.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from agent_faults import family  # noqa: E402
from harness import TestFailure, api_data, metrics, wait_for  # noqa: E402

MINUTE_MS = 60_000

# Agent configuration for scenarios in which the aggregators fall behind for a while (killed
# members wait for their sessions to expire before partitions move): payload sampling off, so
# batches carry the exact counters only and stay small. modelwatch-devkafka keeps only about the
# last 5 MB of each partition, and an agent's batches all go to one partition (key = agent id):
# sampled batches of a few hundred KB would be trimmed before a lagging consumer reads them,
# which a real topic's retention of days never does.
COUNTERS_ONLY = 'models:\n  - name: "*"\n    sample_rate: 0\n    keep_errors: false\n'

# Agent metric families that count events it took and then lost (never shipped).
AGENT_EVENT_LOSSES = ("modelwatch_agent_events_lost_total",
                      "modelwatch_agent_events_lost_before_start",
                      "modelwatch_agent_events_lost_in_transit_total")
# Aggregator metric families that count predictions it consumed and did not put in a window.
AGGREGATOR_LOSSES = ("modelwatch_aggregator_late_dropped_total",
                     "modelwatch_aggregator_invalid_predictions_total",
                     "modelwatch_aggregator_dlq_records_total",
                     "modelwatch_aggregator_records_skipped_total",
                     "modelwatch_aggregator_records_fenced_total")


def start_ms_now():
    """The start of the current minute: loadgen's first window."""
    return int(time.time() * 1000) // MINUTE_MS * MINUTE_MS


def load_args(rate, minutes, start_ms):
    """loadgen arguments for a fixed rate whose event times follow the clock: `minutes` windows
    from start_ms, sent in order, so the aggregator's watermark moves as in production."""
    return ["--rate", str(rate), "--windows", str(max(1, minutes)), "--start-ms", str(start_ms),
            "--in-order"]


def window_counts(port, model, from_ms, to_ms):
    """{(version, start_ms): count} of the model's 1-minute windows, read through the API."""
    doc = api_data(port, f"/api/v1/models/{model}/windows?from={from_ms}&to={to_ms}"
                         f"&limit=10000")
    return {(w["version"], w["start_ms"]): w["count"] for w in doc["windows"]}


def expected_counts(loadgen_report):
    """{(model, version, start_ms): count} as loadgen reports it sent."""
    out = {}
    for w in loadgen_report["windows"]:
        key = (w["model"], w["version"], w["start_ms"])
        out[key] = out.get(key, 0) + w["count"]
    return out


def counted(port, models, from_ms, to_ms):
    """{(model, version, start_ms): count} over several models."""
    out = {}
    for model in models:
        for (version, start), count in window_counts(port, model, from_ms, to_ms).items():
            out[(model, version, start)] = count
    return out


def agent_losses(m):
    """Events the agent reports lost, by family (the restarted agent reports the dead one's)."""
    return {name: int(family(m, name)) for name in AGENT_EVENT_LOSSES}


def aggregator_losses(m):
    return {name: int(family(m, name)) for name in AGGREGATOR_LOSSES}


def agent_drained(port):
    """The agent holds nothing: nothing in its spool, nothing in flight, nothing in memory."""
    m = metrics(port)
    return (m["modelwatch_agent_spool_batches"] == 0 and
            m["modelwatch_agent_kafka_in_flight_batches"] == 0 and
            m.get("modelwatch_agent_unspooled_batches", 0) == 0)


# Aggregator metric families that say where consumed records went, printed when a count falls
# short so that a failure tells a stuck consumer from a lost batch.
AGGREGATOR_PROGRESS = ("modelwatch_aggregator_records_consumed_total",
                       "modelwatch_aggregator_batches_applied_total",
                       "modelwatch_aggregator_apply_retries_total",
                       "modelwatch_aggregator_partitions_assigned",
                       "modelwatch_aggregator_consumer_lag_records")


def aggregator_progress(port):
    """One line of the aggregator's progress and loss counters, for a failure message."""
    try:
        m = metrics(port)
    except OSError as e:
        return f"aggregator metrics unreadable: {e}"
    lags = {k: int(v) for k, v in m.items()
            if k.startswith("modelwatch_aggregator_consumer_lag_records{")}
    counts = {name: int(family(m, name)) for name in AGGREGATOR_PROGRESS + AGGREGATOR_LOSSES}
    return f"{counts} lag={lags}"


def wait_counted(port, models, from_ms, to_ms, want_total, timeout_s, what="the windows"):
    """Wait until the windows hold want_total events (more is a failure at once: nothing
    may be counted twice); returns the counts."""
    last = {}

    def reached():
        last["counts"] = counted(port, models, from_ms, to_ms)
        return sum(last["counts"].values()) >= want_total
    try:
        wait_for(reached, timeout_s, f"{what} to hold {want_total} events")
    except TestFailure as e:
        got = sum(last.get("counts", {}).values())
        raise TestFailure(f"{e}; they hold {got}; {aggregator_progress(port)}") from None
    total = sum(last["counts"].values())
    if total > want_total:
        raise TestFailure(f"{what} hold {total} events, more than the {want_total} sent")
    return last["counts"]
