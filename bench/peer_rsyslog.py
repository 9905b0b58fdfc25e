#!/usr/bin/env python3
"""bench/peer_rsyslog.py — the peer: the same 1M events, as JSON lines, shipped by rsyslog's
omkafka into the same modelwatch-devkafka, measured the way agent_throughput.py measures the
agent, so the two are one command each and side by side.

    python3 bench/peer_rsyslog.py BUILD [--events 1000000] [--no-install]

What it does, in a private temp dir on loopback:
  - installs the Debian packages rsyslog and rsyslog-kafka when rsyslogd or omkafka is missing
    (`apt-get update` once, then `apt-get install -y`; needs root; --no-install refuses instead).
    On a host with systemd, installing the package also enables Debian's own rsyslog service;
    this script never configures, signals or uses it;
  - writes the events to a file first (the same shape as modelwatch-loadgen's: model, version,
    prediction id, event time, latency, status, 10 numeric and 2 categorical features, class,
    score; about 260 bytes a line), so making them costs nothing during the run;
  - starts modelwatch-devkafka, then rsyslogd as an unprivileged foreground process (user
    nobody when run as root) with its own config: `rsyslogd -n -f CONF -i PIDFILE`; imptcp input
    on a free port, omkafka output with compression.codec=zstd and acks=all, the template
    %rawmsg% (each JSON line is one Kafka record, unchanged);
  - a child process sends the file to imptcp with sendfile(2) (TCP back-pressure paces it),
    and the run ends when devkafka's end offsets of the topic reach --events. omkafka runs with
    resubmitOnFailure="on": without it, once librdkafka's local queue is full (the broker
    slower than the input, as on a loaded machine) omkafka drops the lines it cannot enqueue,
    and the topic never holds them all; a topic that stops growing for 60 s ends the run with
    an error;
  - rsyslogd's CPU seconds (utime + stime from /proc/PID/stat, start-up subtracted) and peak
    RSS (VmHWM) are read then, before SIGTERM; the sender's CPU comes from wait4's rusage.

rsyslog ships every event (there is no sampling); the agent keeps exact counters for every
event and ships the 10% it samples. bench/README.md puts the numbers side by side.
Standard library only.
"""
import argparse
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Run, cpu_seconds, devkafka_cmd, free_port, machine, peak_rss_kib  # noqa: E402
from procstat import wait_for as _wait_for  # noqa: E402


def wait_for(pred, timeout_s, what, interval_s=0.02):
    _wait_for(pred, timeout_s, what, "peer_rsyslog", interval_s)

TOPIC = "rsyslog.bench"
OMKAFKA = "/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so"





def omkafka_path():
    """omkafka.so wherever this Debian puts rsyslog's modules."""
    out = subprocess.run(["dpkg", "-L", "rsyslog-kafka"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.endswith("/omkafka.so"):
            return line
    return OMKAFKA if os.path.exists(OMKAFKA) else None


def ensure_rsyslog(allow_install):
    if shutil.which("rsyslogd") and omkafka_path():
        return
    if not allow_install:
        raise SystemExit("peer_rsyslog: rsyslogd or omkafka missing (apt-get install rsyslog "
                         "rsyslog-kafka)")
    if os.geteuid() != 0:
        raise SystemExit("peer_rsyslog: rsyslog and rsyslog-kafka are missing and installing "
                         "them needs root: apt-get install rsyslog rsyslog-kafka")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "rsyslog", "rsyslog-kafka"]):
        if subprocess.run(argv, env=env).returncode != 0:
            raise SystemExit(f"peer_rsyslog: {' '.join(argv)} failed")


