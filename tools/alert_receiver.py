"""A local HTTP receiver standing in for PagerDuty's Events API v2 and for webhook consumers:
the alerting tests and the local demo (deploy/local/demo.sh) point the aggregator's receivers
at it. Standard library only; runs as its own process:

    python3 tools/alert_receiver.py --port-file PORT_FILE --log requests.jsonl \
        [--script script.json]

It records every request, as it arrives, to one JSON line in the log (seq, wall time, method,
path, headers, body text, and the answer it chose), and answers from a script: for each path a
list of answers used in order, then the path's "default", then the global default (202 with
PagerDuty's success body). An answer is an object:

    {"status": 202}                          PagerDuty's success body
    {"status": 400}                          PagerDuty's "invalid event" body
    {"status": 429, "retry_after": 1}        with a Retry-After header (seconds)
    {"status": 500}
    {"hang": 30}                             read the request, answer nothing for 30 s, close
    {"status": 200, "body": "..."}           any status with a given body

The script can also be replaced while running: POST /_control/script with the JSON. Requests to
/_control/ are not recorded.

Script example: {"/a/v2/enqueue": [{"status": 429, "retry_after": 1}], "default": {"status": 202}}
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PD_BODIES = {
    202: {"status": "success", "message": "Event processed"},
    400: {"status": "invalid event", "message": "Event object is invalid",
          "errors": ["'payload.summary' is missing or blank"]},
    429: {"status": "throttle event", "message": "Requests for this service are arriving too "
          "quickly. Please retry later."},
    500: {"status": "error", "message": "internal server error"},
}


class State:
    def __init__(self, log_path, script):
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1)
        self.seq = 0
        self.script = {}
        self.set_script(script)

    def set_script(self, script):
        with self.lock:
            self.script = {k: (list(v) if isinstance(v, list) else v) for k, v in script.items()}

    def next_answer(self, path):
        with self.lock:
            self.seq += 1
            steps = self.script.get(path)
            if isinstance(steps, list) and steps:
                return self.seq, steps.pop(0)
            per_path = self.script.get(path + "#default")
            if per_path:
                return self.seq, per_path
            return self.seq, self.script.get("default", {"status": 202})

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "modelwatch-alert-receiver/1"

    def log_message(self, fmt, *args):  # quiet: the JSONL log is the record
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        state = self.server.mw_state
        body = self._read_body()
        if self.path.startswith("/_control/"):
            if self.path == "/_control/script":
                state.set_script(json.loads(body or b"{}"))
            self._answer(200, b"{}", {})
            return
        seq, answer = state.next_answer(self.path)
        state.record({
            "seq": seq,
            "t": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
            "answer": answer,
        })
        if "hang" in answer:
            time.sleep(float(answer["hang"]))
            self.close_connection = True
            return
        status = int(answer.get("status", 202))
        headers = {}
        if "retry_after" in answer:
            headers["Retry-After"] = str(answer["retry_after"])
        if "body" in answer:
            payload = answer["body"].encode()
        else:
            payload = json.dumps(PD_BODIES.get(status, {"status": status})).encode()
        self._answer(status, payload, headers)

    do_PUT = do_POST

    def _answer(self, status, payload, headers):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)


def read_log(path):
    """Every recorded request, in arrival order (for the tests and the demo's report)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--script", help="JSON file with the initial script")
    args = ap.parse_args()
    script = {}
    if args.script:
        with open(args.script) as f:
            script = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.mw_state = State(args.log, script)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
