#!/usr/bin/env python3
"""The API answers as its OpenAPI document says, with a real pipeline behind it.

A real agent ships a model's traffic (a latency regression that fires an alert), a profile is
pushed, silences are written; then every operation in /api/v1/openapi.json is called, and every
answer, successes and errors alike, is validated (JSON Schema 2020-12, python3-jsonschema)
against the schema the document gives for that operation and status:

  - the document served is aggregator/openapi.json, byte for byte, and every schema in it is
    valid JSON Schema whose references resolve;
  - every answer has the envelope, and an error's errorType is the one of its HTTP status;
  - an unknown model is 404 not_found on every model endpoint; a profile may be pushed first;
  - times are taken as RFC 3339, Unix seconds (with a fraction) or Unix ms, with the same
    answer, and anything else is 400 bad_data;
  - with Redis down, every read is 503 unavailable;
  - every status the document declares (but 500) was seen, and no answer was undeclared.
"""
import json
import os
import re
import time
import urllib.parse

import jsonschema

import alert_env as env
from harness import api_request, http_get, run, wait_for

PER_WINDOW = 200
RULES = """groups:
  - name: contract
    rules:
      - name: LatencyP99High
        signal: latency_p99
        resolution: 1m
        comparison: ">"
        threshold: 0.05
        for: 2m
        min_samples: 100
        severity: critical
        annotations:
          summary: "{{ $labels.model }} p99 latency {{ $value }} s"
"""
SLOW = ["--latency-scale", "20"]
ERROR_TYPES = {400: "bad_data", 401: "unauthorized", 403: "unauthorized", 404: "not_found",
               405: "bad_data", 500: "internal", 503: "unavailable"}


