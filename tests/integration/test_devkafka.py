#!/usr/bin/env python3
"""test_devkafka.py — modelwatch-devkafka's lifecycle and control protocol, against the real binary.

    tests/integration/test_devkafka.py path/to/modelwatch-devkafka

Starts devkafka with three brokers and a temp dir for its bootstrap and control files, drives the
control port (ping, offsets, topic, down/up, rtt, garbage and over-long lines, a second client),
then stops it with SIGTERM and expects exit 0 within 5 s and both files removed. Prints TAP;
exits non-zero on any failure. The process is killed on every path. Producing is not tested
here: the agent's integration tests produce through the real agent.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 10.0  # "offsets" while brokers are down answers after ~3 s
N_BROKERS = 3


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        print(("ok %d - %s" if cond else "not ok %d - %s") % (self.n, name), flush=True)
        if not cond:
            self.failed += 1
            if diag:
                for line in str(diag).splitlines():
                    print("# " + line, flush=True)
        return cond

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


class Control:
    """One control connection: send a line, read one reply line."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=REPLY_TIMEOUT_S)
        self.buf = b""

    def raw(self, data):
        self.sock.sendall(data)
        return self.read_line()

    def cmd(self, line):
        return self.raw(line.encode() + b"\n")

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("control connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("ascii", "replace")

    def close(self):
        self.sock.close()


def wait_for_file(path, proc, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                content = f.read().strip()
            if content:
                return content
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def parse_offsets(reply):
    """'ok 0:5 1:7' -> {0: 5, 1: 7}, or None if the reply is not of that form."""
    words = reply.split()
    if not words or words[0] != "ok":
        return None
    out = {}
    try:
        for word in words[1:]:
            part, offset = word.split(":")
            out[int(part)] = int(offset)
    except ValueError:
        return None
    return out


def test_usage(tap, binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    tap.ok(r.returncode == 0 and "--bootstrap-file" in r.stdout, "--help prints usage, exit 0",
           r.stdout + r.stderr)
    r = subprocess.run([binary, "--no-such-flag"], capture_output=True, text=True, timeout=10)
    tap.ok(r.returncode == 2 and "usage" in r.stderr, "unknown flag: usage on stderr, exit 2",
           "rc=%d" % r.returncode)
    r = subprocess.run([binary, "--brokers", "0", "--bootstrap-file", "/nonexistent/x"],
                       capture_output=True, text=True, timeout=10)
    tap.ok(r.returncode == 2, "--brokers 0 rejected with exit 2", "rc=%d" % r.returncode)
    r = subprocess.run([binary], capture_output=True, text=True, timeout=10)
    tap.ok(r.returncode == 2, "missing --bootstrap-file: exit 2", "rc=%d" % r.returncode)


def test_offsets_and_topics(tap, ctl):
    tap.ok(ctl.cmd("ping") == "ok", "ping")
    reply = ctl.cmd("offsets modelwatch.telemetry")
    tap.ok(parse_offsets(reply) == {0: 0, 1: 0, 2: 0, 3: 0},
           "default topic modelwatch.telemetry has 4 empty partitions", reply)
    reply = ctl.cmd("offsets modelwatch.telemetry.dlq")
    tap.ok(parse_offsets(reply) == {0: 0}, "default topic modelwatch.telemetry.dlq has 1 partition",
           reply)
    tap.ok(ctl.cmd("topic t2 3") == "ok", "topic t2 3 creates a topic")
    reply = ctl.cmd("offsets t2")
    tap.ok(parse_offsets(reply) == {0: 0, 1: 0, 2: 0}, "offsets t2 lists 3 partitions", reply)
    tap.ok(ctl.cmd("topic t2 3").startswith("error "), "creating t2 again is an error")
    tap.ok(ctl.cmd("offsets no.such.topic").startswith("error "), "offsets of unknown topic")
    tap.ok(ctl.cmd("topic bad/name 1").startswith("error "), "illegal topic name is an error")
    tap.ok(ctl.cmd("topic t3 0").startswith("error "), "zero partitions is an error")


def offsets_when_ready(ctl, topic, timeout_s):
    """Retry "offsets" until it answers ok (brokers coming back up) or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    reply = ""
    while time.monotonic() < deadline:
        reply = ctl.cmd("offsets " + topic)
        if reply.startswith("ok"):
            break
        time.sleep(0.1)
    return reply


def test_brokers(tap, ctl):
    tap.ok(ctl.cmd("down all") == "ok", "down all")
    started = time.monotonic()
    reply = ctl.cmd("offsets modelwatch.telemetry")
    took_s = time.monotonic() - started
    tap.ok(reply.startswith("error "), "offsets with every broker down is an error", reply)
    tap.ok(took_s < 6.0, "offsets with brokers down answers in bounded time",
           "took %.1f s" % took_s)
    tap.ok(ctl.cmd("ping") == "ok", "ping while brokers are down")
    tap.ok(ctl.cmd("up all") == "ok", "up all")
    reply = offsets_when_ready(ctl, "modelwatch.telemetry", 10.0)
    tap.ok(parse_offsets(reply) == {0: 0, 1: 0, 2: 0, 3: 0}, "offsets work again after up all",
           reply)
    tap.ok(ctl.cmd("down 2") == "ok" and ctl.cmd("up 2") == "ok", "down 2 / up 2")
    tap.ok(ctl.cmd("down %d" % (N_BROKERS + 1)).startswith("error "), "unknown broker id")
    tap.ok(ctl.cmd("down 0").startswith("error "), "broker id 0 is an error")
    tap.ok(ctl.cmd("rtt all 50") == "ok" and ctl.cmd("rtt 1 0") == "ok"
           and ctl.cmd("rtt all 0") == "ok", "rtt all / rtt 1")
    tap.ok(ctl.cmd("rtt all -5").startswith("error "), "negative rtt is an error")


def test_bad_input(tap, ctl, address):
    tap.ok(ctl.cmd("frobnicate now").startswith("error "), "unknown command is an error")
    reply = ctl.raw(b"\x00\xff\xfe garbage \x01\x02\n")
    tap.ok(reply.startswith("error "), "binary garbage is an error", reply)
    tap.ok(ctl.cmd("").startswith("error "), "empty line is an error")
    tap.ok(ctl.cmd("ping a b c d e f").startswith("error "), "too many words is an error")
    reply = ctl.raw(b"x" * 5000 + b"\n")
    tap.ok(reply.startswith("error "), "over-long line is an error", reply)
    tap.ok(ctl.cmd("ping") == "ok", "still serving after an over-long line")
    tap.ok(ctl.raw(b"ping\r\n") == "ok", "CRLF line endings accepted")
    other = Control(address)
    try:
        tap.ok(other.cmd("ping") == "ok", "a second client is served while the first is open")
        other.sock.sendall(b"ping")  # half a line, then hang up
    finally:
        other.close()
    tap.ok(ctl.cmd("ping") == "ok", "a client hanging up mid-line does no harm")


def test_stop(tap, proc, files):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        rc = None
    tap.ok(rc == 0, "SIGTERM: exit 0 within %.0f s" % STOP_TIMEOUT_S, "rc=%s" % rc)
    tap.ok(not any(os.path.exists(f) for f in files), "bootstrap and control files removed")


def run(tap, binary, tmp):
    test_usage(tap, binary)
    bootstrap_file = os.path.join(tmp, "bootstrap")
    control_file = os.path.join(tmp, "control")
    log_path = os.path.join(tmp, "devkafka.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([binary, "--brokers", str(N_BROKERS),
                                 "--bootstrap-file", bootstrap_file,
                                 "--control-file", control_file, "--log-level", "info"],
                                stdout=log, stderr=log)
    ctl = None
    try:
        bootstrap = wait_for_file(bootstrap_file, proc, START_TIMEOUT_S)
        address = wait_for_file(control_file, proc, 1.0) if bootstrap else None
        if not tap.ok(bootstrap is not None and address is not None,
                      "bootstrap and control files written within %.0f s" % START_TIMEOUT_S):
            return
        tap.ok(len(bootstrap.split(",")) == N_BROKERS and "\n" not in bootstrap,
               "bootstrap file lists %d brokers" % N_BROKERS, bootstrap)
        tap.ok(address.startswith("127.0.0.1:"), "control port on loopback", address)
        with open(log_path) as f:
            startup = f.read()
        tap.ok("bootstrap=" + bootstrap in startup and "brokers=%d" % N_BROKERS in startup,
               "startup log line names bootstrap list and broker count", startup)
        ctl = Control(address)
        test_offsets_and_topics(tap, ctl)
        test_brokers(tap, ctl)
        test_bad_input(tap, ctl, address)
        ctl.close()
        ctl = None
        test_stop(tap, proc, [bootstrap_file, control_file])
    except (OSError, ConnectionError) as e:
        tap.ok(False, "control connection", repr(e))
    finally:
        if ctl:
            ctl.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if tap.failed:
            with open(log_path) as f:
                tap.diag("devkafka log:\n" + f.read()[-4000:])


def main():
    if len(sys.argv) != 2:
        print("usage: test_devkafka.py path/to/modelwatch-devkafka", file=sys.stderr)
        return 2
    tap = Tap()
    with tempfile.TemporaryDirectory(prefix="mw-devkafka-") as tmp:
        run(tap, os.path.abspath(sys.argv[1]), tmp)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
