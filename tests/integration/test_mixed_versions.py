#!/usr/bin/env python3
"""Mixed versions with real processes: an older build's client and agent against this build's.

Clients, agents and aggregators are upgraded one fleet at a time, so for a while an old
libmodelwatch talks to a new agent, a new libmodelwatch to an old agent, and old agents ship
to new aggregators (proto/telemetry.proto, "Rules for changing this file"). The old version is
this repository's own history at OLD_COMMIT, built once into <build>/compat/<commit>/ (only
the agent and loadgen, which links libmodelwatch statically) and reused by later runs.

Four scenarios, each 3,000 events over two models and two windows, 5 % of them errors, half
of them labelled, into this build's aggregator:
  old client -> new agent, new client -> old agent (which is also old agent -> new
  aggregator), old client -> old agent as the control, and new client -> old agent that took
  the socket of a new agent killed with its sampling rules file left behind (a downgrade after
  a crash: the client must send whole events, or the old agent would ship them without the
  payloads its own rate keeps, and the labels would find no score to join).
Each must count exactly: the agent accepts every event and label and drops no message, it
drains, and the aggregator's windows hold exactly loadgen's counts per model, version and
window; with every payload shipped (sample rate 1), each window's records equal its count,
errors and joined labels equal what the CSV of sent events says, and every label's delay is
the 1 s it was sent with; no loss, DLQ record or invalid prediction anywhere.

Two more against HEADS_COMMIT, the last version whose client sends an event the rate leaves
out as its head (it reads the agent's rules file but refuses one with a count line) and whose
agent publishes its rules without a count line, at a rate of 0.1: a heads client -> this
agent (it must send every event whole: the agent counts and samples them all itself), and this
client -> a heads agent (it must send heads, never counts). Each counts exactly, per window,
and ships exactly the events the rate selects (computed from the CSV with the pinned hash).

Where the source tree is not a git checkout holding OLD_COMMIT and HEADS_COMMIT (a release
tarball, a shallow clone), the test says so as a TAP SKIP: it cannot build the old side there.
"""
import csv
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))

import fault_env as fe  # noqa: E402
from agent_faults import family  # noqa: E402
from drift_oracle import unit  # noqa: E402
from harness import TestFailure, api_data, metrics, run, wait_for  # noqa: E402

# The last version whose client packed events with protobuf-c and whose agent decoded them
# with protobuf-c; after it the client writes an event's bytes itself (agent/client/event_wire.c)
# and the agent reads an event's head off the wire (agent/client_message.c). Bumped when a newer
# version becomes a compatibility boundary that must be kept.
OLD_COMMIT = "2c12167a06df4f28c2e7fe2d8d8c41b7cfc76464"
# The last version before clients counted at the source (ClientMessage.counts).
HEADS_COMMIT = "3c4a481f6b139cb07dbc62b65b7324eca0397373"
OLD_TARGETS = ("agent/modelwatch-agent", "tools/modelwatch-loadgen")
SOURCE_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD_LOG_LINES = 40  # of a failed old build, in the failure's detail

EVENTS = 3_000
WINDOWS = 2
ERROR_SHARE = 0.05
LABEL_SHARE = 0.5
LABEL_DELAY_MS = 1_000  # a label's time is its prediction's plus this: the same window

# Every payload ships, so the windows' records count the events the aggregator decoded whole,
# not just the agent's counters.
SHIP_EVERY_PAYLOAD = 'models:\n  - name: "*"\n    sample_rate: 1\n'
# A tenth of the payloads, by the rate alone: what a client may leave out or count.
TENTH = 'models:\n  - name: "*"\n    sample_rate: 0.1\n    keep_errors: false\n'


class OldVersionUnavailable(Exception):
    """This source tree cannot give the old version (not a failure of the code under test)."""


def git(*args):
    return subprocess.run(["git", "-C", SOURCE_ROOT] + list(args), capture_output=True)


