#!/usr/bin/env python3
"""The Python binding of libmodelwatch, against real processes.

1. With no agent listening, capture and feedback return at once: buffered (True) until the
   buffer is full, then refused (False) and counted; close() counts what it could not hand
   over; wait_ready() and flush() say the agent is not there. The options reach the library.
2. Invalid arguments raise ValueError and reach nothing.
3. Every field passed from Python arrives on the wire as given: a nanomsg PULL socket (ctypes
   over libnanomsg) receives what the binding sends and the protobuf is decoded here, which
   checks the ctypes mirror of struct mw_event / mw_feature field by field.
4. With devkafka and an agent: a new client's first 1,000 events and 100 feedbacks, captured
   right after Client() without waiting or retrying, are all accepted, exactly. (They used to
   be refused until the connection formed: about 36 of the first 1,100 were lost.)
5. A child process that inherits a client gets ForkedError from every call, never a hang, and
   the parent's client still works.
6. example_server.py, run as a model server, captures each /predict exactly once.
"""
import ctypes
import ctypes.util
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request

from harness import TestFailure, free_port, http_get, metrics, run, wait_for

BUILD_DIR = os.path.abspath(os.environ.get("MW_BUILD_DIR") or
                            (sys.argv[1] if len(sys.argv) > 1 else "build"))
LIB_PATH = os.path.join(BUILD_DIR, "agent", "client", "libmodelwatch.so")
PY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "..", "..", "agent", "client", "python")
PY_DIR = os.path.normpath(PY_DIR)
os.environ["MODELWATCH_LIB"] = LIB_PATH
sys.path.insert(0, PY_DIR)

EVENTS = 1000
FEEDBACKS = 100
PREDICTS = 5
ACCEPTED = "modelwatch_agent_events_accepted_total"
FEEDBACK_ACCEPTED = "modelwatch_agent_feedback_accepted_total"


def send_retrying(call, what, timeout_s=30):
    """Call until it returns True: the nanomsg connection forms in the background, and a
    False means the message was dropped (never sent), so retrying cannot duplicate it."""
    deadline = time.monotonic() + timeout_s
    while not call():
        if time.monotonic() > deadline:
            raise TestFailure(f"{what}: still dropped after {timeout_s}s")
        time.sleep(0.001)


# --- a minimal protobuf wire decoder, enough to read ClientMessage ---------------------------
def decode(data):
    """{field number: [values]}; varints as int, fixed64 as bytes, length-delimited as bytes."""
    fields = {}
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = varint(data, i)
        elif wire_type == 1:
            value, i = data[i:i + 8], i + 8
        elif wire_type == 2:
            length, i = varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire_type == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise TestFailure(f"unexpected wire type {wire_type}")
        fields.setdefault(number, []).append((wire_type, value))
    return fields


def varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def one(fields, number, kind="bytes"):
    """The single value of a field: 'str', 'int', 'double', 'bytes', or None if absent."""
    if number not in fields:
        return None
    wire_type, value = fields[number][-1]
    if kind == "str":
        return value.decode()
    if kind == "double":
        return struct.unpack("<d", value)[0]
    return value


def doubles(fields, number):
    out = []
    for wire_type, value in fields.get(number, []):
        if wire_type == 2:  # packed
            out += struct.unpack(f"<{len(value) // 8}d", value)
        else:
            out.append(struct.unpack("<d", value)[0])
    return out


def client_message(raw, stream_seen):
    """The one ClientMessage of a ClientBatch of one: libmodelwatch numbers all it sends, its
    first entry (field 15) being a ClientMessage whose body is a ClientStream (field 3). Records
    the stream's (client id, messages before, events before)."""
    batch = decode(raw)
    entries = [decode(value) for _, value in batch.get(15, [])]
    if set(batch) != {15} or len(entries) != 2 or set(entries[0]) != {3}:
        raise TestFailure(f"expected a ClientStream and one message, got {batch}")
    stream = decode(one(entries[0], 3))
    stream_seen.append((one(stream, 1), one(stream, 2), one(stream, 3)))
    return entries[1]


