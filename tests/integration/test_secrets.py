#!/usr/bin/env python3
"""Secrets never leak: a full pipeline runs with every credential it can take, each a distinctive
value, and no process log and no --dump-config output holds any of them; API writes (silences
and profile pushes) without the bearer token are refused.

The pipeline: redis-server with requirepass (the aggregator's redis.password comes from the
environment through ${VAR}), modelwatch-devkafka, an aggregator alerting to the stand-in
receiver (a PagerDuty routing-key file, a webhook HMAC key file, an API bearer-token file), and
an agent hashing a feature under a redaction key file. Both binaries carry Kafka SASL
credentials (sasl.username, and sasl.password from the environment); librdkafka's mock cluster
speaks no SASL, so the connection stays PLAINTEXT and the credentials are configured and
printed, not used on the wire. Both run at log_level debug; the aggregator logs JSON.

Each secret is also shown to have been used (Redis refuses a client without it, the PagerDuty
event carries the routing key, the webhook's signature is the HMAC under the key, the token
opens silence writes), so the search for it in the logs cannot pass for want of use.
"""
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import alert_env as env
from harness import TestFailure, api_data, free_port, http_get, run, wait_for
from resp import Redis, RedisError

SECRETS = {
    "redis password": "mw-redis-pass-Q7x2Vb",
    "kafka sasl password": "mw-kafka-pass-9Lp3Tz",
    "pagerduty routing key": "mw-pd-routing-4Fh8Kq",
    "webhook hmac key": "mw-hmac-key-Zr5wNd",
    "api token": "mw-api-token-Kd3vYm",
    "redaction key": "mw-redact-key-Ws1eJc",
}
MODEL = "secretive:v1"
RULES = """groups:
  - name: secrets
    rules:
      - name: AnyTrafficPage
        signal: latency_p50
        resolution: 1m
        comparison: ">"
        threshold: 0
        for: 0s
        min_samples: 1
        severity: critical
        annotations:
          summary: "{{ $labels.model }} answered"
      - name: AnyTrafficTicket
        signal: latency_p50
        resolution: 1m
        comparison: ">"
        threshold: 0
        for: 0s
        min_samples: 1
        severity: warning
        annotations:
          summary: "{{ $labels.model }} answered (ticket)"
"""


