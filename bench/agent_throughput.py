#!/usr/bin/env python3
"""bench/agent_throughput.py — how many events per second one modelwatch-agent ingests and ships
to Kafka, and what it costs: CPU seconds per 1M events, peak RSS, zstd compression ratio.

One command (from the repository root, after `ninja -C BUILD`):

    python3 bench/agent_throughput.py BUILD [--events 1000000] [--sample-rate 0.1]

It starts modelwatch-devkafka and one agent (payload sampling at --sample-rate for every model,
spool without fsync) in a private temp dir on loopback, then modelwatch-loadgen sends --events
predictions (10 numeric + 2 categorical features, two models) through libmodelwatch as fast as
the agent takes them: loadgen retries an event the client refuses (MW_EAGAIN: the client's
buffer is full), so the agent runs at its capacity and every event arrives.

Measured:
  - events/s: events / (time from loadgen's start to the moment the agent has accepted all of
    them; shipping is pipelined, and how long after that Kafka acknowledged the last batch is
    printed too: the last batch waits batch.max_age, 1 s, before it is sealed);
  - the agent's CPU seconds (utime + stime from /proc/PID/stat, read after the last batch is
    acknowledged and before SIGTERM; the agent's start-up is subtracted) per 1M events, and its
    peak RSS (VmHWM);
  - loadgen's and devkafka's CPU, separately (loadgen's from wait4's rusage);
  - drops: the agent's modelwatch_agent_messages_dropped_total{...} (must all be 0) and how many
    times loadgen's client refused an event and loadgen retried it;
  - the compression ratio: mw-bench-topic-bytes reads the batches still held by the mock Kafka
    (it keeps the last ~5 MB of a partition) and sums their zstd frames' content sizes and
    compressed sizes.

With --callgrind the agent runs under valgrind's callgrind, collecting only from the moment
it is ready until Kafka has acknowledged every batch (instrumentation switched on and off with
callgrind_control -i): the instructions the agent executes per event, all threads, librdkafka's
included, a number the machine's other load does not move (its events/s and CPU seconds then
mean nothing).

Prints a human summary, and with --json one JSON document. Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Run, cpu_seconds, free_port, machine, metrics, peak_rss_kib  # noqa: E402
from procstat import wait_for as _wait_for  # noqa: E402


def wait_for(pred, timeout_s, what, interval_s=0.02):
    _wait_for(pred, timeout_s, what, "agent_throughput", interval_s)

PAGE = os.sysconf("SC_PAGE_SIZE")
MODELS = ["churn:v3", "fraud:v1"]







class MemSampler:
    """Samples the agent's /proc/PID/status every 50 ms while the events flow: VmRSS and its
    parts RssAnon (heap, stacks touched, anonymous mappings) and RssFile (file pages mapped:
    shared libraries, mostly). `peak` is the sample with the largest VmRSS; VmHWM itself may
    sit a little above it (a peak between two samples)."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")

    def __init__(self, pid, interval_s=0.05):
        self.pid = pid
        self.interval_s = interval_s
        self.peak = None
        self.max_anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in self.FIELDS:
                    out[key] = int(line.split()[1])
        return out

    def _loop(self):
        while not self._stop.is_set():
            try:
                s = self.sample()
            except (OSError, ValueError):
                return
            if self.peak is None or s.get("VmRSS", 0) > self.peak.get("VmRSS", 0):
                self.peak = s
            self.max_anon_kib = max(self.max_anon_kib, s.get("RssAnon", 0))
            self._stop.wait(self.interval_s)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()


def run(args):
    r = Run(args.build, args.keep, "throughput")
    try:
        return measure(r, args)
    finally:
        r.cleanup()


