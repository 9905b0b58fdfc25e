"""Alert delivery against a real HTTP receiver, with real processes.

tools/alert_receiver.py stands in for PagerDuty and for webhook consumers (records every request,
answers 202/400/429/500 or hangs as scripted); mw-alert-drive pushes notifications through the
real delivery code (receivers, queues, retries, libcurl on libuv). Every payload on the wire is
checked field by field, here in Python, against the Events API v2 rules and Alertmanager's
webhook v4 shape; dedup keys and HMAC signatures are recomputed with hashlib/hmac.

Scenarios: 429 then 202 delivers exactly once, and a resolve sent meanwhile follows its trigger
with the same dedup_key; 400 is not retried (and PagerDuty's error body is logged, the routing
key never); 500 x3 then 202 delivers once within the backoff bounds; a hanging receiver hits the
timeout and is retried while other groups and receivers go on; a full queue drops and counts,
and a newer notification replaces a waiting one of its group.
"""
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "..", "..", "tools", "alert_receiver.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(RECEIVER))
import harness  # noqa: E402
from harness import TestFailure, wait_for  # noqa: E402
import alert_receiver  # noqa: E402

ROUTING_KEY = "0123456789abcdef0123456789ABCDEF"  # 32 characters, like a real one
HMAC_KEY = b"webhook-signing-key\n"  # exact bytes, newline included
SEVERITIES = {"critical", "error", "warning", "info"}
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

BASE_START_MS = 1767225600000  # 2026-01-01T00:00:00Z


def dedup_key(group_key):
    return hashlib.sha256(group_key.encode()).hexdigest()


def alert(name, severity="warning", status="firing", summary=None, model="churn", start_ms=None,
          extra_annotations=None):
    ann = {"summary": summary or f"{name} on {model}",
           "runbook_url": f"https://runbooks.example/{name}"}
    ann.update(extra_annotations or {})
    return {
        "status": status,
        "labels": {"alertname": name, "model": model, "version": "v4", "namespace": "ml-prod",
                   "signal": "latency_p99", "severity": severity},
        "annotations": ann,
        "values": {"value": 2.4, "threshold": 1.0, "samples": 12000},
        "starts_at_ms": start_ms or BASE_START_MS,
        "ends_at_ms": BASE_START_MS + 3600000 if status == "resolved" else 0,
        "generator_url": f"http://mw.example/api/v1/models/{model}/windows?start={BASE_START_MS}",
    }


def note(at_ms, receiver, group_key, status="firing", alerts=None, model="churn"):
    alerts = alerts or [alert("LatencyP99High", status=status, model=model)]
    return {"at_ms": at_ms, "receiver": receiver, "group_key": group_key, "status": status,
            "group_labels": {"model": model},
            "common_labels": {"model": model, "version": "v4", "namespace": "ml-prod",
                              "signal": "latency_p99"},
            "common_annotations": {}, "external_url": "http://mw.example", "alerts": alerts}


def pd_receiver(name, port, key_file, path, extra=""):
    return f"""  - name: {name}
    type: pagerduty
    url: http://127.0.0.1:{port}/{path}
    routing_key_file: {key_file}
    timeout: 2s
    connect_timeout: 1s
    retry:
      initial: 200ms
      max: 2s
      max_attempts: 6
      max_age: 30s
{extra}"""


class Env:
    def __init__(self, cluster):
        self.cluster = cluster
        self.key_file = os.path.join(cluster.dir, "routing_key")
        with open(self.key_file, "w") as f:
            f.write(ROUTING_KEY + "\n")
        self.hmac_file = os.path.join(cluster.dir, "hmac_key")
        with open(self.hmac_file, "wb") as f:
            f.write(HMAC_KEY)
        self.log = os.path.join(cluster.dir, "requests.jsonl")
        port_file = os.path.join(cluster.dir, "receiver.port")
        self.receiver = cluster.spawn("receiver", [sys.executable, RECEIVER,
                                      "--port-file", port_file,
                                      "--log", self.log])
        wait_for(lambda: os.path.exists(port_file), 10, "the alert receiver")
        with open(port_file) as f:
            self.port = int(f.read())
        self.runs = 0

    def script(self, script):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_control/script",
                                     data=json.dumps(script).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def requests(self, path):
        return [r for r in alert_receiver.read_log(self.log) if r["path"] == path]

    def drive(self, receivers_yaml, notes, deadline_ms=30000):
        """Run mw-alert-drive; returns (events, stderr text)."""
        self.runs += 1
        cfg = self.cluster.write_config(f"drive{self.runs}.yaml", "receivers:\n" + receivers_yaml)
        notes_file = self.cluster.write_config(f"notes{self.runs}.json", json.dumps(notes))
        exe = self.cluster.binary("tests/integration/mw-alert-drive")
        env = dict(os.environ, MW_LOG_LEVEL="info")
        out = subprocess.run([exe, "--config", cfg, "--notifications", notes_file, "--seed",
                              str(1000 + self.runs), "--deadline-ms", str(deadline_ms)],
                             capture_output=True, timeout=deadline_ms / 1000 + 30, env=env)
        stderr = out.stderr.decode(errors="replace")
        if out.returncode != 0:
            raise TestFailure(f"mw-alert-drive exited {out.returncode}: {stderr[-2000:]}")
        events = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
        return events, stderr