def start_redis_with_password(cluster):
    exe = shutil.which("redis-server")
    if not exe:
        raise TestFailure("redis-server is not installed (the test needs a real Redis)")
    cluster.redis_port = free_port()
    cluster.spawn("redis", [exe, "--port", str(cluster.redis_port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", cluster.dir,
                            "--requirepass", SECRETS["redis password"]])

    def answers():
        with Redis(cluster.redis_port, timeout=2) as r:
            r("AUTH", SECRETS["redis password"])
            return r("PING") in ("PONG", b"PONG")
    wait_for(answers, 10, "redis-server with requirepass")


def write_secret(cluster, name, value):
    return cluster.write_config(name, value + "\n")


def aggregator_yaml(cluster, receiver, port, files):
    rules = cluster.write_config("rules.yaml", RULES)
    return f"""log_level: debug
log:
  format: json
kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    topic.metadata.refresh.interval.ms: "1000"
    sasl.username: modelwatch
    sasl.password: ${{MW_TEST_KAFKA_PASSWORD}}
redis:
  port: {cluster.redis_port}
  password: ${{MW_TEST_REDIS_PASSWORD}}
  retry_max: 500ms
http:
  port: {port}
  signals_refresh: 1s
windows:
  allowed_lateness: 0s
  out_of_orderness: 5s
rule_files: ["{rules}"]
route:
  receiver: pd
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4h
  routes:
    - matchers: ['severity="warning"']
      receiver: hook
receivers:
  - name: pd
    type: pagerduty
    url: http://127.0.0.1:{receiver.port}/pd
    routing_key_file: {files['pd']}
    retry: {{initial: 100ms, max: 1s}}
  - name: hook
    type: webhook
    url: http://127.0.0.1:{receiver.port}/hook
    hmac_key_file: {files['hmac']}
    retry: {{initial: 100ms, max: 1s}}
alerting:
  evaluation_interval: 500ms
  lease_ttl: 3s
  api_token_file: {files['token']}
"""


def agent_yaml(cluster, port, files, endpoint):
    return f"""agent_id: agent-secrets
log_level: debug
intake:
  endpoint: "{endpoint}"
kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    sasl.username: modelwatch
    sasl.password: ${{MW_TEST_KAFKA_PASSWORD}}
redaction_key_file: {files['redact']}
models:
  - name: "*"
    sample_rate: 1.0
    max_events_per_second: 0
    redact:
      hash: [f1]
spool:
  dir: {os.path.join(cluster.dir, 'agent-spool')}
  fsync: false
http:
  port: {port}
"""


def run_tool(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def request(port, method, path, doc=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(doc).encode() if doc is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check_profile_writes(tap, port):
    """A profile push is a write like any other: it needs the token too."""
    path = f"/api/v1/models/{MODEL.split(':')[0]}/profiles/v1"
    status, body = request(port, "PUT", path, {"model": "x"})
    tap.check(status == 401, "PUT a profile without a token is refused with 401, before its "
              "body is read", f"{status} {body[:200]}")
    status, body = request(port, "PUT", path, {"model": "x"}, token="wrong-token")
    tap.check(status == 401, "PUT a profile with a wrong token is refused with 401",
              f"{status} {body[:200]}")
    try:
        env.push_profiles(port, MODEL.split(":")[0], ["v1"], token=SECRETS["api token"])
        pushed = True
    except (TestFailure, urllib.error.HTTPError) as e:
        pushed = str(e)
    tap.check(pushed is True, "PUT a profile with the token stores it", str(pushed))


def check_ctl_profile_push(tap, cluster, port, token_file):
    """modelwatch-ctl sends the token of --token-file with a profile push, and only then
    succeeds."""
    doc = api_data(port, f"/api/v1/models/{MODEL.split(':')[0]}/profiles/v1")
    path = cluster.write_config("profile.json", json.dumps(doc))
    ctl = [cluster.binary("tools/modelwatch-ctl"), "--api", f"http://127.0.0.1:{port}"]
    rc, out = run_tool(ctl + ["profile", "push", path])
    tap.check(rc != 0 and "401" in out, "modelwatch-ctl profile push without a token file "
              "is refused (401)", out)
    rc, out = run_tool(ctl + ["profile", "push", path, "--token-file", token_file])
    tap.check(rc == 0, "modelwatch-ctl profile push --token-file stores the profile", out)
    return out


def check_api_writes(tap, port):
    silence = {"matchers": ['alertname="AnyTrafficPage"'], "duration": "1h",
               "created_by": "test_secrets", "comment": "checking the token"}
    status, body = request(port, "POST", "/api/v1/silences", silence)
    tap.check(status == 401, "POST /api/v1/silences without a token is refused with 401",
              f"{status} {body[:200]}")
    status, body = request(port, "POST", "/api/v1/silences", silence, token="wrong-token")
    tap.check(status == 401, "POST /api/v1/silences with a wrong token is refused with 401",
              f"{status} {body[:200]}")
    status, body = request(port, "DELETE", "/api/v1/silences/0123456789abcdef")
    tap.check(status == 401, "DELETE /api/v1/silences/{id} without a token is refused with 401",
              f"{status} {body[:200]}")
    status, body = request(port, "POST", "/api/v1/silences", silence,
                           token=SECRETS["api token"])
    tap.check(status in (200, 201), "POST /api/v1/silences with the token is accepted",
              f"{status} {body[:200]}")


def check_secrets_used(tap, cluster, receiver, agg_port):
    """Each secret did its job, so its absence from the logs means something."""
    try:
        with Redis(cluster.redis_port, timeout=2) as r:
            reply = r("PING")
    except RedisError as e:
        reply = str(e)
    tap.check("NOAUTH" in str(reply), "Redis refuses a client without the password",
              str(reply))
    wait_for(lambda: receiver.pd_events() and receiver.requests("/hook"), 60,
             "a page and a webhook message")
    try:
        wait_for(lambda: MODEL.split(":")[0] in json.dumps(api_data(agg_port, "/api/v1/models")),
                 30, "the model in /api/v1/models")
        listed = True
    except TestFailure:
        listed = False
    tap.check(listed, "the aggregator, authenticated to Redis by redis.password, applied the "
              "traffic (its model is listed)")
    keys = {ev.get("routing_key") for ev in receiver.pd_events()}
    tap.check(keys == {SECRETS["pagerduty routing key"]},
              "the PagerDuty events carry the routing key from routing_key_file", str(keys))
    req = receiver.requests("/hook")[0]
    want = "sha256=" + hmac.new((SECRETS["webhook hmac key"] + "\n").encode(),
                                req["body"].encode(), hashlib.sha256).hexdigest()
    tap.check(req["headers"].get("X-Modelwatch-Signature") == want,
              "the webhook's signature is the HMAC under hmac_key_file's bytes",
              f"{req['headers'].get('X-Modelwatch-Signature')} != {want}")


def check_json_log(tap, text):
    bad = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
            if not {"ts", "level", "comp", "msg"} <= set(obj):
                bad.append(line)
        except ValueError:
            bad.append(line)
    tap.check(text.strip() and not bad, "every line of the aggregator's log (log.format: json) "
              "is a JSON object with ts, level, comp and msg", "\n".join(bad[:5]))


def find_leaks(named_texts):
    leaks = []
    for where, text in named_texts.items():
        for what, value in SECRETS.items():
            if value in text:
                leaks.append(f"{what} in {where}")
    return leaks


def main(tap, cluster):
    os.environ["MW_TEST_REDIS_PASSWORD"] = SECRETS["redis password"]
    os.environ["MW_TEST_KAFKA_PASSWORD"] = SECRETS["kafka sasl password"]
    files = {
        "pd": write_secret(cluster, "pd.key", SECRETS["pagerduty routing key"]),
        "hmac": write_secret(cluster, "hmac.key", SECRETS["webhook hmac key"]),
        "token": write_secret(cluster, "api.token", SECRETS["api token"]),
        "redact": write_secret(cluster, "redact.key", SECRETS["redaction key"]),
    }
    start_redis_with_password(cluster)
    cluster.start_devkafka()
    receiver = env.Receiver(cluster)
    agg_port, agent_port = free_port(), free_port()
    endpoint = f"ipc://{cluster.dir}/agent.sock"
    agg_cfg = cluster.write_config("aggregator.yaml",
                                   aggregator_yaml(cluster, receiver, agg_port, files))
    agent_cfg = cluster.write_config("agent.yaml",
                                     agent_yaml(cluster, agent_port, files, endpoint))
    agg_exe = cluster.binary("aggregator/modelwatch-aggregator")
    agent_exe = cluster.binary("agent/modelwatch-agent")

    outputs = {}
    for name, exe, cfg in (("aggregator", agg_exe, agg_cfg), ("agent", agent_exe, agent_cfg)):
        rc, text = run_tool([exe, "--config", cfg, "--check-config"])
        tap.check(rc == 0, f"{name}: --check-config accepts the configuration and its files",
                  text)
        outputs[f"{name} --check-config"] = text
        rc, text = run_tool([exe, "--config", cfg, "--dump-config"])
        want = {"aggregator": 2, "agent": 1}[name]  # redis.password, kafka sasl.password
        tap.check(rc == 0 and text.count("<redacted>") == want,
                  f"{name}: --dump-config prints its {want} credential(s) as <redacted>",
                  text[:3000])
        outputs[f"{name} --dump-config"] = text
    # --check-config opens every file the configuration names.
    missing = os.path.join(cluster.dir, "no-such-token")
    text = open(agg_cfg).read().replace(files["token"], missing)
    bad = cluster.write_config("aggregator-missing-token.yaml", text)
    line = text[:text.index(missing)].count("\n") + 1
    rc, out = run_tool([agg_exe, "--config", bad, "--check-config"])
    tap.check(rc == 2 and f"{bad}:{line}: alerting.api_token_file: cannot read {missing}: No "
              "such file or directory" in out,
              "--check-config refuses a token file that is not there, naming FILE:LINE: KEY", out)

    agg = cluster.spawn("aggregator", [agg_exe, "--config", agg_cfg])
    wait_for(lambda: http_get(agg_port, "/healthz")[0] == 200, 15, "aggregator /healthz")
    agent = cluster.spawn("agent", [agent_exe, "--config", agent_cfg])
    wait_for(lambda: http_get(agent_port, "/healthz")[0] == 200, 15, "agent /healthz")
    agent.endpoint = endpoint

    env.send(cluster, agent, [MODEL], env.base_time(), windows=4, per_window=50)
    check_secrets_used(tap, cluster, receiver, agg_port)
    check_api_writes(tap, agg_port)
    check_profile_writes(tap, agg_port)
    outputs["modelwatch-ctl profile push"] = check_ctl_profile_push(tap, cluster, agg_port,
                                                                    files["token"])

    # A reload reads every key file again: its log lines must not carry them either.
    agg.send_signal(signal.SIGHUP)
    agent.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloading" in cluster.log_of(agg), 10, "the aggregator's reload")
    for proc in (agent, agg):
        tap.check(cluster.stop(proc) == 0, f"{proc.mw_name} stops cleanly on SIGTERM")

    logs = {f"{p.mw_name} log": cluster.log_of(p) for p in list(cluster.procs)
            if p.mw_name in ("aggregator", "agent")}
    tap.check(len(logs) == 2 and all(len(t) > 1000 for t in logs.values()),
              "both binaries logged (at debug level)", str({k: len(v) for k, v in logs.items()}))
    check_json_log(tap, logs.get("aggregator log", ""))
    leaks = find_leaks({**logs, **outputs})
    tap.check(not leaks, f"no secret ({len(SECRETS)}) in any log or dump "
              f"({len(logs) + len(outputs)} texts)", "\n".join(leaks))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    run(main)
