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
"""
import re
import signal
import time

from agent_faults import family, start_agent
from harness import metrics, run, wait_for

EVENTS = 150_000
RATE = 10_000
MODEL = "churn"
# (signal, SIGSTOP first) per cycle
CYCLES = [(signal.SIGTERM, False), (signal.SIGKILL, True), (signal.SIGTERM, False),
          (signal.SIGKILL, False)]
AGENT_LOSSES = ["modelwatch_agent_events_lost_in_transit_total",
                "modelwatch_agent_messages_dropped_total", "modelwatch_agent_events_lost_total"]
COUNTED = f'modelwatch_predictions_total{{model="{MODEL}",version="v1"}}'


def losses_of(agent):
    """The agent's loss counters, read just before it is stopped (a killed agent's are gone
    after)."""
    m = metrics(agent.http_port)
    return {name: family(m, name) for name in AGENT_LOSSES}


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    endpoint = f"ipc://{cluster.dir}/agent.sock"
    spool = f"{cluster.dir}/spool"
    agent = start_agent(cluster, endpoint=endpoint, spool_dir=spool)
    load = cluster.start_loadgen(endpoint, [f"{MODEL}:v1"], EVENTS, extra=["--rate", str(RATE)])
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
        agent = start_agent(cluster, name=f"agent-{cycle + 2}", endpoint=endpoint,
                            spool_dir=spool)
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
        return metrics(agg.http_port).get(COUNTED, 0)
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


if __name__ == "__main__":
    run(main)