class PullSocket:
    """A nanomsg PULL socket over ctypes: what the agent's intake is, minus the agent."""
    AF_SP, NN_PULL, NN_SOL_SOCKET, NN_RCVTIMEO = 1, 81, 0, 5

    def __init__(self, endpoint):
        name = ctypes.util.find_library("nanomsg")
        if not name:
            raise TestFailure("libnanomsg not found")
        self.nn = ctypes.CDLL(name, use_errno=True)
        self.nn.nn_recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.nn.nn_bind.argtypes = [ctypes.c_int, ctypes.c_char_p]
        self.sock = self.nn.nn_socket(self.AF_SP, self.NN_PULL)
        timeout_ms = ctypes.c_int(5000)
        if (self.sock < 0 or
                self.nn.nn_setsockopt(self.sock, self.NN_SOL_SOCKET, self.NN_RCVTIMEO,
                                      ctypes.byref(timeout_ms), 4) < 0 or
                self.nn.nn_bind(self.sock, endpoint.encode()) < 0):
            raise TestFailure(f"nanomsg PULL on {endpoint}: errno {ctypes.get_errno()}")
        self.buf = ctypes.create_string_buffer(1 << 17)

    def recv(self):
        n = self.nn.nn_recv(self.sock, self.buf, len(self.buf), 0)
        if n < 0:
            raise TestFailure(f"nn_recv failed: errno {ctypes.get_errno()}")
        return self.buf.raw[:n]

    def close(self):
        self.nn.nn_close(self.sock)


# --- the scenarios ------------------------------------------------------------------------------
def check_without_agent(tap, modelwatch, cluster):
    with modelwatch.Client(f"ipc://{cluster.dir}/nobody-listens.sock") as mw:
        started = time.monotonic()
        ok = mw.capture("churn", "req-1", features={"age": 42})
        elapsed_s = time.monotonic() - started
        tap.check(ok is True, "without an agent, capture is buffered for it (True)")
        tap.check(elapsed_s < 0.1, "... at once", f"took {elapsed_s * 1000:.1f} ms")
        started = time.monotonic()
        results = [mw.capture("churn", f"req-{i}") for i in range(1000)]
        results.append(mw.feedback("churn", "req-1", "yes"))
        results.append(mw.feedback("churn", "req-1", 2.5))
        elapsed_s = time.monotonic() - started
        tap.check(all(results) and mw.dropped == 0 and mw.sent == 1003,
                  "1,000 captures and 2 feedbacks without an agent: all buffered",
                  f"dropped={mw.dropped} sent={mw.sent}")
        tap.check(elapsed_s < 2.0, "... without blocking", f"took {elapsed_s:.3f} s")
        started = time.monotonic()
        ready, flushed = mw.wait_ready(0.2), mw.flush(0.2)
        elapsed_s = time.monotonic() - started
        tap.check(ready is False and flushed is False and 0.35 < elapsed_s < 2.0,
                  "wait_ready() and flush() wait their timeout and say False",
                  f"ready={ready} flushed={flushed} took {elapsed_s:.3f} s")
    tap.check(mw.closed and mw.sent == 1003 and mw.dropped == 1003,
              "close() without an agent counts every buffered message dropped, and the "
              "counters survive it", f"sent={mw.sent} dropped={mw.dropped}")

    # The smallest buffer (buffer_bytes is rounded up to 256 KiB) fills: then refused, counted.
    with modelwatch.Client(f"ipc://{cluster.dir}/nobody-listens.sock", buffer_bytes=1,
                           close_timeout_ms=100, flush_interval_us=500) as mw:
        results = [mw.capture("churn", f"req-{i}", features={"f": float(i)})
                   for i in range(10000)]
        accepted = sum(results)
        refused = len(results) - accepted
        # 256 KiB holds 2,048 to 8,192 records of 32 to 128 bytes (header included); the
        # default 4 MiB would have held all 10,000.
        tap.check(2048 <= accepted <= 8192 and results[:accepted] == [True] * accepted and
                  mw.dropped == refused and mw.sent == accepted,
                  "with buffer_bytes=1 (256 KiB) the buffer fills, then captures return False "
                  "and are counted", f"accepted={accepted} refused={refused} "
                  f"sent={mw.sent} dropped={mw.dropped}")
    tap.check(mw.dropped == 10000, "... and close() counts the buffered ones too",
              f"dropped={mw.dropped}")
    bad = []
    for options in [{"buffer_bytes": -1}, {"close_timeout_ms": 1 << 32},
                    {"flush_interval_us": 1.5}, {"batch_bytes": "16k"}]:
        try:
            modelwatch.Client(f"ipc://{cluster.dir}/x.sock", **options).close()
            bad.append(options)
        except ValueError:
            pass
    tap.check(not bad, "options out of range raise ValueError", f"accepted: {bad}")


