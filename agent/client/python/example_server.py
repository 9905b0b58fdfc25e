#!/usr/bin/env python3
"""example_server.py — a toy model server instrumented with modelwatch, standard library only.

It serves a logistic model over two features and captures every prediction with one call to
the modelwatch client; labels that arrive later are reported with one more call. Telemetry
never fails a request: captures wait in the client's buffer while the agent is not there yet,
and when the buffer is full they are dropped and counted.

    meson install -C build                  # libmodelwatch.so
    pip install agent/client/python         # the modelwatch package (in a venv)
    python3 agent/client/python/example_server.py --port 8080 \\
        --endpoint ipc:///run/modelwatch/agent.sock

    curl -s localhost:8080/predict -d '{"features": {"x1": 0.4, "x2": 1.7}}'
    {"prediction_id": "6f1c...", "score": 0.83, "class": "positive", "captured": true}
    curl -s localhost:8080/feedback -d '{"prediction_id": "6f1c...", "label": "positive"}'

Endpoints: POST /predict {"features": {"x1": num, "x2": num, ...}, "prediction_id"?: str}
(extra features are captured too; x1 or x2 absent or null count as 0 and are captured as
missing), POST /feedback {"prediction_id": str, "label": str | number}, GET /healthz.
"""
import argparse
import json
import math
import signal
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Mapping, Tuple

import modelwatch

MODEL = "toy-logistic"
VERSION = "v1"
WEIGHTS = {"x1": 1.5, "x2": -0.8}
BIAS = 0.1
MAX_BODY_BYTES = 1 << 20


Features = Mapping[str, modelwatch.FeatureValue]


def predict(features: Features) -> Tuple[float, str]:
    """The toy model: logistic regression over x1 and x2. Returns (score, class)."""
    z = BIAS
    for name, weight in WEIGHTS.items():
        value = features.get(name)
        z += weight * (float(value) if value is not None else 0.0)
    score = 1.0 / (1.0 + math.exp(-max(-500.0, min(500.0, z))))
    return score, "positive" if score >= 0.5 else "negative"


class ModelServer(ThreadingHTTPServer):
    """The HTTP server, holding the process's one modelwatch client."""

    def __init__(self, address: Tuple[str, int], mw: modelwatch.Client) -> None:
        super().__init__(address, Handler)
        self.mw = mw


class Handler(BaseHTTPRequestHandler):
    server_version = "modelwatch-example/1"
    protocol_version = "HTTP/1.1"

    server: ModelServer

    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise
        pass

    def reply(self, status: int, doc: Dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_json(self) -> Dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            raise ValueError("a JSON body of at most 1 MiB is required")
        doc = json.loads(self.rfile.read(length))
        if not isinstance(doc, dict):
            raise ValueError("the body must be a JSON object")
        return doc

    def do_GET(self) -> None:
        if self.path != "/healthz":
            return self.reply(404, {"error": "not found"})
        mw = self.server.mw
        self.reply(200, {"ok": True, "sent": mw.sent, "dropped": mw.dropped})

    def do_POST(self) -> None:
        try:
            doc = self.read_json()
            if self.path == "/predict":
                return self.predict(doc)
            if self.path == "/feedback":
                return self.feedback(doc)
            return self.reply(404, {"error": "not found"})
        except ValueError as e:  # bad JSON or an invalid feature: the client's mistake
            return self.reply(400, {"error": str(e)})

    def predict(self, doc: Dict[str, Any]) -> None:
        started_ns = time.monotonic_ns()
        features = doc.get("features")
        if not isinstance(features, dict):
            raise ValueError("'features' must be an object")
        for name, value in features.items():
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float, str))):
                raise ValueError(f"feature {name!r} must be a number, a string or null")
        if any(isinstance(features.get(n), str) for n in WEIGHTS):
            raise ValueError(f"features {sorted(WEIGHTS)} must be numbers")
        prediction_id = doc.get("prediction_id") or uuid.uuid4().hex
        score, label = predict(features)
        latency_us = (time.monotonic_ns() - started_ns) // 1000
        captured = self.server.mw.capture(
            MODEL, str(prediction_id), version=VERSION, latency_us=latency_us,
            features={**{n: None for n in WEIGHTS}, **features},
            predicted_class=label, score=score)
        self.reply(200, {"prediction_id": prediction_id, "score": score, "class": label,
                         "captured": captured})

    def feedback(self, doc: Dict[str, Any]) -> None:
        prediction_id = doc.get("prediction_id")
        label = doc.get("label")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ValueError("'prediction_id' must be a non-empty string")
        if isinstance(label, bool) or not isinstance(label, (str, int, float)):
            raise ValueError("'label' must be a string (class) or a number (value)")
        captured = self.server.mw.feedback(MODEL, prediction_id, label, version=VERSION)
        self.reply(200, {"captured": captured})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--endpoint", default=modelwatch.DEFAULT_ENDPOINT,
                        help="the agent's intake address (default %(default)s)")
    parser.add_argument("--wait-ready", type=float, default=2.0, metavar="SECONDS",
                        help="at start, wait this long for the agent (default %(default)s)")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the client is closed on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

    with modelwatch.Client(args.endpoint) as mw:
        # Not needed for capturing (captures wait for the agent), but worth saying at start.
        connected = mw.wait_ready(args.wait_ready)
        server = ModelServer((args.host, args.port), mw)
        server.daemon_threads = True
        print(f"serving {MODEL} {VERSION} on http://{args.host}:{server.server_address[1]} "
              f"capturing to {args.endpoint} "
              f"({'connected' if connected else 'agent not connected yet'})", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            handed_over = mw.flush(2.0)
    print(f"captured: sent={mw.sent} dropped={mw.dropped} "
          f"all_handed_over={'yes' if handed_over else 'no'}", flush=True)


if __name__ == "__main__":
    main()
