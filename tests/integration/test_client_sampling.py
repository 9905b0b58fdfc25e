#!/usr/bin/env python3
"""Sampling and counting at the source, through real processes: the agent publishes its rate
rules beside its socket; libmodelwatch counts every event the rate does not select itself and
sends its counters instead of the event (or, when the agent does not take counts, sends the
event's head only); the counts stay exact.

The oracle is the sampling decision computed here from loadgen's dump of what it sent (ids,
status, latency) with the pinned unit hash (drift_oracle.unit), not from the agent's counters:
- three clients at once (one per worker process, as gunicorn runs them) each count the
  unselected events: the agent took exactly those as counts, in far fewer messages than events,
  and no event's head; it shipped exactly the selected events;
- the aggregator's windows hold exactly loadgen's counts per model, version and window, the
  errors with their code, the latency mean to the microsecond and the percentiles within the
  histogram's 1 % of the raw latencies' nearest-rank percentiles;
- an agent with intake.count_at_source off publishes no count line, and the same client sends
  the unselected events' heads instead;
- the rules file says what the config says, follows a reload, and is gone when the agent
  stops; a client keeps following it, so after a reload that keeps everything the same client
  stops leaving payloads out within a few seconds.
"""
import csv
import math
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))

import fault_env as fe  # noqa: E402
from drift_oracle import unit  # noqa: E402
from harness import api_data, metrics, run, wait_for  # noqa: E402

CLIENTS = 3
EVENTS_PER_CLIENT = 2000
EVENTS = CLIENTS * EVENTS_PER_CLIENT
MODELS = ["churn:v1", "fraud:v1"]
RULES = ("models:\n"
         "  - name: churn\n    sample_rate: 0.1\n    keep_errors: true\n"
         "    keep_slower_than: 5ms\n"
         "  - name: \"*\"\n    sample_rate: 0.25\n    keep_errors: false\n")
# What the agent must publish for RULES, sorted by name, after its count line.
PUBLISHED = ["modelwatch-sampling 1", "count 60000", "churn 0.10000000000000001 1 5000",
             "* 0.25 0 0"]
HEADS_ONLY = "  count_at_source: false\n"


def selected(row):
    """Whether the agent's rules ship this event's payload (sampler.h, steps 1-3)."""
    is_error = row["status"] == "error"
    latency_us = int(row["latency_us"])
    if row["model"] == "churn":
        return is_error or latency_us > 5000 or unit(row["prediction_id"]) < 0.1
    return unit(row["prediction_id"]) < 0.25


def sent_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def m(agent, name):
    return metrics(agent.http_port).get(name, 0)