def check_invalid_arguments(tap, modelwatch, cluster):
    nan, inf = float("nan"), float("inf")
    too_many = {f"f{i}": float(i) for i in range(modelwatch.MAX_FEATURES + 1)}
    cases = [
        ("empty model", lambda c: c.capture("", "p")),
        ("model not a str", lambda c: c.capture(b"m", "p")),
        ("model None", lambda c: c.capture(None, "p")),
        ("empty prediction_id", lambda c: c.capture("m", "")),
        ("prediction_id not a str", lambda c: c.capture("m", 17)),
        ("NUL in model", lambda c: c.capture("m\0x", "p")),
        ("NaN feature", lambda c: c.capture("m", "p", features={"a": nan})),
        ("infinite feature", lambda c: c.capture("m", "p", features={"a": -inf})),
        ("bool feature", lambda c: c.capture("m", "p", features={"a": True})),
        ("list feature", lambda c: c.capture("m", "p", features={"a": [1]})),
        ("int feature too large for a double", lambda c: c.capture("m", "p",
                                                                   features={"a": 10 ** 400})),
        ("empty feature name", lambda c: c.capture("m", "p", features={"": 1.0})),
        ("feature name not a str", lambda c: c.capture("m", "p", features={3: 1.0})),
        ("features not a dict", lambda c: c.capture("m", "p", features=[("a", 1.0)])),
        ("513 features", lambda c: c.capture("m", "p", features=too_many)),
        ("score above 1", lambda c: c.capture("m", "p", score=1.5)),
        ("score below 0", lambda c: c.capture("m", "p", score=-0.1)),
        ("NaN score", lambda c: c.capture("m", "p", score=nan)),
        ("NaN in scores", lambda c: c.capture("m", "p", scores=[0.1, nan])),
        ("infinite score in a dict", lambda c: c.capture("m", "p", scores={"a": inf})),
        ("scores not a list or dict", lambda c: c.capture("m", "p", scores="0.5")),
        ("1025 scores", lambda c: c.capture("m", "p", scores=[0.0] * 1025)),
        ("NaN value", lambda c: c.capture("m", "p", value=nan)),
        ("status not ok/error", lambda c: c.capture("m", "p", status="fail")),
        ("negative latency", lambda c: c.capture("m", "p", latency_us=-1)),
        ("latency beyond uint64", lambda c: c.capture("m", "p", latency_us=1 << 64)),
        ("float latency", lambda c: c.capture("m", "p", latency_us=1.5)),
        ("negative event time", lambda c: c.capture("m", "p", event_time_ms=-5)),
        ("negative tokens", lambda c: c.capture("m", "p", input_tokens=-1)),
        ("error_code not a str", lambda c: c.capture("m", "p", status="error", error_code=5)),
        ("feedback: empty model", lambda c: c.feedback("", "p", "yes")),
        ("feedback: empty prediction_id", lambda c: c.feedback("m", "", "yes")),
        ("feedback: NaN label", lambda c: c.feedback("m", "p", nan)),
        ("feedback: bool label", lambda c: c.feedback("m", "p", True)),
        ("feedback: None label", lambda c: c.feedback("m", "p", None)),
    ]
    with modelwatch.Client(f"ipc://{cluster.dir}/nobody-listens-2.sock") as mw:
        not_raised = []
        for name, call in cases:
            try:
                call(mw)
                not_raised.append(name)
            except ValueError:
                pass
        tap.check(not not_raised, f"{len(cases)} kinds of invalid argument raise ValueError",
                  "did not raise: " + ", ".join(not_raised))
        tap.check(mw.sent == 0 and mw.dropped == 0,
                  "refused arguments reach nothing (neither sent nor dropped)",
                  f"sent={mw.sent} dropped={mw.dropped}")
        tap.check(mw.capture("m", "p", features={"n": 1, "s": "x", "gone": None}) is True,
                  "the client still works after refusing arguments (buffers the event)")
    closed = []
    for name, call in [("capture on a closed client", lambda: mw.capture("m", "p")),
                       ("feedback on a closed client", lambda: mw.feedback("m", "p", "x"))]:
        try:
            call()
        except ValueError:
            closed.append(name)
    tap.check(len(closed) == 2, "calls on a closed client raise ValueError")
    bad_endpoints = []
    for endpoint in ["", "nosuchtransport://x", None]:
        try:
            modelwatch.Client(endpoint).close()
            bad_endpoints.append(repr(endpoint))
        except ValueError:
            pass
    tap.check(not bad_endpoints, "a malformed endpoint raises ValueError",
              "accepted: " + ", ".join(bad_endpoints))
    tap.check(modelwatch.strerror(-3) == "queue or buffer full" and
              modelwatch.err_name(-4) == "MW_EAGAIN" and
              modelwatch.strerror(12345) == "unknown error",
              "strerror() and err_name() name the MW_E* codes")


