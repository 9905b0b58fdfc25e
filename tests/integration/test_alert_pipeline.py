#!/usr/bin/env python3
"""The pipeline's own alert rules with real processes: an agent that drops events and a
replica that sends records to the dead-letter topic page, naming the agent, and resolve.

  - the agent's health reaches Redis on its batches: after normal traffic its sample says 0
    dropped; after 50 oversized messages it says exactly 50 (mw:{pipeline}:agents);
  - AgentDropping (agent_drops > 0) pages once with the agent's label, and resolves once the
    agent drops nothing more, with the same dedup_key;
  - 20 random records go to the dead-letter topic: mw:{pipeline}:dlq:<minute> counts exactly
    20, DeadLetters (dlq_rate > 0 over the last whole minute) pages once, and resolves after a
    minute without dead letters;
  - normal traffic alone pages nothing.
"""
import json
import subprocess
import time

import alert_env as env
from harness import TestFailure, metrics, run, wait_for
from resp import Redis

RULES = """groups:
  - name: pipeline
    interval: 1s
    rules:
      - name: AgentDropping
        signal: agent_drops
        comparison: ">"
        threshold: 0
        keep_firing_for: 5s     # one evaluation sees the drops: longer than group_wait
        severity: critical
        annotations:
          summary: "{{ $labels.agent }} drops {{ $value }} events/s"
      - name: DeadLetters
        signal: dlq_rate
        comparison: ">"
        threshold: 0
        severity: critical
        annotations:
          summary: "{{ $value }} records/s go to the dead-letter topic"
"""
OVERSIZE = 50
JUNK = 20


def agent_sample(redis, agent_id):
    raw = redis("HGET", "mw:{pipeline}:agents", agent_id)
    if raw is None:
        return None
    boot, sealed_at, sequence, dropped, spool, spool_max = raw.decode().split("|")
    return {"boot": boot, "dropped": int(dropped), "spool": int(spool),
            "spool_max": int(spool_max)}


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(cluster, receiver, RULES))
    agent = cluster.start_agent(agent_id="pod-7")
    redis = Redis(cluster.redis_port)

    cluster.loadgen(agent.endpoint, ["churn:v1"], 500)
    wait_for(lambda: agent_sample(redis, "pod-7") is not None, 30,
             "the agent's health sample in Redis")
    s = agent_sample(redis, "pod-7")
    tap.check(s["dropped"] == 0 and s["spool_max"] > 0,
              "after normal traffic the agent's sample says nothing dropped", str(s))
    time.sleep(4)  # several evaluations of both rules
    tap.check(receiver.pd_events() == [], "normal traffic pages nothing",
              json.dumps(receiver.pd_events())[:500])

    cluster.loadgen(agent.endpoint, ["churn:v1"], 200,
                    extra=["--oversize", str(OVERSIZE), "--oversize-bytes", "200000", "--seed", "3"])
    wait_for(lambda: metrics(agent.http_port)
             ['modelwatch_agent_messages_dropped_total{reason="oversize"}'] == OVERSIZE, 30,
             "the agent to drop the oversized messages")
    wait_for(lambda: agent_sample(redis, "pod-7")["dropped"] == OVERSIZE, 30,
             "the sample to carry the drops")
    tap.check(agent_sample(redis, "pod-7")["dropped"] == OVERSIZE,
              f"the agent's sample in Redis says exactly {OVERSIZE} dropped")
    wait_for(lambda: len(receiver.pd_incident("AgentDropping")) >= 2, 60,
             "AgentDropping to page and resolve")
    time.sleep(3)  # nothing more may follow
    drops = receiver.pd_incident("AgentDropping")
    tap.check([e["event_action"] for e in drops] == ["trigger", "resolve"],
              "AgentDropping paged once and resolved once",
              json.dumps([e["event_action"] for e in drops]))
    page = drops[0]
    labels = page["payload"]["custom_details"]["alerts"][0]["labels"]
    tap.check(labels.get("agent") == "pod-7" and "model" not in labels,
              "the page names the agent, not a model", json.dumps(labels))
    tap.check(page["payload"]["summary"].startswith("pod-7 drops "),
              "the summary is rendered with the agent", page["payload"]["summary"])
    tap.check(page["payload"]["class"] == "agent_drops" and page["payload"]["severity"] == "critical",
              "class and severity", json.dumps(page["payload"])[:300])
    tap.check(drops[1]["dedup_key"] == page["dedup_key"], "the resolve has the trigger's dedup_key")

    out = subprocess.run([cluster.binary("tests/integration/mw-produce-junk"), "-b",
                          cluster.bootstrap_file, "-r", str(JUNK)], capture_output=True,
                         timeout=120)
    if out.returncode != 0:
        raise TestFailure(f"mw-produce-junk failed: {out.stderr.decode()}")

    def dlq_total():
        return sum(v for k, v in metrics(agg.http_port).items()
                   if k.startswith("modelwatch_aggregator_dlq_records_total"))
    wait_for(lambda: dlq_total() == JUNK, 60, "every junk record to reach the dead-letter topic")
    def counted():  # each counts once the dead-letter topic has it, after the metric
        return sum(int(redis("GET", k)) for k in redis.scan_all("mw:{pipeline}:dlq:*"))
    try:
        wait_for(lambda: counted() >= JUNK, 15, "the dead-letter counts in Redis")
    except TestFailure:
        pass
    time.sleep(1)
    tap.check(counted() == JUNK, f"the per-minute dead-letter counts in Redis add up to {JUNK}",
              str(counted()))
    wait_for(lambda: len(receiver.pd_incident("DeadLetters")) >= 1, 90, "DeadLetters to page")
    wait_for(lambda: len(receiver.pd_incident("DeadLetters")) >= 2, 90, "DeadLetters to resolve")
    time.sleep(2)
    dead = receiver.pd_incident("DeadLetters")
    tap.check([e["event_action"] for e in dead] == ["trigger", "resolve"],
              "DeadLetters paged once and resolved once",
              json.dumps([e["event_action"] for e in dead]))
    tap.check(dead[0]["dedup_key"] == dead[1]["dedup_key"], "with one dedup_key")
    tap.check(len(receiver.pd_events()) == 4, "four PagerDuty events in all",
              str(len(receiver.pd_events())))
    redis.close()


if __name__ == "__main__":
    run(main)