def why_no_old_source(commit):
    """None when `commit` can be read from SOURCE_ROOT's history, else why not."""
    if not shutil.which("git"):
        return "git is not installed, so the old version cannot be checked out"
    if git("rev-parse", "--git-dir").returncode != 0:
        return f"{SOURCE_ROOT} is not a git checkout (a release tarball?): no {commit[:12]}"
    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        shallow = git("rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
        return (f"commit {commit[:12]} is not in {SOURCE_ROOT}'s history"
                + (" (a shallow clone)" if shallow else ""))
    return None


def build_step(argv, log, what):
    log.write(f"$ {' '.join(argv)}\n".encode())
    log.flush()
    rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        env=build_env()).returncode
    if rc != 0:
        raise TestFailure(f"{what} failed ({rc})")


def build_env():
    """This environment without the sanitizer settings meant for the processes under test."""
    env = dict(os.environ)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD"):
        env.pop(var, None)
    return env


def old_binaries(build_dir, commit):
    """{target: path} of an old version's agent and loadgen, built into
    <build_dir>/compat/<commit>/ the first time and reused after that. Holds an exclusive lock
    on the cache while it looks and builds, so that concurrent runs build once. Raises
    OldVersionUnavailable when the source tree cannot give the commit, TestFailure with the
    build's last lines when it does not build."""
    cache = os.path.join(build_dir, "compat", commit)
    os.makedirs(cache, exist_ok=True)
    src = os.path.join(cache, "src")
    obj = os.path.join(cache, "build")
    binaries = {t: os.path.join(obj, t) for t in OLD_TARGETS}
    built_stamp = os.path.join(cache, "built")
    with open(os.path.join(cache, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(built_stamp) and all(map(os.path.exists, binaries.values())):
            print(f"# old version {commit[:12]}: reusing its build in {obj}", flush=True)
            return binaries
        why = why_no_old_source(commit)
        if why:
            raise OldVersionUnavailable(why)
        started = time.monotonic()
        log_path = os.path.join(cache, "build.log")
        try:
            with open(log_path, "wb") as log:
                if not os.path.isdir(src):
                    extract(src, log, commit)
                if not os.path.exists(os.path.join(obj, "build.ninja")):
                    shutil.rmtree(obj, ignore_errors=True)  # a setup that did not finish
                    build_step(["meson", "setup", "--buildtype", "debugoptimized",
                                "-Dtests=false", obj, src], log, "meson setup of the old version")
                build_step(["ninja", "-C", obj] + list(OLD_TARGETS), log,
                           "ninja of the old version")
        except TestFailure as e:
            with open(log_path, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-BUILD_LOG_LINES:]
            raise TestFailure(f"{e}; last lines of {log_path}:\n" + "\n".join(tail)) from None
        with open(built_stamp, "w") as f:
            f.write(commit + "\n")
        print(f"# old version {commit[:12]} built in {time.monotonic() - started:.1f} s "
              f"({', '.join(OLD_TARGETS)}, in {obj})", flush=True)
    return binaries


def extract(src, log, commit):
    """The old commit's tree, from `git archive` (no worktree: the repository's metadata stays
    as it is), into src; written aside first so that an interrupted run leaves no half tree."""
    partial = src + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    archive = subprocess.Popen(["git", "-C", SOURCE_ROOT, "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE, stderr=log)
    untar = subprocess.run(["tar", "-x", "-C", partial], stdin=archive.stdout, stderr=log)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise TestFailure(f"git archive {commit[:12]} | tar -x failed")
    os.rename(partial, src)


def windows_of(port, model, from_ms, to_ms):
    return api_data(port, f"/api/v1/models/{model}/windows?from={from_ms}&to={to_ms}"
                          f"&limit=10000")["windows"]


def performance_total(windows, key):
    """Sum of one count of the windows' joined labels ("labelled", or "n" of the binary
    metrics) over windows that have any."""
    total = 0
    for w in windows:
        perf = w["performance"]
        if key == "labelled":
            total += perf["labels"]["labelled"]
        elif perf["binary"]:
            total += perf["binary"]["n"]
    return total


def leave_stale_rules(tap, cluster, name, what):
    """A new agent on `name`'s socket that publishes a rate of 0.1 (common/sampling_rules.h) and
    is killed with SIGKILL, so that its rules file outlives it."""
    agent = cluster.start_agent(name=name, agent_id=f"{name}-killed",
                                extra='models:\n  - name: "*"\n    sample_rate: 0.1\n',
                                spool_dir=os.path.join(cluster.dir, f"{name}-killed-spool"))
    rules = agent.endpoint[len("ipc://"):] + ".sampling"
    wait_for(lambda: os.path.exists(rules), 10, "the new agent to publish its rules")
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    tap.check(os.path.exists(rules), f"{what}: the killed agent's rules file is left behind")


def check_windows_exact(tap, agg, names, start_ms, sent, what):
    """The aggregator's windows of `names` hold exactly loadgen's counts per model, version and
    window; returns the last window's end."""
    to_ms = start_ms + WINDOWS * fe.MINUTE_MS - 1
    got = fe.wait_counted(agg.http_port, names, start_ms, to_ms, EVENTS, 60,
                          f"{what}: the windows")
    want = fe.expected_counts(sent)
    tap.check(got == want, f"{what}: windows hold exactly loadgen's counts per model, version "
              "and window", f"want {want}\ngot  {got}")
    return to_ms


def scenario(tap, cluster, agg, key, what, loadgen_binary, agent_binary, start_ms,
             stale_rules=False):
    """One mix of versions: `loadgen_binary` (its client) -> `agent_binary` -> this build's
    aggregator, checked count by count. With `stale_rules` the agent takes the socket of a new
    agent killed before it could remove its sampling rules: a client must not follow them (the
    old agent would ship events without the payloads its own rate keeps)."""
    predictions_before = metrics(agg.http_port).get("modelwatch_aggregator_predictions_total", 0)
    if stale_rules:
        leave_stale_rules(tap, cluster, f"agent-{key}", what)
    agent = cluster.start_agent(name=f"agent-{key}", agent_id=f"agent-{key}",
                                extra=SHIP_EVERY_PAYLOAD, binary=agent_binary)
    models = [f"churn-{key}:v3", f"fraud-{key}:v1"]
    names = [m.split(":")[0] for m in models]
    dump = os.path.join(cluster.dir, f"sent-{key}.csv")
    sent = cluster.loadgen(agent.endpoint, models, EVENTS, windows=WINDOWS, start_ms=start_ms,
                           extra=["--error-share", str(ERROR_SHARE), "--labels", str(LABEL_SHARE),
                                  "--label-delay-ms", str(LABEL_DELAY_MS), "--dump-csv", dump],
                           binary=loadgen_binary)
    with open(dump, newline="") as f:
        rows = list(csv.DictReader(f))
    labelled = [r for r in rows if r["label"] != ""]
    labels = sent["labels_sent"]
    tap.check(sent["failed"] == 0 and sent["flushed"] and len(rows) == EVENTS and
              labels == len(labelled) > 0 and sent["sent"] == EVENTS + labels,
              f"{what}: loadgen handed over {EVENTS} events and every label", sent)

    def agent_took_all():
        m = metrics(agent.http_port)
        return (m["modelwatch_agent_events_accepted_total"] >= EVENTS and
                m["modelwatch_agent_feedback_accepted_total"] >= labels)
    wait_for(agent_took_all, 60, f"{what}: the agent to accept {EVENTS} events, {labels} labels")

    to_ms = check_windows_exact(tap, agg, names, start_ms, sent, what)

    for name in names:
        mine = [r for r in rows if r["model"] == name]
        mine_labelled = [r for r in mine if r["label"] != ""]

        def joined(name=name, n=len(mine_labelled)):
            return performance_total(windows_of(agg.http_port, name, start_ms, to_ms),
                                     "labelled") >= n
        wait_for(joined, 60, f"{what}: {name}'s {len(mine_labelled)} labels to join")
        ws = windows_of(agg.http_port, name, start_ms, to_ms)
        errors = sum(r["status"] == "error" for r in mine)
        tap.check(sum(w["errors"] for w in ws) == errors > 0 and
                  all(w["errors_by_code"].get("timeout", 0) == w["errors"] for w in ws),
                  f"{what}: {name}: {errors} errors, all with their code",
                  [(w["errors"], w["errors_by_code"]) for w in ws])
        tap.check(all(w["records"] == w["count"] and w["weighted_records"] == w["count"]
                      for w in ws),
                  f"{what}: {name}: every event's payload reached the aggregator (records = "
                  "count, each of weight 1)",
                  [(w["count"], w["records"], w["weighted_records"]) for w in ws])
        tap.check(sum(w["feedback"] for w in ws) == len(mine_labelled),
                  f"{what}: {name}: {len(mine_labelled)} labels counted",
                  [w["feedback"] for w in ws])
        n_joined = performance_total(ws, "labelled")
        n_binary = performance_total(ws, "n")
        tap.check(n_joined == n_binary == len(mine_labelled),
                  f"{what}: {name}: each label joined its prediction once",
                  f"labelled {n_joined} binary n {n_binary} sent {len(mine_labelled)}")
        # The aggregator's threshold is 0.5, as loadgen's predicted class: a window's accuracy
        # times its n is the number of labels that agree with the score, an integer.
        right = sum((float(r["prediction"]) >= 0.5) == (r["label"] == "1") for r in mine_labelled)
        binaries = [w["performance"]["binary"] for w in ws if w["performance"]["binary"]]
        got_right = sum(round(b["accuracy"] * b["n"]) for b in binaries)
        tap.check(got_right == right, f"{what}: {name}: {right} labels agree with the score",
                  f"aggregator: {got_right}")
        delays = [w["performance"]["labels"]["mean_delay_ms"] for w in ws
                  if w["performance"]["labels"]["labelled"]]
        tap.check(delays and all(d == LABEL_DELAY_MS for d in delays),
                  f"{what}: {name}: every label arrived with the event time it was sent with "
                  f"(delay {LABEL_DELAY_MS} ms)", delays)

    wait_for(lambda: fe.agent_drained(agent.http_port), 60, f"{what}: the agent to drain")
    m = metrics(agent.http_port)
    counts = {k: int(family(m, k)) for k in (
        "modelwatch_agent_events_accepted_total", "modelwatch_agent_feedback_accepted_total",
        "modelwatch_agent_records_shipped_total", "modelwatch_agent_messages_dropped_total",
        "modelwatch_agent_client_stream_errors_total", "modelwatch_agent_batches_sealed_total",
        "modelwatch_agent_batches_delivered_total")}
    tap.check(counts["modelwatch_agent_events_accepted_total"] == EVENTS and
              counts["modelwatch_agent_feedback_accepted_total"] == labels,
              f"{what}: the agent accepted exactly {EVENTS} events and {labels} labels", counts)
    tap.check(counts["modelwatch_agent_messages_dropped_total"] == 0 and
              counts["modelwatch_agent_client_stream_errors_total"] == 0,
              f"{what}: the agent dropped no client message as malformed or otherwise", counts)
    tap.check(counts["modelwatch_agent_records_shipped_total"] == EVENTS + labels and
              counts["modelwatch_agent_batches_delivered_total"] ==
              counts["modelwatch_agent_batches_sealed_total"] > 0,
              f"{what}: the agent shipped every payload and Kafka acknowledged every batch", counts)
    losses = fe.agent_losses(m)
    tap.check(not any(losses.values()), f"{what}: the agent reports no lost event", losses)

    m = metrics(agg.http_port)
    applied = m["modelwatch_aggregator_predictions_total"] - predictions_before
    tap.check(applied == EVENTS, f"{what}: the aggregator counted {EVENTS} predictions",
              f"it counted {applied}")
    losses = fe.aggregator_losses(m)
    tap.check(not any(losses.values()),
              f"{what}: no DLQ record, invalid prediction or other loss in the aggregator", losses)
    tap.check(cluster.stop(agent) == 0, f"{what}: the agent exits 0 on SIGTERM")


def rate_scenario(tap, cluster, agg, key, what, loadgen_binary, agent_binary, start_ms,
                  want_heads):
    """A heads client or agent against this build's, at TENTH: every event counted exactly, the
    selected ones shipped, and the unselected ones sent as heads (want_heads) or whole, never
    as counts."""
    agent = cluster.start_agent(name=f"agent-{key}", agent_id=f"agent-{key}", extra=TENTH,
                                binary=agent_binary)
    models = [f"churn-{key}:v3", f"fraud-{key}:v1"]
    names = [m.split(":")[0] for m in models]
    dump = os.path.join(cluster.dir, f"sent-{key}.csv")
    sent = cluster.loadgen(agent.endpoint, models, EVENTS, windows=WINDOWS, start_ms=start_ms,
                           extra=["--error-share", str(ERROR_SHARE), "--dump-csv", dump],
                           binary=loadgen_binary)
    with open(dump, newline="") as f:
        rows = list(csv.DictReader(f))
    selected = sum(unit(r["prediction_id"]) < 0.1 for r in rows)
    tap.check(sent["failed"] == 0 and len(rows) == sent["sent"] == EVENTS,
              f"{what}: loadgen handed over {EVENTS} events", sent)
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] >= EVENTS,
             60, f"{what}: the agent to accept {EVENTS} events")
    check_windows_exact(tap, agg, names, start_ms, sent, what)
    wait_for(lambda: fe.agent_drained(agent.http_port), 60, f"{what}: the agent to drain")
    m = metrics(agent.http_port)
    counts = {k: int(family(m, k)) for k in (
        "modelwatch_agent_events_accepted_total", "modelwatch_agent_records_shipped_total",
        "modelwatch_agent_messages_dropped_total", "modelwatch_agent_events_payload_omitted_total",
        "modelwatch_agent_events_counted_by_client_total")}
    tap.check(counts["modelwatch_agent_events_accepted_total"] == EVENTS and
              counts["modelwatch_agent_messages_dropped_total"] == 0 and
              counts["modelwatch_agent_records_shipped_total"] == selected,
              f"{what}: the agent counted all {EVENTS} and shipped exactly the {selected} the "
              "rate selects", counts)
    omitted = EVENTS - selected if want_heads else 0
    tap.check(counts["modelwatch_agent_events_payload_omitted_total"] == omitted and
              counts["modelwatch_agent_events_counted_by_client_total"] == 0,
              f"{what}: the client sent the unselected events "
              f"{'as heads' if want_heads else 'whole'}, never as counts", counts)
    losses = fe.agent_losses(m)
    tap.check(not any(losses.values()), f"{what}: the agent reports no lost event", losses)
    tap.check(cluster.stop(agent) == 0, f"{what}: the agent exits 0 on SIGTERM")


def main(tap, cluster):
    try:
        old = old_binaries(cluster.build_dir, OLD_COMMIT)
        heads = old_binaries(cluster.build_dir, HEADS_COMMIT)
    except OldVersionUnavailable as e:
        tap.skip(f"mixed versions not run: {e}")
        return
    new_agent = cluster.binary("agent/modelwatch-agent")
    new_loadgen = cluster.binary("tools/modelwatch-loadgen")
    old_agent, old_loadgen = old["agent/modelwatch-agent"], old["tools/modelwatch-loadgen"]

    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    # Two whole windows that ended a few minutes ago; each scenario has models of its own, so
    # its windows and watermarks are its own too.
    start_ms = (int(time.time() * 1000) // fe.MINUTE_MS - 10) * fe.MINUTE_MS
    for key, what, loadgen_binary, agent_binary, stale in (
            ("oldclient", "old client -> new agent", old_loadgen, new_agent, False),
            ("oldagent", "new client -> old agent", new_loadgen, old_agent, False),
            ("oldboth", "old client -> old agent", old_loadgen, old_agent, False),
            ("downgraded", "new client -> old agent after a new one was killed", new_loadgen,
             old_agent, True)):
        try:
            scenario(tap, cluster, agg, key, what, loadgen_binary, agent_binary, start_ms,
                     stale_rules=stale)
        except TestFailure as e:  # the other mixes still say whether they work
            tap.check(False, f"{what}: the scenario ran to its end", str(e))
    heads_agent, heads_loadgen = heads["agent/modelwatch-agent"], heads["tools/modelwatch-loadgen"]
    for key, what, loadgen_binary, agent_binary, want_heads in (
            ("headsclient", "heads client -> counting agent", heads_loadgen, new_agent, False),
            ("headsagent", "counting client -> heads agent", new_loadgen, heads_agent, True)):
        try:
            rate_scenario(tap, cluster, agg, key, what, loadgen_binary, agent_binary, start_ms,
                          want_heads)
        except TestFailure as e:
            tap.check(False, f"{what}: the scenario ran to its end", str(e))
    tap.check(cluster.stop(agg) == 0, "the aggregator exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
