"""Real-process test harness: starts redis-server, modelwatch-devkafka, aggregators and agents
on free loopback ports in a private directory, and stops every one of them on every path
(normal exit, assertion failure, exception, SIGTERM/SIGINT of the test itself).

Standard library only. Binaries come from the build directory given by MW_BUILD_DIR (meson
passes it) or the first argument of the test script.

In a sanitizer build (-Db_sanitize=address,undefined) every process a test starts, by the
harness or by the test itself, writes its AddressSanitizer, LeakSanitizer and UBSan reports to
<test dir>/sanitizer.<pid>; processes still running at the end get SIGTERM so they exit the
normal way and LeakSanitizer checks them; any report fails the test.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Where this interpreter runs with the ASan runtime preloaded (tests/integration/meson.build:
# it loads libmodelwatch.so of a sanitizer build through ctypes) and leak detection off, the
# processes it starts run without the preload and with leak detection on, except Python
# children, which run like this interpreter (python_child_env).
PYTHON_ASAN_PRELOAD = ""
if "libasan" in os.environ.get("LD_PRELOAD", ""):
    PYTHON_ASAN_PRELOAD = os.environ.pop("LD_PRELOAD")
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=1"

# What the sanitizer runtimes print at the start of a report.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "UndefinedBehaviorSanitizer")

class TestFailure(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as e:  # the thing waited for may not answer yet
            last_error = e
        time.sleep(0.05)
    raise TestFailure(f"timed out after {timeout_s}s waiting for {what}"
                      + (f" (last error: {last_error})" if last_error else ""))


class Cluster:
    """Owns a temp directory and every process started for one test."""

    def __init__(self, build_dir, name="test"):
        self.build_dir = os.path.abspath(build_dir)
        self.dir = tempfile.mkdtemp(prefix=f"mw-{name}-")
        self.procs = []
        self.redis_port = None
        self.bootstrap_file = os.path.join(self.dir, "bootstrap")
        self.control_file = os.path.join(self.dir, "devkafka.control")
        self.spawned = []  # (name, log path) of every process started, for sanitizer_reports
        self.teardown_failures = []
        route_sanitizer_reports(os.path.join(self.dir, "sanitizer"))
        atexit.register(self.stop_all)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.stop_all()
        sys.exit(128 + signum)

    def binary(self, rel):
        path = os.path.join(self.build_dir, rel)
        if not os.path.exists(path):
            raise TestFailure(f"missing binary {path}: build first")
        return path

    def spawn(self, name, argv, env=None):
        if argv[0] == sys.executable:
            env = python_child_env(env)
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                env=env, start_new_session=True)
        proc.mw_name = name
        proc.mw_log = log.name
        self.procs.append(proc)
        self.spawned.append((f"{name} (pid {proc.pid})", log.name))
        return proc

    def log_of(self, proc):
        with open(proc.mw_log, "rb") as f:
            return f.read().decode(errors="replace")

    # --- services -------------------------------------------------------------------------
    def start_redis(self, port=None, persistent=False):
        """Start redis-server; `persistent` keeps an append-only file fsynced on every write
        in the test directory, so a restart on the same port finds all acknowledged writes."""
        self.redis_port = port or self.redis_port or free_port()
        exe = shutil.which("redis-server")
        if not exe:
            raise TestFailure("redis-server is not installed (the test needs a real Redis)")
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else \
            ["--appendonly", "no"]
        self.redis = self.spawn("redis", [exe, "--port", str(self.redis_port), "--bind",
                                          "127.0.0.1", "--save", "", "--dir", self.dir] + aof)
        wait_for(lambda: self.redis_cmd("PING") == "+PONG", 10, "redis-server")
        return self.redis

    def start_redis_persistent(self):
        self.start_redis(persistent=True)
        return self.redis_port

    def redis_cmd(self, *args):
        """One command over RESP; returns the raw first reply line (enough for tests)."""
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as s:
            payload = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
            s.sendall(payload.encode())
            return s.recv(65536).decode().split("\r\n")[0]

    def start_devkafka(self, brokers=1, topics=None):
        argv = [self.binary("tools/modelwatch-devkafka"), "--brokers", str(brokers),
                "--bootstrap-file", self.bootstrap_file, "--control-file", self.control_file]
        for t in topics or []:
            argv += ["--topic", t]
        self.devkafka = self.spawn("devkafka", argv)
        wait_for(lambda: os.path.exists(self.bootstrap_file) and
                 os.path.exists(self.control_file), 15, "devkafka bootstrap file")
        return self.devkafka

    def devkafka_cmd(self, line):
        with open(self.control_file) as f:
            host, port = f.read().strip().rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall((line + "\n").encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()

    def write_config(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_aggregator(self, name="aggregator", extra="", kafka_properties=None,
                         redis_options=None):
        """Start an aggregator; `kafka_properties` adds or overrides librdkafka properties and
        `redis_options` adds keys of its redis: section (dicts)."""
        port = free_port()
        # A killed replica's partitions move on after 6 s rather than librdkafka's 45 s.
        properties = {"topic.metadata.refresh.interval.ms": "1000", "session.timeout.ms": "6000",
                      "heartbeat.interval.ms": "500"}
        properties.update(kafka_properties or {})
        props = "".join(f'    {k}: "{v}"\n' for k, v in properties.items())
        redis_lines = "".join(f"  {k}: {v}\n" for k, v in (redis_options or {}).items())
        cfg = self.write_config(f"{name}.yaml", f"""
