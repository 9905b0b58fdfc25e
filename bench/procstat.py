"""What the benchmark scripts share: free loopback ports, bounded waits, a process's CPU
seconds and peak RSS read from /proc, a daemon's /metrics, a command to modelwatch-devkafka, a
description of the machine for the report, and the processes of one run (Run)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout_s, what, who, interval_s=0.02):
    """Poll pred() until true; exit with `who: timed out ... waiting for what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(interval_s)
    raise SystemExit(f"{who}: timed out after {timeout_s}s waiting for {what}")



def metrics(port):
    """A modelwatch daemon's /metrics on loopback: {"name{labels}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def devkafka_cmd(control_file, line):
    """Send one command line to modelwatch-devkafka's control port; its one-line reply."""
    with open(control_file) as f:
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

def cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_1m_at_start": os.getloadavg()[0]}


class Run:
    """The processes of one benchmark run, in a private temp dir, each in its own process
    group with its log there; cleanup() kills what is left and removes the dir (unless kept)."""

    def __init__(self, build, keep, name):
        self.build = os.path.abspath(build)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"mw-bench-{name}-")
        os.chmod(self.dir, 0o755)  # rsyslogd drops privileges and must still reach it
        self.keep = keep
        self.procs = []

    def exe(self, rel):
        path = os.path.join(self.build, rel)
        if not os.path.exists(path):
            raise SystemExit(f"{self.name}: missing {path}: build first")
        return path

    def spawn(self, name, argv, stdout=None, **kw):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=stdout or log, stderr=log, cwd=self.dir,
                             start_new_session=True, **kw)
        p.mw_name = name
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout_s=60):
        """Signal, reap with wait4; returns (exit status, rusage)."""
        if p.returncode is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        return self.reap(p, timeout_s)

    def reap(self, p, timeout_s=600):
        """Wait for p (SIGKILL past the timeout); returns (exit status, rusage)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                return p.returncode, usage
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                return p.returncode, usage
            time.sleep(0.01)

    def cleanup(self):
        for p in reversed(self.procs):
            if p.returncode is None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
