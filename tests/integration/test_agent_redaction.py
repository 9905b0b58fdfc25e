#!/usr/bin/env python3
"""Redacted fields never leave the pod.

An agent redacts model churn: feature "plan" dropped, feature "country" replaced by
HMAC-SHA256 under a key read from a file. Every batch it produces is read back from Kafka and
searched byte for byte (after decompression): the protobuf encoding of each raw country value
and the name "plan" must appear in no batch, and the pseudonyms computed here with Python's
hmac must appear (which also proves the search finds what is there).
"""
import hashlib
import hmac
import os

from harness import metrics, run, wait_for

KEY = b"a test key that is not in the config\n"
COUNTRIES = ["fr", "de", "us", "jp", "br"]


def encoded(name, value):
    """Feature {name: 1, categorical: 3} as protobuf bytes."""
    return (bytes([0x0A, len(name)]) + name.encode() + bytes([0x1A, len(value)]) +
            value.encode())


def main(tap, cluster):
    cluster.start_devkafka()
    key_file = os.path.join(cluster.dir, "hmac.key")
    with open(key_file, "wb") as f:
        f.write(KEY)
    os.chmod(key_file, 0o600)
    pseudonyms = {c: hmac.new(KEY, c.encode(), hashlib.sha256).hexdigest() for c in COUNTRIES}
    patterns = [encoded("country", c) for c in COUNTRIES] + [b"\x0a\x04plan"] + \
        [encoded("country", p) for p in pseudonyms.values()]
    audit = cluster.start_audit(patterns=patterns)
    agent = cluster.start_agent(extra=f"""redaction_key_file: {key_file}
models:
  - name: churn
    redact:
      drop: [plan]
      hash: [country]
""")
    cluster.loadgen(agent.endpoint, ["churn:v1"], 2000)
    wait_for(lambda: metrics(agent.http_port)["modelwatch_agent_events_accepted_total"] == 2000,
             30, "the agent to accept every event")
    tap.check(cluster.stop(agent) == 0, "agent drains and exits 0")
    report = cluster.stop_audit(audit)
    found = {bytes.fromhex(k): v for k, v in report["patterns"].items()}
    batches = report["kafka_records"]
    tap.check(batches >= 1 and report["undecodable"] == 0, "batches were produced",
              str(batches))
    for c in COUNTRIES:
        tap.check(found[encoded("country", c)] == 0, f"raw country {c!r} is in no batch",
                  str(found[encoded("country", c)]))
        tap.check(found[encoded("country", pseudonyms[c])] >= 1,
                  f"country {c!r} ships as its HMAC-SHA256 pseudonym")
    tap.check(found[b"\x0a\x04plan"] == 0, "the dropped feature is in no batch",
              str(found[b"\x0a\x04plan"]))


if __name__ == "__main__":
    run(main)
