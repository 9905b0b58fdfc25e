#!/usr/bin/env python3
"""Many distinct error codes in one window, through real processes: a model server that fails
in 40 different ways within one minute, captured by libmodelwatch (through its Python binding)
and counted by the agent, once sent event by event and once counted by the client itself (the
rate leaves every payload out). The agent keeps at most 32 codes per model, version and bucket:
the first 31 codes to arrive each with their own count, every later one in "other". Either way
the aggregator's window holds every error, each of the first 31 codes exactly, and "other"
exactly the rest; the latencies are untouched (their mean is the raw mean).
"""
import os
import sys
import time

from harness import TestFailure, api_data, metrics, run, wait_for

BUILD_DIR = os.path.abspath(os.environ.get("MW_BUILD_DIR") or
                            (sys.argv[1] if len(sys.argv) > 1 else "build"))
LIB_PATH = os.path.join(BUILD_DIR, "agent", "client", "libmodelwatch.so")
PY_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "..", "..", "agent", "client", "python"))
os.environ["MODELWATCH_LIB"] = LIB_PATH
sys.path.insert(0, PY_DIR)

CODES = 40
ROUNDS = 5
OWN_SLOTS = 31
MINUTE_MS = 60000
# (model, agent rules, what)
RUNS = [("whole", "", "sent event by event"),
        ("counted", 'models:\n  - name: "*"\n    sample_rate: 0\n    keep_errors: false\n',
         "counted by the client")]


def send(modelwatch, agent, model, start_ms):
    """CODES codes, round robin, ROUNDS times; returns the latencies sent."""
    latencies = []
    with modelwatch.Client(agent.endpoint) as mw:
        if not mw.wait_ready(10):
            raise TestFailure("the client never connected")
        time.sleep(1.5)  # the sender reads the rules file once a second
        for r in range(ROUNDS):
            for c in range(CODES):
                latency = 1000 + 37 * (r * CODES + c)
                latencies.append(latency)
                if not mw.capture(model, f"{model}-{r}-{c}", version="v1", latency_us=latency,
                                  event_time_ms=start_ms + r * 1000 + c, status="error",
                                  error_code=f"code-{c}"):
                    raise TestFailure("capture refused")
        if not mw.flush(10):
            raise TestFailure("flush timed out")
    return latencies


def main(tap, cluster):
    if not os.path.exists(LIB_PATH):
        raise TestFailure(f"missing {LIB_PATH}: build first")
    import modelwatch  # after MODELWATCH_LIB and sys.path are set

    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    start_ms = (int(time.time() * 1000) // MINUTE_MS - 10) * MINUTE_MS
    for model, rules, what in RUNS:
        agent = cluster.start_agent(name=f"agent-{model}", agent_id=f"agent-{model}",
                                    extra=rules)
        latencies = send(modelwatch, agent, model, start_ms)
        total = CODES * ROUNDS
        wait_for(lambda: metrics(agent.http_port).get(
            "modelwatch_agent_events_accepted_total", 0) == total, 30,
            f"{what}: the agent to accept {total} events")
        counted = metrics(agent.http_port).get("modelwatch_agent_events_counted_by_client_total",
                                               0)
        tap.check(counted == (total if rules else 0),
                  f"{what}: the client counted {'every' if rules else 'no'} event itself",
                  f"counted by the client: {counted}")

        def window():
            ws = api_data(agg.http_port, f"/api/v1/models/{model}/windows?from={start_ms}"
                                         f"&to={start_ms + MINUTE_MS - 1}&limit=10")["windows"]
            return ws[0] if len(ws) == 1 and ws[0]["count"] >= total else None
        wait_for(window, 60, f"{what}: the window to hold {total} events")
        w = window()
        want = {f"code-{c}": ROUNDS for c in range(OWN_SLOTS)}
        want["other"] = (CODES - OWN_SLOTS) * ROUNDS
        tap.check(w["count"] == w["errors"] == total and w["errors_by_code"] == want,
                  f"{what}: {total} errors: the first {OWN_SLOTS} codes each exactly, "
                  f"'other' the rest", f"count {w['count']} errors {w['errors']} "
                  f"by code {w['errors_by_code']}")
        mean = sum(latencies) / len(latencies)
        tap.check(abs(w["latency_us"]["mean"] - mean) <= 1e-6 * mean,
                  f"{what}: the latencies are the ones sent (mean {mean:.1f} us)",
                  str(w["latency_us"]))
        tap.check(cluster.stop(agent) == 0, f"{what}: the agent exits 0 on SIGTERM")
    tap.check(cluster.stop(agg) == 0, "the aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