log_level: info
kafka:
  bootstrap_file: {self.bootstrap_file}
  properties:
{props}redis:
  port: {self.redis_port}
  retry_max: 500ms
{redis_lines}http:
  port: {port}
  signals_refresh: 1s
{extra}
""")
        proc = self.spawn(name, [self.binary("aggregator/modelwatch-aggregator"), "--config", cfg])
        proc.http_port = port
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
        return proc

    def produce_batches(self, batches, timeout_s=120):
        """Write crafted batches (bench/batch_json.h descriptions, plus "partition", "key",
        "copies") into the telemetry topic, in order, with mw-produce-junk."""
        path = os.path.join(self.dir, f"batches-{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            json.dump(batches, f)
        out = subprocess.run([self.binary("tests/integration/mw-produce-junk"), "-b",
                              self.bootstrap_file, "-j", path], capture_output=True,
                             timeout=timeout_s)
        if out.returncode != 0:
            raise TestFailure(f"mw-produce-junk failed: {out.stderr.decode()}")
        want = sum(b.get("copies", 1) for b in batches)
        got = json.loads(out.stdout)["delivered"]
        if got != want:
            raise TestFailure(f"mw-produce-junk delivered {got} of {want} batches")
        return got

    def start_agent(self, name="agent", agent_id="agent-1", extra="", spool_dir=None,
                    spool_options="", binary=None, intake_options=""):
        """Start an agent; its spool lives in the test directory unless spool_dir is given
        (a restarted agent passes the same spool_dir to find what it left there). `binary`
        runs another build's agent (an older version) in place of this build's.
        `intake_options` are more keys of its intake section, each line indented by two."""
        port = free_port()
        endpoint = f"ipc://{self.dir}/{name}.sock"
        spool_dir = spool_dir or os.path.join(self.dir, f"{name}-spool")
        cfg = self.write_config(f"{name}.yaml", f"""
agent_id: {agent_id}
intake:
  endpoint: "{endpoint}"
{intake_options}kafka:
  bootstrap_file: {self.bootstrap_file}