def measure(r, args):
    bootstrap = os.path.join(r.dir, "bootstrap")
    control = os.path.join(r.dir, "control")
    devkafka = r.spawn("devkafka", [r.exe("tools/modelwatch-devkafka"), "--bootstrap-file",
                                    bootstrap, "--control-file", control, "--log-level", "warn"])
    wait_for(lambda: os.path.exists(bootstrap), 20, "devkafka")

    http_port = free_port()
    endpoint = f"ipc://{r.dir}/agent.sock"
    cfg = os.path.join(r.dir, "agent.yaml")
    with open(cfg, "w") as f:
        f.write(f"""agent_id: bench-agent
log_level: warn
intake:
  endpoint: "{endpoint}"
kafka:
  bootstrap_file: {bootstrap}
spool:
  dir: {r.dir}/spool
  fsync: false
http:
  port: {http_port}
models:
  - name: "*"
    sample_rate: {args.sample_rate}
""" + (f"batch:\n  compression_level: {args.compression_level}\n"
       if args.compression_level else ""))
    argv = [r.exe("agent/modelwatch-agent"), "--config", cfg]
    callgrind_out = os.path.join(r.dir, "callgrind.out")
    if args.callgrind:
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={callgrind_out}"] + argv
    agent = r.spawn("agent", argv)
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz",
                                            timeout=2).status == 200, 120, "agent /readyz")
    time.sleep(0.5)  # let the producer settle; what it spent so far is start-up
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(agent.pid)], check=True,
                       capture_output=True)
    agent_cpu0 = cpu_seconds(agent.pid)
    sampler = MemSampler(agent.pid)
    idle_mem = sampler.sample()
    sampler.start()
    devkafka_cpu0 = cpu_seconds(devkafka.pid)

    out_path = os.path.join(r.dir, "loadgen.json")
    with open(out_path, "wb") as out:
        t0 = time.monotonic()
        loadgen = r.spawn("loadgen", [r.exe("tools/modelwatch-loadgen"), "--endpoint", endpoint,
                                      "--events", str(args.events)] +
                          (["--mix", args.mix] if args.mix != "uniform" else []) +
                          [a for m in MODELS for a in ("--model", m)], stdout=out)
    accepted_key = "modelwatch_agent_events_accepted_total"
    wait_for(lambda: metrics(http_port)[accepted_key] >= args.events, 600,
             "the agent to accept every event", interval_s=0.01)
    t_ingested = time.monotonic()

    def all_delivered():
        m = metrics(http_port)
        sealed = m["modelwatch_agent_batches_sealed_total"]
        return (m["modelwatch_agent_kafka_in_flight_batches"] == 0 and sealed > 0 and
                m["modelwatch_agent_batches_delivered_total"] >= sealed and
                m["modelwatch_agent_spool_batches"] == 0)
    # The batch open when the last event arrived is sealed by age (batch.max_age, 1 s; the seal
    # timer ticks every 251 ms): wait for that, then for Kafka's acknowledgement of everything.
    time.sleep(max(0.0, t_ingested + 1.3 - time.monotonic()))
    wait_for(all_delivered, 120, "Kafka to acknowledge every batch", interval_s=0.01)
    t_shipped = time.monotonic()
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(agent.pid)], check=True,
                       capture_output=True)
    agent_cpu = cpu_seconds(agent.pid) - agent_cpu0
    agent_rss = peak_rss_kib(agent.pid)
    sampler.stop()
    devkafka_cpu = cpu_seconds(devkafka.pid) - devkafka_cpu0
    m = metrics(http_port)

    rc, lg_usage = r.reap(loadgen)
    with open(out_path) as f:
        lg = json.load(f)
    if rc != 0:
        raise SystemExit(f"agent_throughput: loadgen exited {rc}: {lg}")

    ratio = topic_ratio(r, bootstrap)
    code, _ = r.stop(agent)
    r.stop(devkafka)
    instructions = callgrind_total(callgrind_out) if args.callgrind else None

    drops = {k: v for k, v in m.items() if k.startswith("modelwatch_agent_messages_dropped_total")}
    result = {
        "machine": machine(),
        "events": args.events,
        "sample_rate": args.sample_rate,
        "mix": args.mix,
        "compression_level": args.compression_level or "agent default",
        "accepted": m[accepted_key],
        "records_shipped": m.get("modelwatch_agent_records_shipped_total"),
        "batches": m["modelwatch_agent_batches_delivered_total"],
        "intake_messages": m.get("modelwatch_agent_messages_received_total"),
        "payload_omitted": m.get("modelwatch_agent_events_payload_omitted_total", 0),
        "agent_drops": drops,
        "client_refusals_retried": lg["dropped"],
        "ingest_s": t_ingested - t0,
        "last_ack_after_last_event_s": t_shipped - t_ingested,
        "events_per_s": args.events / (t_ingested - t0),
        "agent_cpu_s": agent_cpu,
        "agent_cpu_s_per_1m": agent_cpu * 1e6 / args.events,
        "agent_events_per_cpu_s": args.events / agent_cpu if agent_cpu else None,
        "agent_peak_rss_mib": agent_rss / 1024,
        "agent_idle_rss_kib": idle_mem,
        "agent_peak_sample_kib": sampler.peak,
        "agent_max_rss_anon_kib": sampler.max_anon_kib,
        "agent_exit_code": code,
        "loadgen_cpu_s": lg_usage.ru_utime + lg_usage.ru_stime,
        "loadgen_peak_rss_mib": lg_usage.ru_maxrss / 1024,
        "devkafka_cpu_s": devkafka_cpu,
        "compression": ratio,
        "agent_instructions": instructions,
        "agent_instructions_per_event": instructions / args.events if instructions else None,
    }
    return result