def write_events(path, n):
    """JSON lines shaped like loadgen's events; returns the mean line length."""
    rng = random.Random(1)
    countries, plans = ("fr", "de", "us", "jp", "br"), ("free", "pro", "team")
    models = (("churn", "v3"), ("fraud", "v1"))
    start_ms = int(time.time() * 1000) // 60000 * 60000
    total = 0
    with open(path, "w") as f:
        for i in range(n):
            model, version = models[i % 2]
            score = rng.random()
            ev = {"model": model, "version": version, "prediction_id": f"{model}-{i}",
                  "event_time_ms": start_ms + int(rng.random() * 1000),
                  "latency_us": int(2.718281828 ** (7.0 + rng.random() * 2.0)),
                  "status": "ok",
                  "features": {**{f"f{k}": round(rng.random() * 100.0 + k, 6) for k in range(10)},
                               "country": countries[i % 5], "plan": plans[i % 3]},
                  "predicted_class": "churn" if score > 0.5 else "stay",
                  "score": round(score, 6)}
            line = json.dumps(ev, separators=(",", ":")) + "\n"
            total += len(line)
            f.write(line)
    return total / n


def rsyslog_conf(d, port, bootstrap, omkafka):
    module_dir = os.path.dirname(omkafka)
    return f"""# peer_rsyslog.py: imptcp -> omkafka, nothing else (no imuxsock, no /dev/log).
global(workDirectory="{d}/work")
module(load="{module_dir}/imptcp.so")
module(load="{omkafka}")
template(name="raw_line" type="string" string="%rawmsg%")
input(type="imptcp" address="127.0.0.1" port="{port}" ruleset="to_kafka")
ruleset(name="to_kafka") {{
  action(type="omkafka" broker=["{bootstrap}"] topic="{TOPIC}" template="raw_line"
         resubmitOnFailure="on"
         confParam=["compression.codec=zstd"]
         topicConfParam=["request.required.acks=-1"])
}}
"""


SENDER = r"""
import os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    offset = 0
    while offset < size:
        offset += os.sendfile(s.fileno(), f.fileno(), offset, size - offset)
s.shutdown(socket.SHUT_WR)
s.close()
"""




def devkafka_offsets(control_file, topic):
    reply = devkafka_cmd(control_file, f"offsets {topic}")
    if not reply.startswith("ok"):
        raise ValueError(reply)
    return sum(int(p.split(":")[1]) for p in reply.split()[1:])