class Contract:
    """Calls the API and checks each answer against the document's schema for it."""

    def __init__(self, tap, port, doc):
        self.tap, self.port, self.doc = tap, port, doc
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self.seen = set()
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", t) + "$"), t)
                          for t in doc["paths"]]

    def operation(self, method, path):
        bare = urllib.parse.urlsplit(path).path
        # A literal path beats a template (/openapi.json is no model's name).
        matches = [t for rx, t in self.templates if rx.match(bare)]
        matches.sort(key=lambda t: t.count("{"))
        for t in matches:
            if method.lower() in self.doc["paths"][t]:
                return t, self.doc["paths"][t][method.lower()]
        return (matches[0] if matches else None), None

    def call(self, method, path, want_status, what, doc=None, token=None, port=None):
        """The data of a success or the envelope of an error, after checking it."""
        status, envelope = api_request(port or self.port, path, method, doc, token)
        template, op = self.operation(method, path)
        problems = []
        if status != want_status:
            problems.append(f"status {status}, expected {want_status}")
        if status != 200 and envelope["errorType"] != ERROR_TYPES.get(status):
            problems.append(f"errorType {envelope['errorType']} for HTTP {status}")
        response = (op or {}).get("responses", {}).get(str(status))
        if op is None and status == 405:
            # A method the path does not take: the envelope's Error, as the introduction says.
            response = {"content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}}
        if response is None:
            problems.append(f"the document declares no {status} for {method} {template}")
        else:
            schema = response["content"]["application/json"]["schema"]
            validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
            problems += [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                         for e in validator.iter_errors(envelope)][:5]
            if op is not None:
                self.seen.add((template, method.lower(), str(status)))
        self.tap.check(not problems, f"{method} {path[:70]} -> {status}: {what}",
                       "\n".join(problems) + "\n" + json.dumps(envelope)[:600])
        return envelope.get("data", envelope)


def check_document(tap, port):
    status, text = http_get(port, "/api/v1/openapi.json")
    with open(os.path.join(env.SOURCE, "aggregator", "openapi.json")) as f:
        source = f.read()
    tap.check(status == 200 and text == source,
              "/api/v1/openapi.json serves aggregator/openapi.json as built in")
    doc = json.loads(text)
    tap.check(doc["openapi"] == "3.1.0" and set(doc["paths"]) == {
        "/api/v1/openapi.json", "/api/v1/models", "/api/v1/models/{model}/windows",
        "/api/v1/models/{model}/drift", "/api/v1/models/{model}/slo",
        "/api/v1/models/{model}/profiles", "/api/v1/models/{model}/profiles/{version}",
        "/api/v1/alerts", "/api/v1/silences", "/api/v1/silences/{id}"},
        "OpenAPI 3.1 with every endpoint", sorted(doc["paths"]))
    bad = []
    resolver = jsonschema.RefResolver.from_schema(doc)
    for name, schema in doc["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            bad.append(f"{name}: {e.message}")
    for ref in sorted(set(re.findall(r'"\$ref": "([^"]+)"', text))):
        try:
            resolver.resolve(ref)
        except jsonschema.RefResolutionError as e:
            bad.append(f"{ref}: {e}")
    intro = doc["info"]["description"]
    tap.check(not bad and "1e11" in intro and "errorType" in intro and "_ms" in intro,
              "every schema is valid JSON Schema, every $ref resolves, the time rule, the envelope "
              "and the unit convention are stated", "\n".join(bad))
    return doc


def check_times(tap, api, t0):
    """One time, written four ways, gives one answer; anything else is refused."""
    start = t0 + 2 * env.MINUTE
    rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start // 1000))
    offset = time.strftime("%Y-%m-%dT%H:%M:%S.000+02:00", time.gmtime(start // 1000 + 7200))
    by_ms = api.call("GET", f"/api/v1/models/churn/windows?from={start}&to={start + 60000}", 200,
                     "windows from/to in Unix ms")
    tap.check([w["start_ms"] for w in by_ms["windows"]] == [start, start + 60000],
              "from/to in ms bound the window starts", by_ms["windows"][:1])
    for form, text_from, text_to in (
            ("RFC 3339", rfc, f"{(start + 60000) // 1000}"),
            ("RFC 3339 with an offset and a fraction", offset, f"{start + 60000}"),
            ("Unix seconds with a fraction", f"{start / 1000:.3f}", f"{(start + 60000) / 1000}")):
        q = urllib.parse.urlencode({"from": text_from, "to": text_to})
        got = api.call("GET", f"/api/v1/models/churn/windows?{q}", 200, f"from/to as {form}")
        tap.check(got == by_ms, f"{form} reads as the same time as Unix ms", f"{q}")
    # Drift is kept per hour window (t0 starts one).
    hour_rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 // 1000))
    drift_ms = api.call("GET", f"/api/v1/models/churn/drift?version=v1&resolution=3600"
                        f"&window={t0}", 200, "drift window in Unix ms")
    drift_rfc = api.call("GET", "/api/v1/models/churn/drift?version=v1&resolution=3600&window=" +
                         urllib.parse.quote(hour_rfc), 200, "drift window as RFC 3339")
    tap.check(drift_ms == drift_rfc and drift_ms["start_ms"] == t0 and
              drift_ms["end_ms"] == t0 + 3600000, "drift: the same window either way",
              f"{drift_ms.get('start_ms')} {drift_rfc.get('start_ms')}")
    at = t0 + 11 * env.MINUTE
    slo_ms = api.call("GET", f"/api/v1/models/churn/slo?at={at}", 200, "slo at in Unix ms")
    slo_s = api.call("GET", f"/api/v1/models/churn/slo?at={at // 1000}", 200,
                     "slo at in Unix seconds")
    tap.check(slo_ms == slo_s and slo_ms["at_ms"] == at, "slo: the same instant either way",
              f"{slo_ms['at_ms']} {slo_s['at_ms']}")
    for bad in ("yesterday", f"{start}.5", "2026-12-01T17:00:00", "2026-02-30T00:00:00Z",
                "-5", "99999999999999999"):
        api.call("GET", "/api/v1/models/churn/windows?from=" + urllib.parse.quote(bad), 400,
                 f"from={bad} is refused")
    api.call("GET", "/api/v1/models/churn/slo?at=noon", 400, "at=noon is refused")
    api.call("GET", f"/api/v1/models/churn/drift?version=v1&window={t0 + 60000}", 400,
             "a window start that is not one is refused")


def check_unknown_model(tap, api):
    for path in ("windows", "drift", "slo", "profiles", "profiles/v1"):
        err = api.call("GET", f"/api/v1/models/nosuch/{path}", 404, f"unknown model: {path}")
        tap.check("unknown" in err["error"], f"{path}: the error says the model is unknown",
                  err)


def main(tap, cluster):
    receiver = env.Receiver(cluster)
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra=env.aggregator_config(cluster, receiver, RULES))
    agent = cluster.start_agent(extra=env.agent_config())
    port = agg.http_port
    api = Contract(tap, port, check_document(tap, port))
    api.call("GET", "/api/v1/models", 200, "no models yet")
    check_unknown_model(tap, api)

    t0 = env.base_time()
    env.push_profiles(port, "churn", ["v1"])
    env.send(cluster, agent, ["churn:v1"], t0, 6, PER_WINDOW, seed=1)
    env.send(cluster, agent, ["churn:v1"], t0 + 6 * env.MINUTE, 5, PER_WINDOW, SLOW, seed=2)
    wait_for(lambda: env.firing(port, "LatencyP99High"), 60, "churn's alert firing")

    models = api.call("GET", "/api/v1/models", 200, "the model listed")
    tap.check(models == {"models": ["churn"]}, "models: churn", models)
    windows = api.call("GET", f"/api/v1/models/churn/windows?from={t0}&to={t0 + 3600000}", 200,
                       "minute windows")
    tap.check(len(windows["windows"]) == 11 and
              sum(w["count"] for w in windows["windows"]) == 11 * PER_WINDOW,
              "11 minute windows with every request", len(windows["windows"]))
    api.call("GET", f"/api/v1/models/churn/windows?resolution=3600&from={t0}&limit=5", 200,
             "hour windows")
    api.call("GET", "/api/v1/models/churn/drift", 200, "drift of the newest window")
    api.call("GET", "/api/v1/models/churn/slo?version=v1", 200, "burn rates now")
    versions = api.call("GET", "/api/v1/models/churn/profiles", 200, "profile versions")
    tap.check(versions == {"versions": ["v1"]}, "profile versions: v1", versions)
    profile = api.call("GET", "/api/v1/models/churn/profiles/v1", 200, "the stored profile")
    api.call("PUT", "/api/v1/models/churn/profiles/v1", 401, "a profile without the token",
             doc=profile)
    stored = api.call("PUT", "/api/v1/models/churn/profiles/v1", 200, "the profile stored again",
                      doc=profile, token=env.TOKEN)
    tap.check(stored == {"stored": True}, "PUT answers stored", stored)
    check_times(tap, api, t0)

    # A profile may come before its model's first prediction, and makes the model known.
    early = dict(profile, model="early")
    api.call("PUT", "/api/v1/models/early/profiles/v1", 200, "a profile of a new model",
             doc=early, token=env.TOKEN)
    none_yet = api.call("GET", "/api/v1/models/early/windows", 200, "its model is known")
    tap.check(none_yet["windows"] == [], "no windows yet", none_yet)

    alerts = api.call("GET", "/api/v1/alerts?state=all", 200, "alerts")
    tap.check([a["labels"]["alertname"] for a in alerts["alerts"] if a["state"] == "firing"] ==
              ["LatencyP99High"], "the firing alert is listed", alerts)
    created = api.call("POST", "/api/v1/silences", 200, "a silence created",
                       doc={"matchers": ['model="churn"'], "duration": "1h", "created_by": "t",
                            "comment": "contract"}, token=env.TOKEN)
    silences = api.call("GET", "/api/v1/silences", 200, "silences")
    tap.check([s["id"] for s in silences["silences"]] == [created["id"]] and
              silences["silences"][0]["state"] == "active", "the silence is listed, active",
              silences)
    api.call("GET", "/api/v1/alerts", 200, "alerts, one silenced")
    expired = api.call("DELETE", f"/api/v1/silences/{created['id']}", 200, "the silence expired",
                       token=env.TOKEN)
    tap.check(expired == {"id": created["id"], "state": "expired"}, "DELETE answers expired",
              expired)

    # Errors, each as the document declares it.
    api.call("GET", "/api/v1/models/churn/windows?resolution=7", 400, "an unknown resolution")
    api.call("GET", "/api/v1/models/churn/windows?limit=0", 400, "limit 0")
    api.call("GET", "/api/v1/models/churn/drift?window=" + str(t0), 400, "window without version")
    api.call("GET", "/api/v1/models/churn/drift?version=v9", 404, "no profile for v9")
    api.call("GET", "/api/v1/models/churn/slo?version=" + "v" * 200, 400, "a version too long")
    api.call("GET", "/api/v1/models/churn/profiles/v2", 404, "no profile v2")
    api.call("GET", "/api/v1/models/churn/profiles/v%01", 400, "a version with a control byte")
    api.call("GET", "/api/v1/models/bad$name/profiles", 400, "a bad model name")
    api.call("PUT", "/api/v1/models/churn/profiles/v2", 400, "a profile for another version",
             doc=profile, token=env.TOKEN)
    for what in ("windows", "drift", "slo"):
        api.call("PUT", f"/api/v1/models/churn/{what}", 405, f"PUT {what}", doc={},
                 token=env.TOKEN)
    api.call("GET", "/api/v1/alerts?state=loud", 400, "an unknown alert state")
    api.call("POST", "/api/v1/silences", 401, "a silence without the token",
             doc={"matchers": ['model="churn"'], "duration": "1h"})
    api.call("POST", "/api/v1/silences", 400, "a silence of everything",
             doc={"matchers": ['model=~".*"'], "duration": "1h"}, token=env.TOKEN)
    api.call("DELETE", "/api/v1/silences/nosuch", 401, "DELETE without the token")
    api.call("DELETE", "/api/v1/silences/nosuch", 404, "DELETE of no silence", token=env.TOKEN)
    status, envelope = api_request(port, "/api/v1/nothing")
    tap.check(status == 404 and envelope["errorType"] == "not_found",
              "an unknown path: 404 not_found in the envelope", envelope)

    # Writes with no token file configured: 403.
    cluster.stop(agent)
    other = cluster.start_aggregator(name="aggregator-open", extra=env.aggregator_config(
        cluster, receiver, RULES, token=False))
    api.call("POST", "/api/v1/silences", 403, "silence writes disabled",
             doc={"matchers": ['model="churn"'], "duration": "1h"}, port=other.http_port)
    api.call("DELETE", "/api/v1/silences/x", 403, "silence expiry disabled",
             port=other.http_port)

    # Redis down: every read is unavailable.
    cluster.stop(cluster.redis)
    for path in ("models", "models/churn/windows", "models/churn/drift", "models/churn/slo",
                 "models/churn/profiles", "models/churn/profiles/v1", "alerts", "silences"):
        api.call("GET", f"/api/v1/{path}", 503, f"{path} with Redis down")
    api.call("PUT", "/api/v1/models/churn/profiles/v1", 503, "PUT with Redis down", doc=profile,
             token=env.TOKEN)
    api.call("POST", "/api/v1/silences", 503, "POST with Redis down",
             doc={"matchers": ['model="churn"'], "duration": "1h", "created_by": "t",
                  "comment": "c"},
             token=env.TOKEN)
    api.call("DELETE", "/api/v1/silences/x", 503, "DELETE with Redis down", token=env.TOKEN)

    declared = {(t, m, s) for t, ops in api.doc["paths"].items() for m, op in ops.items()
                for s in op["responses"] if s != "500"}
    api.seen.add(("/api/v1/openapi.json", "get", "200"))
    tap.check(declared <= api.seen, "every declared status was seen",
              sorted(declared - api.seen))


if __name__ == "__main__":
    run(main)