def check_wire(tap, modelwatch, cluster):
    endpoint = f"ipc://{cluster.dir}/pull.sock"
    pull = PullSocket(endpoint)
    try:
        with modelwatch.Client(endpoint) as mw:
            send_retrying(lambda: mw.capture(
                "fraud", "req-äé", version="v7", latency_us=123456, event_time_ms=1700000000123,
                status="error", error_code="timeout",
                features={"amount": 12.5, "count": 3, "country": "fr", "device": None},
                predicted_class="legit", score=0.25, scores={"legit": 0.25, "fraud": 0.75},
                value=-2.5, input_tokens=11, output_tokens=1 << 40), "capture to the PULL socket")
            streams = []
            ev_msg = client_message(pull.recv(), streams)
            send_retrying(lambda: mw.feedback("fraud", "req-äé", "fraud", version="v7"),
                          "feedback")
            fb_class = client_message(pull.recv(), streams)
            send_retrying(lambda: mw.feedback("fraud", "req-2", 3), "feedback value")
            fb_value = client_message(pull.recv(), streams)
            send_retrying(lambda: mw.capture("fraud", "req-3", scores=[0.5, 0.5]),
                          "capture with a score list")
            list_msg = client_message(pull.recv(), streams)
    finally:
        pull.close()

    ids = {s[0] for s in streams}
    tap.check(len(ids) == 1 and len(next(iter(ids))) == 8 and
              [(s[1], s[2]) for s in streams] == [(0, 0), (1, 1), (2, 1), (3, 1)],
              "each message is numbered: one client id, messages and events sent before it",
              str(streams))
    ev = decode(one(ev_msg, 1))
    got = {
        "model": one(ev, 1, "str"), "version": one(ev, 2, "str"),
        "prediction_id": one(ev, 3, "str"), "event_time_ms": one(ev, 4),
        "latency_us": one(ev, 5), "status": one(ev, 6), "error_code": one(ev, 7, "str"),
        "input_tokens": one(ev, 10), "output_tokens": one(ev, 11),
    }
    want = {"model": "fraud", "version": "v7", "prediction_id": "req-äé",
            "event_time_ms": 1700000000123, "latency_us": 123456, "status": 2,
            "error_code": "timeout", "input_tokens": 11, "output_tokens": 1 << 40}
    tap.check(got == want, "event fields arrive as given", f"want {want}\ngot  {got}")

    features = []
    for _, raw in ev.get(8, []):
        f = decode(raw)
        features.append((one(f, 1, "str"), one(f, 2, "double"), one(f, 3, "str"), one(f, 4)))
    want_features = [("amount", 12.5, None, None), ("count", 3.0, None, None),
                     ("country", None, "fr", None), ("device", None, None, 1)]
    tap.check(features == want_features, "numeric, categorical and missing features arrive",
              f"want {want_features}\ngot  {features}")

    out = decode(one(ev, 9))
    got_out = (one(out, 1, "str"), one(out, 2, "double"), doubles(out, 3),
               [v.decode() for _, v in out.get(4, [])], one(out, 5, "double"))
    want_out = ("legit", 0.25, [0.25, 0.75], ["legit", "fraud"], -2.5)
    tap.check(got_out == want_out, "outputs (class, score, scores by class, value) arrive",
              f"want {want_out}\ngot  {got_out}")

    lst = decode(one(list_msg, 1))
    lst_out = decode(one(lst, 9))
    tap.check(doubles(lst_out, 3) == [0.5, 0.5] and 4 not in lst_out and 2 not in lst_out
              and one(lst, 2, "str") in (None, "") and 8 not in lst,
              "a score list arrives without class names; absent options stay absent")

    fb = decode(one(fb_class, 2))
    fv = decode(one(fb_value, 2))
    tap.check((one(fb, 1, "str"), one(fb, 2, "str"), one(fb, 3, "str"), one(fb, 5, "str")) ==
              ("fraud", "v7", "req-äé", "fraud") and 1 not in fb_class,
              "a class label arrives as Feedback.label_class")
    tap.check(one(fv, 6, "double") == 3.0 and 5 not in fv and one(fv, 3, "str") == "req-2",
              "a numeric label arrives as Feedback.label_value")


