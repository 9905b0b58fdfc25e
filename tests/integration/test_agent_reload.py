#!/usr/bin/env python3
"""SIGHUP reloads the agent's sampling rules (a bad file changes nothing), and /readyz turns
false while the spool fills during a Kafka outage, true again once it holds less than its
readiness share (spool.ready_below of spool.max_bytes), and the spool then drains."""
import os
import signal
import time

from harness import http_get, metrics, run, wait_for


def shipped(agent):
    return metrics(agent.http_port)["modelwatch_agent_records_shipped_total"]


def accepted(agent):
    return metrics(agent.http_port)["modelwatch_agent_events_accepted_total"]


def main(tap, cluster):
    cluster.start_devkafka()
    agent = cluster.start_agent(extra="models:\n  - name: churn\n    sample_rate: 1\n",
                                spool_options="  max_bytes: 4MiB\n  segment_bytes: 1MiB\n"
                                "  ready_below: 0.1\n")
    config = os.path.join(cluster.dir, "agent.yaml")
    text = open(config).read()

    cluster.loadgen(agent.endpoint, ["churn:v1"], 1000)
    wait_for(lambda: shipped(agent) == 1000, 30, "every payload shipped at rate 1")
    tap.check(True, "rate 1 ships every payload")

    open(config, "w").write(text.replace("sample_rate: 1", "sample_rate: 0"))
    os.kill(agent.pid, signal.SIGHUP)
    time.sleep(1)
    cluster.loadgen(agent.endpoint, ["churn:v1"], 1000, extra=["--seed", "2"])
    wait_for(lambda: accepted(agent) == 2000, 30, "the agent to count the next events")
    tap.check(shipped(agent) == 1000, "after SIGHUP with rate 0 no payload ships",
              str(shipped(agent)))

    open(config, "w").write(text.replace("sample_rate: 1", "sample_rate: 2"))
    os.kill(agent.pid, signal.SIGHUP)
    time.sleep(1)
    tap.check(agent.poll() is None and "reload refused" in cluster.log_of(agent),
              "an invalid file on SIGHUP is refused and the agent keeps running")
    cluster.loadgen(agent.endpoint, ["churn:v1"], 500, extra=["--seed", "3"])
    wait_for(lambda: accepted(agent) == 2500, 30, "the agent to count the next events")
    tap.check(shipped(agent) == 1000, "the rules in force stay those of the last good file")

    open(config, "w").write(text)
    os.kill(agent.pid, signal.SIGHUP)
    time.sleep(1)
    tap.check(http_get(agent.http_port, "/readyz")[0] == 200, "ready with an empty spool")
    tap.check(cluster.devkafka_cmd("down all").startswith("ok"), "Kafka down")
    cluster.loadgen(agent.endpoint, ["churn:v1"], 20000, extra=["--seed", "4"])
    wait_for(lambda: http_get(agent.http_port, "/readyz")[0] == 503, 30,
             "/readyz to fail while the spool fills")
    tap.check(metrics(agent.http_port)["modelwatch_agent_spool_bytes"] > 0.1 * 4 * 2**20,
              "/readyz fails once the spool holds more than its readiness share")
    tap.check(cluster.devkafka_cmd("up all").startswith("ok"), "Kafka back")
    wait_for(lambda: http_get(agent.http_port, "/readyz")[0] == 200, 60,
             "/readyz to recover once the spool drains")
    tap.check(metrics(agent.http_port)["modelwatch_agent_spool_bytes"] < 0.1 * 4 * 2**20,
              "ready again with the spool under its readiness share")
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_spool_batches"] == 0, 30,
             "the spool to drain")
    tap.check(metrics(agent.http_port)["modelwatch_agent_spool_bytes"] == 0,
              "the spool drained")
    tap.check(cluster.stop(agent) == 0, "agent exits 0")


if __name__ == "__main__":
    run(main)