def nearest_rank(sorted_values, q):
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def check_windows(tap, agg, reports, rows, start_ms):
    """The aggregator's one window per model against loadgen's reports and raw rows."""
    names = [mv.split(":")[0] for mv in MODELS]
    to_ms = start_ms + fe.MINUTE_MS - 1
    want = {}
    for report in reports:
        for key, count in fe.expected_counts(report).items():
            want[key] = want.get(key, 0) + count
    got = fe.wait_counted(agg.http_port, names, start_ms, to_ms, EVENTS, 60)
    tap.check(got == want, "the windows hold exactly loadgen's counts per model, version and "
              "window", f"want {want}\ngot  {got}")
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        ws = api_data(agg.http_port, f"/api/v1/models/{name}/windows?from={start_ms}"
                                     f"&to={to_ms}&limit=100")["windows"]
        errors = sum(r["status"] == "error" for r in mine)
        tap.check(len(ws) == 1 and ws[0]["errors"] == errors > 0 and
                  ws[0]["errors_by_code"] == {"timeout": errors},
                  f"{name}: {errors} errors, all with their code",
                  [(w["errors"], w["errors_by_code"]) for w in ws])
        if len(ws) != 1:
            continue
        lat = ws[0]["latency_us"]
        raw = sorted(int(r["latency_us"]) for r in mine)
        mean = sum(raw) / len(raw)
        tap.check(abs(lat["mean"] - mean) <= 1e-6 * mean,
                  f"{name}: the latency mean is the raw latencies' ({mean:.3f} us)",
                  f"aggregator {lat['mean']}")
        off = {q: (lat[k], nearest_rank(raw, q)) for k, q in
               (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}
        tap.check(all(abs(a - b) <= 0.0101 * b for a, b in off.values()),
                  f"{name}: p50, p90, p99 within 1 % of the raw latencies' nearest rank", off)


def run_clients(cluster, agent, start_ms, prefix):
    """CLIENTS loadgens at once, each its own client (a worker process); their reports and
    their dumped rows."""
    procs = []
    for i in range(CLIENTS):
        dump = os.path.join(cluster.dir, f"sent-{prefix}-{i}.csv")
        procs.append((dump, cluster.start_loadgen(
            agent.endpoint, MODELS, EVENTS_PER_CLIENT,
            extra=["--error-share", "0.1", "--dump-csv", dump, "--id-prefix", f"{prefix}{i}",
                   "--windows", "1", "--start-ms", str(start_ms)])))
    reports, rows = [], []
    for dump, proc in procs:
        reports.append(cluster.finish_loadgen(proc))
        rows += sent_rows(dump)
    return reports, rows


def counting_clients(tap, cluster, agg, start_ms):
    agent = cluster.start_agent(extra=RULES)
    rules_file = agent.endpoint[len("ipc://"):] + ".sampling"
    with open(rules_file) as f:
        published = f.read().splitlines()
    tap.check(published[:2] == PUBLISHED[:2] and sorted(published[2:]) == sorted(PUBLISHED[2:]),
              "the agent publishes its rate rules and its count line beside its socket",
              str(published))

    reports, rows = run_clients(cluster, agent, start_ms, "w")
    want_kept = sum(1 for r in rows if selected(r))
    want_counted = len(rows) - want_kept
    tap.check(len(rows) == EVENTS and all(r["sent"] == EVENTS_PER_CLIENT and r["failed"] == 0
                                          for r in reports),
              f"{CLIENTS} clients at once sent every event", f"rows={len(rows)}")
    wait_for(lambda: m(agent, "modelwatch_agent_events_accepted_total") == EVENTS, 30,
             "the agent to count every event")
    counted = m(agent, "modelwatch_agent_events_counted_by_client_total")
    messages = m(agent, "modelwatch_agent_client_counts_messages_total")
    tap.check(counted == want_counted,
              f"the clients counted exactly the {want_counted} events the rate does not select "
              f"({want_kept} kept)", f"agent took {counted} as counts")
    tap.check(0 < messages <= want_counted / 10,
              "the counts came in far fewer messages than events",
              f"{messages} counts messages for {counted} events")
    tap.check(m(agent, "modelwatch_agent_events_payload_omitted_total") == 0,
              "no event came as its head alone")
    tap.check(m(agent, "modelwatch_agent_sampled_without_payload_total") == 0,
              "the agent's sampler kept none of them")
    shipped = m(agent, "modelwatch_agent_records_shipped_total")
    tap.check(shipped == want_kept, f"the agent shipped exactly the {want_kept} selected payloads",
              f"shipped {shipped}")
    decisions = metrics(agent.http_port)
    rate_dropped = decisions.get(
        'modelwatch_agent_sampling_decisions_total{decision="dropped_rate"}', 0)
    tap.check(rate_dropped == want_counted,
              "the sampling decisions count the clients' counted events as dropped by the rate",
              f"dropped_rate={rate_dropped}")
    check_windows(tap, agg, reports, rows, start_ms)
    return agent, want_kept


def follow_a_reload(tap, cluster, agent, want_kept):
    """A reload that keeps everything: the same, long-running client follows it."""
    rules_file = agent.endpoint[len("ipc://"):] + ".sampling"

    def left_out():
        return (m(agent, "modelwatch_agent_events_counted_by_client_total") +
                m(agent, "modelwatch_agent_events_payload_omitted_total"))
    before = left_out()
    config = os.path.join(cluster.dir, "agent.yaml")
    text = open(config).read()
    open(config, "w").write(text.replace("sample_rate: 0.1", "sample_rate: 1")
                            .replace("sample_rate: 0.25", "sample_rate: 1"))
    load = cluster.start_loadgen(agent.endpoint, ["churn:v1"], 8000,
                                 extra=["--rate", "1000", "--id-prefix", "second"])
    time.sleep(1.5)
    os.kill(agent.pid, signal.SIGHUP)
    wait_for(lambda: "churn 1 1 5000" in open(rules_file).read(), 10,
             "the agent to publish the reloaded rules")
    time.sleep(3)  # the client looks at the file once a second
    after_reload = left_out()
    second = cluster.finish_loadgen(load)
    wait_for(lambda: m(agent, "modelwatch_agent_events_accepted_total") == EVENTS + 8000, 30,
             "the agent to count the second run")
    final = left_out()
    tap.check(second["sent"] == 8000 and after_reload > before and final == after_reload,
              "a running client follows the reloaded rules: it stops leaving payloads out",
              f"left out before the second run {before}, 3 s after the reload {after_reload}, "
              f"at its end {final}")
    kept_late = m(agent, "modelwatch_agent_sampled_without_payload_total")
    tap.check(kept_late <= final - before,
              "events encoded under the old rules and sampled under the new are counted",
              f"sampled_without_payload={kept_late}")
    # Whatever the client sent whole in the second run shipped.
    want_shipped = want_kept + 8000 - (final - before)
    final_shipped = m(agent, "modelwatch_agent_records_shipped_total")
    tap.check(final_shipped == want_shipped,
              "every payload the client sent after the reload shipped",
              f"shipped={final_shipped} want={want_shipped}")
    tap.check(cluster.stop(agent) == 0, "the agent exits 0 on SIGTERM")
    tap.check(not os.path.exists(rules_file), "a stopped agent removes its rules file")
    return want_shipped


def heads_only(tap, cluster):
    """An agent that does not take counts: the same client sends each unselected event's head."""
    agent = cluster.start_agent(name="heads", agent_id="agent-heads", extra=RULES,
                                intake_options=HEADS_ONLY)
    rules_file = agent.endpoint[len("ipc://"):] + ".sampling"
    with open(rules_file) as f:
        published = f.read().splitlines()
    tap.check(published[0] == PUBLISHED[0] and not any(p.startswith("count") for p in published),
              "with intake.count_at_source off the rules carry no count line", str(published))
    dump = os.path.join(cluster.dir, "sent-heads.csv")
    sent = cluster.loadgen(agent.endpoint, MODELS, EVENTS_PER_CLIENT,
                           extra=["--error-share", "0.1", "--dump-csv", dump,
                                  "--id-prefix", "heads"])
    rows = sent_rows(dump)
    want_kept = sum(1 for r in rows if selected(r))
    wait_for(lambda: m(agent, "modelwatch_agent_events_accepted_total") == EVENTS_PER_CLIENT, 30,
             "the heads-only agent to count every event")
    omitted = m(agent, "modelwatch_agent_events_payload_omitted_total")
    tap.check(sent["sent"] == EVENTS_PER_CLIENT and omitted == len(rows) - want_kept and
              m(agent, "modelwatch_agent_events_counted_by_client_total") == 0,
              f"the client sent the {len(rows) - want_kept} unselected events as heads",
              f"omitted={omitted}")
    tap.check(m(agent, "modelwatch_agent_records_shipped_total") == want_kept,
              f"the heads-only agent shipped exactly the {want_kept} selected payloads")
    tap.check(cluster.stop(agent) == 0, "the heads-only agent exits 0 on SIGTERM")
    return want_kept


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    audit = cluster.start_audit()
    agg = cluster.start_aggregator()
    # One whole window that ended a few minutes ago.
    start_ms = (int(time.time() * 1000) // fe.MINUTE_MS - 10) * fe.MINUTE_MS
    agent, want_kept = counting_clients(tap, cluster, agg, start_ms)
    want_shipped = follow_a_reload(tap, cluster, agent, want_kept)
    want_shipped += heads_only(tap, cluster)
    report = cluster.stop_audit(audit)
    origins = report["origins"].values()
    predictions = sum(o["predictions"] for o in origins)
    records = sum(o["records"] for o in origins)
    tap.check(predictions == EVENTS + 8000 + EVENTS_PER_CLIENT,
              "the topic's exact counters hold every event, counted ones included",
              f"predictions={predictions}")
    tap.check(records == want_shipped, "the topic holds exactly the payloads the agents shipped",
              f"records={records} want={want_shipped}")
    losses = fe.aggregator_losses(metrics(agg.http_port))
    tap.check(not any(losses.values()), "no DLQ record or other loss in the aggregator", losses)
    tap.check(cluster.stop(agg) == 0, "the aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
