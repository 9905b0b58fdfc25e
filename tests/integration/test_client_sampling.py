#!/usr/bin/env python3
"""Sampling at the source, through real processes: the agent publishes its rate rules beside
its socket, libmodelwatch leaves out the payload of every event the rate does not select, and
the counts stay exact.

The oracle is the sampling decision computed here from loadgen's dump of what it sent (ids,
status, latency) with the pinned unit hash (drift_oracle.unit), not from the agent's counters:
- the agent received exactly the unselected events without their payload, and kept none of
  them (sampled_without_payload stays 0);
- the topic's batches carry exactly the selected events as records and every event in the
  exact counters;
- the rules file says what the config says, follows a reload, and is gone when the agent
  stops; a client keeps following it, so after a reload that keeps everything the same client
  stops omitting within a few seconds.
"""
import csv
import os
import signal
import time

from drift_oracle import unit
from harness import metrics, run, wait_for

EVENTS = 6000
RULES = ("models:\n"
         "  - name: churn\n    sample_rate: 0.1\n    keep_errors: true\n"
         "    keep_slower_than: 5ms\n"
         "  - name: \"*\"\n    sample_rate: 0.25\n    keep_errors: false\n")
# What the agent must publish for RULES, sorted by name.
PUBLISHED = ["modelwatch-sampling 1", "churn 0.10000000000000001 1 5000", "* 0.25 0 0"]


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


def main(tap, cluster):
    cluster.start_devkafka()
    audit = cluster.start_audit()
    agent = cluster.start_agent(extra=RULES)
    rules_file = agent.endpoint[len("ipc://"):] + ".sampling"
    with open(rules_file) as f:
        published = f.read().splitlines()
    tap.check(sorted(published[1:]) == sorted(PUBLISHED[1:]) and published[0] == PUBLISHED[0],
              "the agent publishes its rate rules beside its socket", str(published))

    dump = os.path.join(cluster.dir, "sent.csv")
    sent = cluster.loadgen(agent.endpoint, ["churn:v1", "fraud:v1"], EVENTS,
                           extra=["--error-share", "0.1", "--dump-csv", dump])
    rows = sent_rows(dump)
    want_kept = sum(1 for r in rows if selected(r))
    want_omitted = len(rows) - want_kept
    tap.check(len(rows) == sent["sent"] == EVENTS, "loadgen sent every event",
              f"rows={len(rows)} sent={sent['sent']}")
    wait_for(lambda: m(agent, "modelwatch_agent_events_accepted_total") == EVENTS, 30,
             "the agent to count every event")
    omitted = m(agent, "modelwatch_agent_events_payload_omitted_total")
    tap.check(omitted == want_omitted,
              f"the client left out exactly the {want_omitted} payloads the rate does not "
              f"select ({want_kept} kept)", f"agent received {omitted} without payload")
    tap.check(m(agent, "modelwatch_agent_sampled_without_payload_total") == 0,
              "the agent's sampler kept none of them")
    shipped = m(agent, "modelwatch_agent_records_shipped_total")
    tap.check(shipped == want_kept, f"the agent shipped exactly the {want_kept} selected payloads",
              f"shipped {shipped}")

    # A reload that keeps everything: the same, long-running client follows it.
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
    omitted_after_reload = m(agent, "modelwatch_agent_events_payload_omitted_total")
    second = cluster.finish_loadgen(load)
    wait_for(lambda: m(agent, "modelwatch_agent_events_accepted_total") == EVENTS + 8000, 30,
             "the agent to count the second run")
    final_omitted = m(agent, "modelwatch_agent_events_payload_omitted_total")
    tap.check(second["sent"] == 8000 and omitted_after_reload > omitted and
              final_omitted == omitted_after_reload,
              "a running client follows the reloaded rules: it stops omitting payloads",
              f"omitted before the second run {omitted}, 3 s after the reload "
              f"{omitted_after_reload}, at its end {final_omitted}")
    kept_late = m(agent, "modelwatch_agent_sampled_without_payload_total")
    tap.check(kept_late <= final_omitted - omitted,
              "events encoded under the old rules and sampled under the new are counted",
              f"sampled_without_payload={kept_late}")
    # Before the reload client and agent agree; after it every payload ships; in between the
    # client omits what the agent would now keep (counted above): whatever the client sent
    # whole in the second run shipped.
    want_shipped = want_kept + 8000 - (final_omitted - omitted)
    final_shipped = m(agent, "modelwatch_agent_records_shipped_total")
    tap.check(final_shipped == want_shipped,
              "every payload the client sent after the reload shipped",
              f"shipped={final_shipped} want={want_shipped}")

    tap.check(cluster.stop(agent) == 0, "the agent exits 0 on SIGTERM")
    tap.check(not os.path.exists(rules_file), "a stopped agent removes its rules file")
    report = cluster.stop_audit(audit)
    origins = report["origins"].values()
    predictions = sum(o["predictions"] for o in origins)
    records = sum(o["records"] for o in origins)
    tap.check(predictions == EVENTS + 8000,
              "the topic's exact counters hold every event, omitted payloads included",
              f"predictions={predictions}")
    tap.check(records == want_shipped, "the topic holds exactly the payloads the agent shipped",
              f"records={records} want={want_shipped}")

if __name__ == "__main__":
    run(main)