spool:
  dir: {spool_dir}
  fsync: false
{spool_options}http:
  port: {port}
{extra}
""")
        proc = self.spawn(name, [binary or self.binary("agent/modelwatch-agent"), "--config", cfg])
        proc.http_port = port
        proc.endpoint = endpoint
        proc.spool_dir = spool_dir
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
        return proc

    def start_audit(self, topic="modelwatch.telemetry", patterns=()):
        """Start mw-topic-audit reading `topic` while it is written; stop_audit() returns its
        report: per agent/boot the sequences seen, duplicates, gaps, predictions, and for each
        byte string in `patterns` the number of batches that contain it."""
        out = open(os.path.join(self.dir, "audit.json"), "wb")
        status = os.path.join(self.dir, "audit.status")
        extra = []
        for p in patterns:
            extra += ["-g", p.hex()]
        proc = subprocess.Popen([self.binary("tests/integration/mw-topic-audit"), "-b",
                                 self.bootstrap_file, "-t", topic, "-s", status] + extra,
                                stdout=out,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        proc.mw_name = "topic-audit"
        proc.mw_log = out.name
        proc.status_file = status
        proc.topic = topic
        self.procs.append(proc)
        wait_for(lambda: os.path.exists(status), 15, "the topic audit to start")
        return proc

    def topic_end_offsets(self, topic):
        reply = self.devkafka_cmd(f"offsets {topic}")
        if not reply.startswith("ok"):
            raise TestFailure(f"devkafka offsets: {reply}")
        return sum(int(p.split(":")[1]) for p in reply.split()[1:])

    def stop_audit(self, proc, timeout_s=60):
        """Wait until the audit has read up to the topic's end offsets, then take its report."""
        end = self.topic_end_offsets(proc.topic)

        def caught_up():
            with open(proc.status_file) as f:
                return int(f.read().strip() or 0) >= end
        wait_for(caught_up, timeout_s, f"the topic audit to read all {end} records")
        self.stop(proc)
        with open(proc.mw_log) as f:
            return json.load(f)

    def start_loadgen(self, endpoint, models, events, extra=(), binary=None):
        """Start loadgen in the background; finish_loadgen() returns its report. `binary` runs
        another build's loadgen (an older client) in place of this build's."""
        argv = [binary or self.binary("tools/modelwatch-loadgen"), "--endpoint", endpoint,
                "--events", str(events)]
        for m in models:
            argv += ["--model", m]
        out = open(os.path.join(self.dir, f"loadgen-{len(self.procs)}.json"), "wb")
        proc = subprocess.Popen(argv + list(extra), stdout=out, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        proc.mw_name = "loadgen"
        proc.mw_log = out.name
        self.procs.append(proc)
        return proc

    def finish_loadgen(self, proc, timeout_s=600):
        if proc.wait(timeout=timeout_s) != 0:
            raise TestFailure(f"loadgen exited with {proc.returncode}")
        with open(proc.mw_log) as f:
            return json.load(f)

    def loadgen(self, endpoint, models, events, windows=1, start_ms=None, extra=(), binary=None):
        """Run loadgen to the end and return its report; `binary` as for start_loadgen."""
        argv = [binary or self.binary("tools/modelwatch-loadgen"), "--endpoint", endpoint,
                "--events", str(events), "--windows", str(windows)]
        for m in models:
            argv += ["--model", m]
        if start_ms is not None:
            argv += ["--start-ms", str(start_ms)]
        argv += list(extra)
        out = subprocess.run(argv, capture_output=True, timeout=600)
        if out.returncode != 0:
            raise TestFailure(f"loadgen failed ({out.returncode}): {out.stderr.decode()}")
        return json.loads(out.stdout)

    # --- teardown -------------------------------------------------------------------------
    def stop(self, proc, sig=signal.SIGTERM, timeout_s=20):
        """Signal one process and wait for it; returns its exit code."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TestFailure(f"{proc.mw_name} did not exit within {timeout_s}s of {sig!s}")

    def stop_all(self, keep_dir=False, graceful_s=0):
        """Stop every process still running, the last started first. With graceful_s, each
        gets SIGTERM and that long to exit (so it frees what it holds and LeakSanitizer checks
        it) before SIGKILL; one that needs SIGKILL is recorded in teardown_failures."""
        for proc in reversed(self.procs):
            if proc.poll() is None and graceful_s > 0:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)  # a test may have left it stopped
                    self.stop(proc, signal.SIGTERM, graceful_s)
                except TestFailure as e:
                    self.teardown_failures.append(str(e))
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.procs = []
        if not keep_dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def sanitizer_reports(self):
        """[(process, report text)] from the sanitizer report files and the process logs."""
        reports = []
        for entry in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if entry.startswith("sanitizer."):
                with open(os.path.join(self.dir, entry), "rb") as f:
                    reports.append((f"pid {entry.split('.', 1)[1]}",
                                    f.read().decode(errors="replace")))
        for name, path in self.spawned:
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
            if any(m in text for m in SANITIZER_MARKERS):
                reports.append((name, text))
        return reports

    def dump_logs(self):
        for proc in self.procs:
            sys.stderr.write(f"----- {proc.mw_name} log (last 40 lines) -----\n")
            sys.stderr.write("\n".join(self.log_of(proc).splitlines()[-40:]) + "\n")


def python_child_env(env=None):
    """The environment (default: this process's) for a Python process that may load
    libmodelwatch: where this interpreter runs with the ASan runtime preloaded, the same
    preload and leak detection off."""
    env = dict(os.environ if env is None else env)
    if PYTHON_ASAN_PRELOAD:
        env["LD_PRELOAD"] = PYTHON_ASAN_PRELOAD
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


def route_sanitizer_reports(prefix):
    """Make every process started from here on write sanitizer reports to prefix.<pid>
    (ignored by binaries built without sanitizers)."""
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        opts = os.environ.get(var, "")
        os.environ[var] = (opts + ":" if opts else "") + f"log_path={prefix}"


def http_get(port, path, timeout=10):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def api_request(port, path, method="GET", doc=None, token=None, timeout=10):
    """One API request (`doc` sent as JSON, `token` as a bearer token); returns the HTTP status
    and the parsed envelope, checked for its shape: {"status": "success", "data": ...} with 200,
    {"status": "error", "errorType": ..., "error": ...} otherwise."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(doc).encode() if doc is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        envelope = json.loads(body)
    except ValueError:
        raise TestFailure(f"{method} {path} answered {status} without JSON: {body[:200]!r}")
    want = {"status", "data"} if status == 200 else {"status", "errorType", "error"}
    if not isinstance(envelope, dict) or set(envelope) != want or \
            envelope["status"] != ("success" if status == 200 else "error"):
        raise TestFailure(f"{method} {path} answered {status} outside the envelope: {body[:200]!r}")
    return status, envelope


def api_data(port, path, method="GET", doc=None, token=None, timeout=10):
    """The data of an API answer; raises TestFailure unless it answers 200 with status success."""
    status, envelope = api_request(port, path, method, doc, token, timeout)
    if status != 200:
        raise TestFailure(f"{method} {path} answered {status}: {envelope}")
    return envelope["data"]


def api_error(port, path, method="GET", doc=None, token=None, timeout=10):
    """(HTTP status, errorType, error) of an API answer that must be an error."""
    status, envelope = api_request(port, path, method, doc, token, timeout)
    if status == 200:
        raise TestFailure(f"{method} {path} answered 200, not an error: {envelope}")
    return status, envelope["errorType"], envelope["error"]


def http_put_json(port, path, doc, timeout=10, token=None):
    """PUT `doc` as JSON, with `token` as the bearer token when given (an aggregator with
    alerting.api_token_file wants it on every write); the response status (raises on an HTTP
    error status)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PUT",
                                 data=json.dumps(doc).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


def metrics(port):
    """Parse /metrics into {'name{labels}': value}."""
    status, text = http_get(port, "/metrics")
    if status != 200:
        raise TestFailure(f"/metrics answered {status}")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


class Tap:
    """Minimal TAP producer: one `ok`/`not ok` line per check, plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, cond, description, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {description}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {description}", flush=True)
            if detail:
                for line in str(detail).splitlines():
                    print(f"# {line}", flush=True)
            # meson shows a failed test's stderr, not its TAP stream: say it there too
            sys.stderr.write(f"not ok {self.n} - {description}\n")
            if detail:
                sys.stderr.write(f"{detail}\n")
            sys.stderr.flush()
        return cond

    def skip(self, description):
        """A check that does not apply here, said so (TAP's SKIP directive)."""
        self.n += 1
        print(f"ok {self.n} # SKIP {description}", flush=True)

    def finish(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed or self.n == 0 else 0


def run(main):
    """Run a test body with a Tap and a Cluster; always tear down; exit with TAP status."""
    build_dir = os.environ.get("MW_BUILD_DIR") or (sys.argv[1] if len(sys.argv) > 1 else "build")
    tap = Tap()
    cluster = Cluster(build_dir, name=os.path.splitext(os.path.basename(sys.argv[0]))[0])
    try:
        main(tap, cluster)
    except Exception as e:  # report as a failed check, with the services' logs
        tap.check(False, f"test raised {type(e).__name__}", str(e))
        cluster.dump_logs()
    finally:
        if tap.failed:
            cluster.dump_logs()
        cluster.stop_all(keep_dir=True, graceful_s=30)
        check_clean_teardown(tap, cluster)
        cluster.stop_all()
    sys.exit(tap.finish())


def check_clean_teardown(tap, cluster):
    """Fail the test for a process that ignored SIGTERM at teardown or left a sanitizer
    report (these checks only appear when they fail)."""
    for failure in cluster.teardown_failures:
        tap.check(False, "every process exits on SIGTERM at teardown", failure)
    for name, text in cluster.sanitizer_reports():
        lines = text.splitlines()
        first = next((i for i, line in enumerate(lines)
                      if any(m in line for m in SANITIZER_MARKERS)), 0)
        report = "\n".join(lines[first:first + 60])
        tap.check(False, f"no sanitizer report from {name}", report)
        sys.stderr.write(f"----- sanitizer report from {name} -----\n{report}\n")