def agent_counts(agent):
    m = metrics(agent.http_port)
    return m.get(ACCEPTED), m.get(FEEDBACK_ACCEPTED), m


def wait_for_counts(agent, events, feedbacks, what):
    wait_for(lambda: agent_counts(agent)[:2] == (events, feedbacks), 60, what)
    time.sleep(0.5)  # anything extra would show up now
    return agent_counts(agent)


def check_agent(tap, modelwatch, cluster, agent):
    refused = []
    with modelwatch.Client(agent.endpoint) as mw:  # captures at once: no wait, no retry
        for i in range(EVENTS):
            error = i % 10 == 0
            accepted = mw.capture(
                "churn", f"req-{i}", version="v3", latency_us=500 + i,
                status="error" if error else "ok", error_code="timeout" if error else None,
                features={"age": 20 + i % 50, "plan": ("free", "pro")[i % 2],
                          "tenure": None if i % 7 == 0 else i / 10},
                predicted_class=("stay", "churn")[i % 2], score=(i % 100) / 100,
                input_tokens=i % 5)
            if not accepted:
                refused.append(f"event {i}")
        for i in range(FEEDBACKS):
            label = ("stay", "churn")[i % 2] if i % 2 == 0 else float(i)
            if not mw.feedback("churn", f"req-{i}", label, version="v3"):
                refused.append(f"feedback {i}")
        tap.check(not refused and mw.sent == EVENTS + FEEDBACKS and mw.dropped == 0,
                  "a new client accepts its first 1,100 messages at once, none refused",
                  f"sent={mw.sent} dropped={mw.dropped} refused={refused[:5]}...")
        events, feedbacks, m = wait_for_counts(agent, EVENTS, FEEDBACKS,
                                               "the agent to accept 1,000 events and 100 labels")
    tap.check(events == EVENTS, f"the agent accepted exactly {EVENTS} events", f"{events}")
    tap.check(feedbacks == FEEDBACKS, f"the agent accepted exactly {FEEDBACKS} feedbacks",
              f"{feedbacks}")
    dropped = {k: v for k, v in m.items()
               if k.startswith("modelwatch_agent_messages_dropped_total") and v}
    tap.check(not dropped, "the agent dropped nothing as malformed or otherwise", f"{dropped}")