def measure(r, args):
    devkafka_exe = os.path.join(r.build, "tools", "modelwatch-devkafka")
    if not os.path.exists(devkafka_exe):
        raise SystemExit(f"peer_rsyslog: missing {devkafka_exe}: build first")
    omkafka = omkafka_path()
    events_path = os.path.join(r.dir, "events.jsonl")
    mean_len = write_events(events_path, args.events)

    bootstrap_file = os.path.join(r.dir, "bootstrap")
    control = os.path.join(r.dir, "control")
    devkafka = r.spawn("devkafka", [devkafka_exe, "--bootstrap-file", bootstrap_file,
                                    "--control-file", control, "--topic", f"{TOPIC}:1",
                                    "--log-level", "warn"])
    wait_for(lambda: os.path.exists(bootstrap_file), 20, "devkafka")
    with open(bootstrap_file) as f:
        bootstrap = f.read().strip()

    port = free_port()
    os.makedirs(os.path.join(r.dir, "work"))
    conf = os.path.join(r.dir, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(rsyslog_conf(r.dir, port, bootstrap, omkafka))
    pidfile = os.path.join(r.dir, "rsyslogd.pid")
    kw = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in (r.dir, os.path.join(r.dir, "work")):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        kw = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    check = subprocess.run(["rsyslogd", "-N1", "-f", conf], capture_output=True, text=True, **kw)
    if check.returncode != 0:
        raise SystemExit(f"peer_rsyslog: rsyslogd rejects its config:\n{check.stderr}")
    rsyslog = r.spawn("rsyslogd", ["rsyslogd", "-n", "-f", conf, "-i", pidfile], **kw)

    def listening():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_for(listening, 20, "rsyslogd's imptcp port")
    time.sleep(1.0)  # omkafka connects to the broker; what it spent so far is start-up
    rs_cpu0 = cpu_seconds(rsyslog.pid)
    dk_cpu0 = cpu_seconds(devkafka.pid)

    t0 = time.monotonic()
    sender = r.spawn("sender", [sys.executable, "-c", SENDER, events_path, str(port)])
    progress = {"offsets": -1, "since": time.monotonic()}

    def all_in_kafka():
        offsets = devkafka_offsets(control, TOPIC)
        if offsets != progress["offsets"]:
            progress.update(offsets=offsets, since=time.monotonic())
        elif time.monotonic() - progress["since"] > 60:
            raise SystemExit(f"peer_rsyslog: the topic stopped at {offsets:,} of {args.events:,} "
                             f"records for 60 s; rsyslogd's log ({r.dir}/rsyslogd.log, --keep "
                             "keeps it) says why")
        return offsets >= args.events
    wait_for(all_in_kafka, 600, "Kafka to hold every event", interval_s=0.05)
    t_done = time.monotonic()
    rs_cpu = cpu_seconds(rsyslog.pid) - rs_cpu0
    rs_rss = peak_rss_kib(rsyslog.pid)
    dk_cpu = cpu_seconds(devkafka.pid) - dk_cpu0
    _, sender_usage = r.reap(sender, 60)
    offsets = devkafka_offsets(control, TOPIC)
    code, _ = r.stop(rsyslog)
    r.stop(devkafka)
    return {
        "machine": machine(),
        "events": args.events,
        "mean_line_bytes": mean_len,
        "records_in_topic": offsets,
        "seconds": t_done - t0,
        "events_per_s": args.events / (t_done - t0),
        "rsyslogd_cpu_s": rs_cpu,
        "rsyslogd_cpu_s_per_1m": rs_cpu * 1e6 / args.events,
        "rsyslogd_events_per_cpu_s": args.events / rs_cpu if rs_cpu else None,
        "rsyslogd_peak_rss_mib": rs_rss / 1024,
        "rsyslogd_exit_code": code,
        "sender_cpu_s": sender_usage.ru_utime + sender_usage.ru_stime,
        "devkafka_cpu_s": dk_cpu,
        "rsyslogd_version": subprocess.run(["rsyslogd", "-v"], capture_output=True, text=True)
        .stdout.splitlines()[0].split(" compiled")[0].strip(),
    }


def summary(res):
    return "\n".join([
        f"machine: {res['machine']['nproc']} CPUs, {res['machine']['cpu']} "
        f"(1-min load {res['machine']['loadavg_1m_at_start']:.2f} at start)",
        f"{res['rsyslogd_version']}: imptcp -> omkafka (zstd, acks=all)",
        f"events: {res['events']:,} JSON lines of {res['mean_line_bytes']:.0f} bytes on average; "
        f"{res['records_in_topic']:,} records in the topic",
        f"throughput: {res['events_per_s']:,.0f} events/s ({res['seconds']:.2f} s until Kafka "
        f"held them all)",
        f"rsyslogd: {res['rsyslogd_cpu_s']:.2f} CPU-s = {res['rsyslogd_cpu_s_per_1m']:.2f} CPU-s "
        f"per 1M events ({res['rsyslogd_events_per_cpu_s'] or 0:,.0f} events per CPU-second), "
        f"peak RSS {res['rsyslogd_peak_rss_mib']:.1f} MiB",
        f"sender (sendfile): {res['sender_cpu_s']:.2f} CPU-s; devkafka: "
        f"{res['devkafka_cpu_s']:.2f} CPU-s",
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.environ.get("MW_BUILD_DIR", "build"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--no-install", action="store_true",
                    help="fail instead of installing rsyslog and rsyslog-kafka")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    args = ap.parse_args()
    ensure_rsyslog(not args.no_install)
    r = Run(args.build, args.keep, "rsyslog")
    try:
        res = measure(r, args)
    finally:
        r.cleanup()
    print(json.dumps(res, indent=2) if args.json else summary(res), flush=True)


if __name__ == "__main__":
    main()