def callgrind_total(path):
    """Instructions executed (Ir) over every thread's callgrind output (path, path-NN...)."""
    total = 0
    folder, base = os.path.split(path)
    for name in os.listdir(folder):
        if name == base or name.startswith(base + "-"):
            with open(os.path.join(folder, name)) as f:
                for line in f:
                    if line.startswith("totals:"):
                        total += int(line.split()[1])
    return total


def topic_ratio(r, bootstrap):
    tool = os.path.join(r.build, "bench", "mw-bench-topic-bytes")
    if not os.path.exists(tool):
        return None
    out = subprocess.run([tool, "-b", bootstrap, "-t", "modelwatch.telemetry"],
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        sys.stderr.write(out.stderr.decode())
        return None
    doc = json.loads(out.stdout)
    if doc.get("compressed_bytes"):
        doc["ratio"] = doc["uncompressed_bytes"] / doc["compressed_bytes"]
    return doc


def summary(res):
    c = res["compression"] or {}
    lines = [
        f"machine: {res['machine']['nproc']} CPUs, {res['machine']['cpu']} "
        f"(1-min load {res['machine']['loadavg_1m_at_start']:.2f} at start)",
        f"events: {res['events']:,} ({res['mix']} mix) at sample rate {res['sample_rate']}, zstd level "
        f"{res['compression_level']}; accepted "
        f"{res['accepted']:,.0f}, records shipped {res['records_shipped']:,.0f} in "
        f"{res['batches']:,.0f} batches; intake messages {res['intake_messages']:,.0f}, of which "
        f"{res['payload_omitted']:,.0f} events without payload (sampled at the source)",
        f"agent drops: {sum(res['agent_drops'].values()):.0f} (modelwatch_agent_messages_dropped_"
        f"total, every reason) {({k: v for k, v in res['agent_drops'].items() if v}) or ''}",
        f"client refusals retried by loadgen (back-pressure): {res['client_refusals_retried']:,}",
        f"throughput: {res['events_per_s']:,.0f} events/s ({res['ingest_s']:.2f} s from loadgen's "
        f"start to the agent's last accepted event; Kafka acknowledged the last batch "
        f"{res['last_ack_after_last_event_s']:.2f} s later, after batch.max_age)",
        f"agent: {res['agent_cpu_s']:.2f} CPU-s = {res['agent_cpu_s_per_1m']:.2f} CPU-s per 1M "
        f"events ({res['agent_events_per_cpu_s'] or 0:,.0f} events per CPU-second), "
        f"peak RSS {res['agent_peak_rss_mib']:.1f} MiB",
        mem_line(res),
        f"loadgen: {res['loadgen_cpu_s']:.2f} CPU-s, peak RSS {res['loadgen_peak_rss_mib']:.1f} "
        f"MiB; devkafka: {res['devkafka_cpu_s']:.2f} CPU-s",
    ]
    if res["agent_instructions"]:
        lines.append(f"callgrind: the agent executed {res['agent_instructions']:,} instructions "
                     f"= {res['agent_instructions_per_event']:,.0f} per event")
    if c:
        lines.append(f"compression: {c.get('ratio', 0):.2f}x over the {c['records']} batches "
                     f"the mock still holds ({c['uncompressed_bytes']:,} -> "
                     f"{c['compressed_bytes']:,} bytes)")
    else:
        lines.append("compression: mw-bench-topic-bytes not built")
    return "\n".join(lines)


def mem_line(res):
    idle, peak = res["agent_idle_rss_kib"] or {}, res["agent_peak_sample_kib"] or {}

    def mib(d, k):
        return d.get(k, 0) / 1024
    return (f"agent memory (/proc/PID/status every 50 ms): idle before the load VmRSS "
            f"{mib(idle, 'VmRSS'):.1f} MiB (anon {mib(idle, 'RssAnon'):.1f}, file "
            f"{mib(idle, 'RssFile'):.1f}); at the largest VmRSS sample {mib(peak, 'VmRSS'):.1f} "
            f"MiB (anon {mib(peak, 'RssAnon'):.1f}, file {mib(peak, 'RssFile'):.1f}); largest "
            f"RssAnon {res['agent_max_rss_anon_kib'] / 1024:.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.environ.get("MW_BUILD_DIR", "build"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--sample-rate", type=float, default=0.1)
    ap.add_argument("--compression-level", type=int, default=0,
                    help="the agent's batch.compression_level (default: the agent's default)")
    ap.add_argument("--mix", choices=("uniform", "realistic"), default="uniform",
                    help="loadgen's --mix: uniform random features, or realistic ones")
    ap.add_argument("--callgrind", action="store_true",
                    help="run the agent under callgrind: instructions per event")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    args = ap.parse_args()
    res = run(args)
    print(json.dumps(res, indent=2) if args.json else summary(res), flush=True)


if __name__ == "__main__":
    main()