def check_fork(tap, modelwatch, cluster, agent):
    """A child that inherits a client: ForkedError from every call, never a hang."""
    with modelwatch.Client(agent.endpoint) as mw:
        tap.check(mw.wait_ready(10), "the parent's client connects")
        before_events = agent_counts(agent)[0]
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 0
            for bit, call in enumerate([lambda: mw.capture("churn", "child-1"),
                                        lambda: mw.feedback("churn", "child-1", "x"),
                                        lambda: mw.flush(1), lambda: mw.wait_ready(1)]):
                try:
                    call()
                    code |= 1 << bit
                except modelwatch.ForkedError:
                    pass
                except BaseException:
                    code |= 16
            mw.close()  # frees the child's copy only
            os._exit(code)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        tap.check(status == 0, "in a forked child every call on the inherited client raises "
                  "ForkedError, and close() returns", f"wait status {status}")
        tap.check(mw.capture("churn", "parent-after-fork") and mw.flush(5),
                  "the parent's client still works after the fork")
    wait_for_counts(agent, before_events + 1, agent_counts(agent)[1],
                    "the parent's event after the fork (and none from the child)")
    tap.check(agent_counts(agent)[0] == before_events + 1,
              "the agent counted the parent's event only")


def post(port, path, doc, raw=None):
    body = raw if raw is not None else json.dumps(doc).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def check_example_server(tap, cluster, agent):
    port = free_port()
    env = dict(os.environ, MODELWATCH_LIB=LIB_PATH, PYTHONDONTWRITEBYTECODE="1")
    server = cluster.spawn("example-server",
                           [sys.executable, os.path.join(PY_DIR, "example_server.py"),
                            "--port", str(port), "--endpoint", agent.endpoint], env=env)
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, "example_server /healthz")
    before_events, before_feedbacks, _ = agent_counts(agent)

    replies = [post(port, "/predict", {"features": {"x1": 0.2 * i, "x2": 1.0 - 0.3 * i,
                                                    "region": "eu"}})
               for i in range(PREDICTS)]
    tap.check(all(status == 200 and 0.0 < doc["score"] < 1.0 and
                  doc["class"] in ("positive", "negative") for status, doc in replies),
              "example_server answers /predict with a score", f"{replies}")
    tap.check(all(doc.get("captured") is True for _, doc in replies),
              "... and captured every prediction", f"{replies}")
    status, doc = post(port, "/feedback", {"prediction_id": replies[0][1]["prediction_id"],
                                           "label": "positive"})
    tap.check(status == 200 and doc.get("captured") is True,
              "example_server forwards /feedback", f"{status} {doc}")
    status, _ = post(port, "/predict", None, raw=b"{not json")
    status2, _ = post(port, "/predict", {"features": {"x1": True}})
    tap.check(status == 400 and status2 == 400, "bad requests get 400 and capture nothing")

    events, feedbacks, _ = wait_for_counts(agent, before_events + PREDICTS,
                                           before_feedbacks + 1,
                                           "the agent to count the example server's messages")
    tap.check(events - before_events == PREDICTS,
              f"the agent's accepted count rose by exactly {PREDICTS}",
              f"before {before_events}, after {events}")
    tap.check(feedbacks - before_feedbacks == 1, "... and its feedback count by exactly 1")
    code = cluster.stop(server)
    tap.check(code == 0, "example_server exits cleanly on SIGTERM", f"exit code {code}")


def main(tap, cluster):
    if not os.path.exists(LIB_PATH):
        raise TestFailure(f"missing {LIB_PATH}: build first")
    import modelwatch  # after MODELWATCH_LIB and sys.path are set

    check_without_agent(tap, modelwatch, cluster)
    check_invalid_arguments(tap, modelwatch, cluster)
    check_wire(tap, modelwatch, cluster)

    cluster.start_devkafka()
    agent = cluster.start_agent()
    check_agent(tap, modelwatch, cluster, agent)
    check_fork(tap, modelwatch, cluster, agent)
    check_example_server(tap, cluster, agent)


if __name__ == "__main__":
    run(main)
