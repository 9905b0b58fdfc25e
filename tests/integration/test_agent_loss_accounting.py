#!/usr/bin/env python3
"""Every event a client handed over is counted by the aggregator or reported lost, exactly.

One client sends 150,000 events at 10,000 events/s while its agent (same endpoint, same spool
and state file) is stopped and restarted four times: SIGTERM; SIGSTOP then SIGKILL (the
client keeps sending into the stopped agent's socket, so events are certainly lost in
transit as well as unsealed); SIGTERM; SIGKILL under load. nanomsg acknowledges nothing, so
events handed to a connection that died used to be counted by nobody. Now each client batch
carries the client's id and how many messages and events it sent before it; each agent keeps,
in its state file, how far it received each client, and the next agent reports a jump as events
lost in transit (and logs it, naming the client), while events the dead agent received but
never sealed are reported once, as lost before start.

    events the client accepted == events the aggregator counted
                                  + lost in transit + lost unsealed + every other loss counter

The whole run is done twice: once with every payload shipped, once with a rate of 0.1, where
the client counts the nine events in ten the rate leaves out and sends their counters
(ClientMessage.counts, a message that stands for many events in the stream's numbering).
"""
import re
import signal
import time

from agent_faults import family, start_agent
from harness import metrics, run, wait_for

EVENTS = 150_000
RATE = 10_000
# (model, agent config extra, what) per run
RUNS = [("churn", "", "every payload shipped"),
        ("counted", 'models:\n  - name: "*"\n    sample_rate: 0.1\n',
         "the client counting what the rate leaves out")]
# (signal, SIGSTOP first) per cycle
CYCLES = [(signal.SIGTERM, False), (signal.SIGKILL, True), (signal.SIGTERM, False),
          (signal.SIGKILL, False)]
AGENT_LOSSES = ["modelwatch_agent_events_lost_in_transit_total",
                "modelwatch_agent_messages_dropped_total", "modelwatch_agent_events_lost_total"]


def losses_of(agent):
    """The agent's loss counters, read just before it is stopped (a killed agent's are gone
    after)."""
    m = metrics(agent.http_port)
    out = {name: family(m, name) for name in AGENT_LOSSES}
    out["counted_by_client"] = m.get("modelwatch_agent_events_counted_by_client_total", 0)
    return out


class Prefixed:
    """The TAP writer, each check's description prefixed with the run's name."""

    def __init__(self, tap, what):
        self.tap, self.what = tap, what

    def check(self, cond, description, detail=""):
        return self.tap.check(cond, f"{self.what}: {description}", detail)


def scenario(tap, cluster, agg, model, extra, what):
    counted_metric = f'modelwatch_predictions_total{{model="{model}",version="v1"}}'
    endpoint = f"ipc://{cluster.dir}/agent-{model}.sock"
    spool = f"{cluster.dir}/spool-{model}"
    agent = start_agent(cluster, name=f"agent-{model}-1", endpoint=endpoint, spool_dir=spool,
                        extra=extra)
    load = cluster.start_loadgen(endpoint, [f"{model}:v1"], EVENTS, extra=["--rate", str(RATE)])
    per_agent = []
    agents = [agent]
    exits = []
    for cycle, (sig, stop_first) in enumerate(CYCLES):
        time.sleep(2.5)
        losses = losses_of(agent)  # a stopped agent neither answers nor changes them
        if stop_first:
            agent.send_signal(signal.SIGSTOP)
            time.sleep(1)  # the client keeps sending into the socket nobody reads
        exits.append(cluster.stop(agent, sig=sig))
        agent = start_agent(cluster, name=f"agent-{model}-{cycle + 2}", endpoint=endpoint,
                            spool_dir=spool, extra=extra)
        agents.append(agent)
        lost_before = metrics(agent.http_port)["modelwatch_agent_events_lost_before_start"]
        per_agent.append({"signal": sig.name, **losses, "next_lost_before_start": lost_before})
    tap.check(exits == [0, -9, 0, -9], "SIGTERM exits 0, SIGKILL kills", str(exits))
    sent = cluster.finish_loadgen(load)
    # (`dropped` counts refusals while the client's buffer was full; loadgen retried them)
    tap.check(sent["failed"] == 0 and sent["flushed"],
              "the client accepted every event and handed it over", str(sent))
    wait_for(lambda: (lambda m: m["modelwatch_agent_spool_batches"] == 0 and
                      m["modelwatch_agent_kafka_in_flight_batches"] == 0)(
                          metrics(agent.http_port)), 60, "the last agent to deliver")
    last = losses_of(agent)
    tap.check(cluster.stop(agent) == 0, "the last agent exits 0")
    per_agent.append({"signal": "none", **last, "next_lost_before_start": 0})
    by_client = sum(a["counted_by_client"] for a in per_agent)
    if extra:
        tap.check(by_client > EVENTS // 2, "the client counted most events itself",
                  f"events taken as counts: {by_client}")
    else:
        tap.check(by_client == 0, "no rules, no counts", f"events taken as counts: {by_client}")

    in_transit = sum(a["modelwatch_agent_events_lost_in_transit_total"] for a in per_agent)
    unsealed = sum(a["next_lost_before_start"] for a in per_agent)
    other = sum(a["modelwatch_agent_messages_dropped_total"] +
                a["modelwatch_agent_events_lost_total"] for a in per_agent)
    for i, a in enumerate(per_agent):
        print(f"# agent {i + 1}: {a}", flush=True)
    stopped_kill = per_agent[1]
    # The agent after the SIGSTOP + SIGKILL reports the events that died in the socket.
    tap.check(per_agent[2]["modelwatch_agent_events_lost_in_transit_total"] > 0,
              "events sent into a stopped agent that was then killed are reported lost in "
              "transit by the next agent", str(per_agent[2]))
    tap.check(stopped_kill["next_lost_before_start"] > 0,
              "... and the events it received but never sealed as lost before start",
              str(stopped_kill))
    with open(agents[2].mw_log, errors="replace") as f:
        log = f.read()
    tap.check(re.search(r'msg="messages a client handed over never arrived \(lost in transit\)" '
                        r'client=[0-9a-f]{16} events_lost=[1-9]', log) is not None,
              "the next agent logs the loss, naming the client")

    expected = sent["sent"] - in_transit - unsealed - other

    def counted():
        return metrics(agg.http_port).get(counted_metric, 0)
    try:
        wait_for(lambda: counted() == expected, 60, "the aggregator to count what arrived")
    except Exception:
        pass
    time.sleep(2)  # anything more would show now
    got = counted()
    print(f"# sent={sent['sent']} counted={got} in_transit={in_transit} unsealed={unsealed} "
          f"other={other}", flush=True)
    tap.check(got + in_transit + unsealed + other == sent["sent"],
              "events sent == counted by the aggregator + lost in transit + lost unsealed + "
              "other losses, exactly",
              f"sent={sent['sent']} counted={got} in_transit={in_transit} unsealed={unsealed} "
              f"other={other}")


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    for model, extra, what in RUNS:
        scenario(Prefixed(tap, what), cluster, agg, model, extra, what)


if __name__ == "__main__":
    run(main)
