#!/usr/bin/env python3
"""Bad input on the agent's socket: 10,000 random byte strings and 100 oversized messages are
dropped and counted by reason; valid events before and after are all accepted; the agent keeps
serving and stops cleanly."""
from harness import metrics, run, wait_for

JUNK = 10_000
OVERSIZE = 100
VALID = 1_000


def main(tap, cluster):
    cluster.start_devkafka()
    agent = cluster.start_agent()
    sent = cluster.loadgen(agent.endpoint, ["churn:v1"], VALID,
                           extra=["--junk", str(JUNK), "--oversize", str(OVERSIZE),
                                  "--oversize-bytes", "200000"])
    tap.check(sent["junk_sent"] == JUNK and sent["oversize_sent"] == OVERSIZE,
              "loadgen sent the junk and the oversized messages", str(sent))
    total = VALID + JUNK + OVERSIZE
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_messages_received_total"] == total,
             60, "the agent to read every message")
    m = metrics(agent.http_port)
    dropped = {k: v for k, v in m.items() if k.startswith("modelwatch_agent_messages_dropped_total")}
    tap.check(m['modelwatch_agent_messages_dropped_total{reason="oversize"}'] == OVERSIZE,
              "oversized messages counted", str(dropped))
    junk_dropped = (m['modelwatch_agent_messages_dropped_total{reason="malformed"}'] +
                    m['modelwatch_agent_messages_dropped_total{reason="invalid_name"}'])
    tap.check(junk_dropped == JUNK, "every random byte string dropped and counted", str(dropped))
    tap.check(m["modelwatch_agent_events_accepted_total"] == VALID, "valid events all accepted")
    again = cluster.loadgen(agent.endpoint, ["churn:v1"], VALID, extra=["--seed", "5"])
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]
             == VALID + again["sent"], 30, "the agent to keep serving")
    tap.check(True, "the agent keeps serving after bad input")
    tap.check(cluster.stop(agent) == 0, "agent exits 0 on SIGTERM")


if __name__ == "__main__":
    run(main)