def results(events):
    return {e["index"]: e for e in events if e["event"] == "result"}


def counters(events):
    return [e for e in events if e["event"] == "counters"][-1]["receivers"]


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def pd_event_problems(req):
    """Everything in one recorded request that breaks the Events API v2 rules."""
    problems = []
    raw = req["body"].encode()
    if len(raw) > 512 * 1024:
        problems.append(f"event is {len(raw)} bytes, over 512 KB")
    if not req["headers"].get("Content-Type", "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    try:
        ev = json.loads(raw)
    except ValueError as e:
        return problems + [f"body is not JSON: {e}"]
    if not isinstance(ev.get("routing_key"), str) or len(ev["routing_key"]) != 32:
        problems.append("routing_key must be a 32-character string")
    if ev.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append(f"event_action {ev.get('event_action')!r}")
    dk = ev.get("dedup_key")
    if not isinstance(dk, str) or not 1 <= len(dk) <= 255:
        problems.append("dedup_key must be 1..255 characters")
    if ev.get("event_action") == "trigger":
        p = ev.get("payload")
        if not isinstance(p, dict):
            return problems + ["trigger without payload"]
        s = p.get("summary")
        if not isinstance(s, str) or not s.strip() or len(s) > 1024:
            problems.append(f"summary must be 1..1024 characters (got {len(s or '')})")
        if not isinstance(p.get("source"), str) or not p["source"]:
            problems.append("source missing")
        if p.get("severity") not in SEVERITIES:
            problems.append(f"severity {p.get('severity')!r}")
        try:
            parse_time(p.get("timestamp", ""))
        except (ValueError, TypeError):
            problems.append(f"timestamp {p.get('timestamp')!r} is not ISO 8601")
        for k in ("component", "group", "class"):
            if k in p and not isinstance(p[k], str):
                problems.append(f"payload.{k} must be a string")
        if "custom_details" in p and not isinstance(p["custom_details"], dict):
            problems.append("custom_details must be an object")
        for link in ev.get("links", []):
            if not isinstance(link.get("href"), str) or not link["href"].startswith("http"):
                problems.append(f"link without an http href: {link}")
            if "text" in link and not isinstance(link["text"], str):
                problems.append("link text must be a string")
    return problems


# ---- scenarios -------------------------------------------------------------------------------

def scenario_429_then_202_and_resolve_order(tap, env):
    group = 'route-0/{model="churn"}:latency'
    env.script({"/a/v2/enqueue": [{"status": 429, "retry_after": 1}]})
    events, _ = env.drive(pd_receiver("pd-a", env.port, env.key_file, "a"),
                          [note(0, "pd-a", group), note(300, "pd-a", group, status="resolved")])
    res = results(events)
    reqs = env.requests("/a/v2/enqueue")
    bodies = [json.loads(r["body"]) for r in reqs]
    actions = [(b["event_action"], r["answer"].get("status")) for b, r in zip(bodies, reqs)]
    tap.check(actions == [("trigger", 429), ("trigger", 202), ("resolve", 202)],
              "429 then 202: the trigger is retried, delivered once, and the resolve follows it",
              actions)
    tap.check(sum(1 for a in actions if a == ("trigger", 202)) == 1,
              "exactly one trigger accepted")
    if len(reqs) == 3:
        gap = reqs[1]["t"] - reqs[0]["t"]
        tap.check(0.95 <= gap <= 3.0, f"Retry-After: 1 honoured (retried after {gap:.2f}s)")
        tap.check(reqs[2]["t"] >= reqs[1]["t"],
                  "the resolve (submitted 300 ms in) waited for its trigger's delivery")
    tap.check(all(b["dedup_key"] == dedup_key(group) for b in bodies),
              "trigger and resolve carry the same dedup_key, hex SHA-256 of the group key",
              [b["dedup_key"] for b in bodies])
    tap.check(res.get(0, {}).get("outcome") == "delivered" and res[0]["attempts"] == 2,
              "trigger result: delivered after 2 attempts", res.get(0))
    tap.check(res.get(1, {}).get("outcome") == "delivered" and res[1]["attempts"] == 1,
              "resolve result: delivered at once", res.get(1))
    c = counters(events)["pd-a"]
    tap.check(c["delivered"] == 2 and c["retried"] == 1 and c["failed"] == 0
              and c["dropped"] == 0, "counters: 2 delivered, 1 retried", c)
    problems = [p for r in reqs for p in pd_event_problems(r)]
    tap.check(not problems, "every request valid against the Events v2 rules", problems)
    resolve = bodies[-1] if bodies else {}
    tap.check(set(resolve) == {"routing_key", "event_action", "dedup_key"},
              "the resolve carries routing_key, event_action and dedup_key only", resolve)


def scenario_400_and_500s(tap, env):
    env.script({"/b/v2/enqueue": [{"status": 400}], "/c/v2/enqueue": [{"status": 500}] * 3})
    yaml = pd_receiver("pd-b", env.port, env.key_file, "b") + \
        pd_receiver("pd-c", env.port, env.key_file, "c")
    events, stderr = env.drive(yaml, [note(0, "pd-b", "group-b"), note(0, "pd-c", "group-c")])
    res = results(events)
    b = env.requests("/b/v2/enqueue")
    tap.check(len(b) == 1, f"400 is not retried ({len(b)} request)")
    tap.check(res.get(0, {}).get("outcome") == "failed" and res[0]["attempts"] == 1
              and res[0]["http_status"] == 400, "400: failed permanently after one attempt",
              res.get(0))
    tap.check("Event object is invalid" in stderr and "rejected" in stderr,
              "400: PagerDuty's error body is logged", stderr[-1500:])
    tap.check(ROUTING_KEY not in stderr, "the routing key is never logged")

    c = env.requests("/c/v2/enqueue")
    statuses = [r["answer"].get("status") for r in c]
    tap.check(statuses == [500, 500, 500, 202], "500 x3 then 202: four attempts, the last "
              "accepted", statuses)
    tap.check(res.get(1, {}).get("outcome") == "delivered" and res[1]["attempts"] == 4,
              "500 x3 then 202: delivered once", res.get(1))
    if len(c) == 4:
        gaps = [c[i + 1]["t"] - c[i]["t"] for i in range(3)]
        caps = [0.2, 0.4, 0.8]  # retry.initial 200ms doubling, full jitter below each cap
        tap.check(all(g <= cap + 0.3 for g, cap in zip(gaps, caps)),
                  "each retry waited within its backoff cap",
                  f"gaps {[round(g, 3) for g in gaps]} caps {caps}")
    cc = counters(events)
    tap.check(cc["pd-c"]["retried"] == 3 and cc["pd-c"]["delivered"] == 1
              and cc["pd-b"]["failed"] == 1 and cc["pd-b"]["retried"] == 0,
              "counters: pd-c 3 retried 1 delivered, pd-b 1 failed", cc)


def scenario_hang_webhook_and_payloads(tap, env):
    env.script({"/d/v2/enqueue": [{"hang": 6}]})
    long_summary = "é" * 2000
    huge = "d" * (600 * 1024)
    f_alerts = [alert("LatencyP99High", severity="warning", summary=long_summary,
                      extra_annotations={"description": huge}),
                alert("ErrorRateHigh", severity="critical", start_ms=BASE_START_MS - 60000)]
    hook = f"""  - name: hook-e
    type: webhook
    url: http://127.0.0.1:{env.port}/e
    hmac_key_file: {env.hmac_file}
"""
    yaml = pd_receiver("pd-d", env.port, env.key_file, "d",
                       "    max_in_flight: 2\n").replace("timeout: 2s", "timeout: 1s") + hook + \
        pd_receiver("pd-f", env.port, env.key_file, "f")
    notes = [note(0, "pd-d", "group-x"), note(100, "pd-d", "group-y"),
             note(150, "hook-e", 'route-1/{model="fraud"}', model="fraud"),
             note(150, "pd-f", "group-f", alerts=f_alerts)]
    events, _ = env.drive(yaml, notes)
    res = results(events)
    tap.check(res.get(1, {}).get("outcome") == "delivered" and res[1]["t_ms"] < 900,
              "while group-x hangs, group-y on the same receiver is delivered at once",
              res.get(1))
    tap.check(res.get(2, {}).get("outcome") == "delivered" and res[2]["t_ms"] < 900,
              "and the webhook receiver is not held up either", res.get(2))
    tap.check(res.get(0, {}).get("outcome") == "delivered" and res[0]["attempts"] == 2
              and 1000 <= res[0]["t_ms"] < 5000,
              "the hanging request times out after 1 s and its retry is delivered", res.get(0))
    d = env.requests("/d/v2/enqueue")
    tap.check(len(d) == 3 and "hang" in d[0]["answer"],
              "pd-d saw: x (hung), y, x again", [r["answer"] for r in d])

    # Webhook: Alertmanager v4, field by field, and the signature.
    e = env.requests("/e")
    tap.check(len(e) == 1, "one webhook request")
    if e:
        req = e[0]
        raw = req["body"].encode()
        want_sig = "sha256=" + hmac.new(HMAC_KEY, raw, hashlib.sha256).hexdigest()
        tap.check(req["headers"].get("X-Modelwatch-Signature") == want_sig,
                  "X-Modelwatch-Signature is HMAC-SHA256 of the body under the key file's bytes",
                  f"{req['headers'].get('X-Modelwatch-Signature')} != {want_sig}")
        m = json.loads(raw)
        want_keys = {"version", "groupKey", "truncatedAlerts", "status", "receiver",
                     "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"}
        tap.check(set(m) == want_keys, "webhook top-level keys are Alertmanager's v4 keys",
                  sorted(m))
        tap.check(m.get("version") == "4" and m.get("status") == "firing"
                  and m.get("receiver") == "hook-e"
                  and m.get("groupKey") == 'route-1/{model="fraud"}'
                  and m.get("truncatedAlerts") == 0 and m.get("externalURL") == "http://mw.example"
                  and m.get("groupLabels") == {"model": "fraud"}
                  and m.get("commonLabels", {}).get("namespace") == "ml-prod",
                  "webhook group fields", {k: m.get(k) for k in want_keys - {"alerts"}})
        a = (m.get("alerts") or [{}])[0]
        labels = a.get("labels", {})
        fp = 14695981039346656037
        for k in sorted(labels):
            for byte in k.encode() + b"\xff" + labels[k].encode() + b"\xff":
                fp = ((fp ^ byte) * 1099511628211) % (1 << 64)
        tap.check(a.get("status") == "firing" and labels.get("alertname") == "LatencyP99High"
                  and a.get("annotations", {}).get("runbook_url", "").startswith("https://")
                  and parse_time(a.get("startsAt", "x")).timestamp() * 1000 == BASE_START_MS
                  and a.get("endsAt") == GO_ZERO_TIME
                  and a.get("generatorURL", "").startswith("http://mw.example/api/v1/")
                  and a.get("fingerprint") == f"{fp:016x}",
                  "webhook alert fields (fingerprint as Prometheus computes it)", a)

    # PagerDuty payload rules on the wire.
    f = env.requests("/f/v2/enqueue")
    tap.check(len(f) == 1, "one PagerDuty event for group-f")
    if f:
        problems = pd_event_problems(f[0])
        tap.check(not problems, "the event is valid against the Events v2 rules", problems)
        ev = json.loads(f[0]["body"])
        p = ev.get("payload", {})
        s = p.get("summary", "")
        tap.check(len(s) == 1024 and s.endswith("…") and s.startswith("[FIRING:2] é"),
                  "summary cut to 1024 characters with an ellipsis, on character boundaries",
                  f"{len(s)} characters, ends {s[-3:]!r}")
        tap.check(len(f[0]["body"].encode()) <= 512 * 1024 and "ddddd" not in f[0]["body"]
                  and "dropped" in json.dumps(p.get("custom_details", {})),
                  "an event over 512 KB drops custom_details and says so",
                  len(f[0]["body"].encode()))
        tap.check(p.get("severity") == "critical", "severity: the most severe firing alert",
                  p.get("severity"))
        tap.check(p.get("timestamp") == "2025-12-31T23:59:00.000Z",
                  "timestamp: the earliest start, RFC 3339", p.get("timestamp"))
        tap.check(p.get("component") == "churn" and p.get("group") == "ml-prod"
                  and p.get("class") == "latency_p99" and p.get("source") == "churn",
                  "component = model, group = namespace, class = signal, source", p)
        hrefs = [link.get("href") for link in ev.get("links", [])]
        tap.check("https://runbooks.example/LatencyP99High" in hrefs
                  and any(h.startswith("http://mw.example/api/v1/models/churn") for h in hrefs),
                  "links: the runbook and the window in the API", hrefs)
        tap.check(ev.get("dedup_key") == dedup_key("group-f") and ev.get("routing_key") ==
                  ROUTING_KEY, "dedup_key and routing_key")


def scenario_queue_full(tap, env):
    env.script({"/g/v2/enqueue": [{"hang": 3}]})
    yaml = pd_receiver("pd-g", env.port, env.key_file, "g",
                       "    queue_max: 2\n    max_in_flight: 1\n").replace("timeout: 2s",
                                                                            "timeout: 1s")
    n = [note(0, "pd-g", "g1"), note(10, "pd-g", "g2"), note(20, "pd-g", "g3"),
         note(30, "pd-g", "g4"), note(40, "pd-g", "g2", status="resolved")]
    events, stderr = env.drive(yaml, n)
    errors = {e["index"]: e["error"] for e in events if e["event"] == "submit_error"}
    tap.check(errors == {2: "MW_EFULL", 3: "MW_EFULL"},
              "queue_max 2: the third and fourth groups are refused with MW_EFULL", errors)
    res = results(events)
    tap.check(res.get(1, {}).get("outcome") == "superseded",
              "a newer notification of a waiting group replaces it", res.get(1))
    tap.check(res.get(0, {}).get("outcome") == "delivered"
              and res.get(4, {}).get("outcome") == "delivered",
              "the others are delivered", res)
    c = counters(events)["pd-g"]
    tap.check(c["dropped"] == 2 and c["superseded"] == 1 and c["delivered"] == 2,
              "counters: 2 dropped, 1 superseded, 2 delivered", c)
    tap.check("queue full" in stderr, "drops are logged")

    # queue_max_bytes bounds the encoded bodies too: a 1.5 MB webhook does not fit in 1 MiB.
    big = note(0, "hook-big", "big", alerts=[alert("Big", extra_annotations={
        "description": "x" * 1500000})])
    small = note(10, "hook-big", "small")
    events, stderr = env.drive(f"""  - name: hook-big
    type: webhook
    url: http://127.0.0.1:{env.port}/big
    queue_max_bytes: 1MiB
""", [big, small])
    errors = {e["index"]: e["error"] for e in events if e["event"] == "submit_error"}
    tap.check(errors == {0: "MW_EFULL"} and results(events).get(1, {}).get("outcome") ==
              "delivered", "queue_max_bytes: the oversized notification is refused, the next "
              "one delivered", events)
    g = sorted((json.loads(r["body"])["dedup_key"], json.loads(r["body"])["event_action"])
               for r in env.requests("/g/v2/enqueue"))
    want = sorted([(dedup_key("g1"), "trigger")] * 2 + [(dedup_key("g2"), "resolve")])
    tap.check(g == want, "the receiver saw g1 twice (hung, then retried) and g2's resolve only, "
              "never g2's superseded trigger", g)


def scenario_shutdown(tap, env):
    """Shutdown with a request hanging and another waiting to retry: both end `dropped` (the
    notification log then knows they were not delivered), and the driver's loop closes with no
    handle left (it exits 0 only then)."""
    env.script({"/h/v2/enqueue": [{"hang": 5}],
                "/i/v2/enqueue": [{"status": 429, "retry_after": 5}]})
    yaml = pd_receiver("pd-h", env.port, env.key_file, "h").replace("timeout: 2s",
                                                                    "timeout: 4s") + \
        pd_receiver("pd-i", env.port, env.key_file, "i")
    events, _ = env.drive(yaml, [note(0, "pd-h", "gh"), note(0, "pd-i", "gi")], deadline_ms=800)
    res = results(events)
    tap.check(res.get(0, {}).get("outcome") == "dropped" and res[0]["error"] == "MW_ECLOSED",
              "shutdown: the hanging request is cancelled and reported dropped", res.get(0))
    tap.check(res.get(1, {}).get("outcome") == "dropped" and res[1]["attempts"] == 1,
              "shutdown: the notification waiting to retry is reported dropped", res.get(1))
    last = max((e.get("t_ms", 0) for e in events), default=0)
    tap.check(last < 3000, f"shutdown finished within its grace period ({last} ms)")


def main(tap, cluster):
    env = Env(cluster)
    scenario_429_then_202_and_resolve_order(tap, env)
    scenario_400_and_500s(tap, env)
    scenario_hang_webhook_and_payloads(tap, env)
    scenario_queue_full(tap, env)
    scenario_shutdown(tap, env)


if __name__ == "__main__":
    harness.run(main)
