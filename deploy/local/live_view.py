#!/usr/bin/env python3
"""The local demo's live view: per model and version, the latest final window's requests per
second, error rate, p99 latency, worst drifting feature, accuracy and cost per 1k predictions,
and the alerts pending or firing, read from the aggregators' /metrics every second.

    python3 deploy/local/live_view.py --metrics URL [--metrics URL ...] [--phase-file FILE]

Only /metrics (Prometheus text) is read: the window gauges (modelwatch_model_*, the same on
every replica), the alert states (modelwatch_alert_state, on the replica that evaluates) and the
counters (summed over the replicas). On a terminal the view is redrawn in place with plain ANSI
codes; otherwise (a log file, a test) it prints plain lines: one per model and version every
--plain-every seconds, and one whenever the story's phase changes. The phase file, written by
deploy/local/demo.sh, is one line: phase, text, window index, windows, window start (ms),
separated by tabs. Standard library only; runs until SIGTERM or Ctrl-C.
"""
import argparse
import math
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
ALERT_STATES = {1: "pending", 2: "firing"}
RED, YELLOW, BOLD, DIM, RESET = "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text):
    """Prometheus text exposition -> [(name, {label: value}, float)]; comments skipped."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        try:
            samples.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            continue
    return samples


def scrape(url, timeout=2.0):
    """The samples of one /metrics, or None when the aggregator does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return parse_metrics(r.read().decode("utf-8", errors="replace"))
    except (OSError, urllib.error.URLError):
        return None


class Row:
    """One model version's latest final window, as the gauges give it."""

    def __init__(self, model, version):
        self.model, self.version = model, version
        self.window_start_s = math.nan
        self.requests = self.error_rate = self.p99_s = math.nan
        self.accuracy = self.cost_per_1k = math.nan
        self.psi = {}
        self.verdict = {}
        self.alerts = []  # (alertname, feature, state)

    def worst_feature(self):
        """(feature, psi, verdict) of the feature that drifted most: by verdict, then PSI."""
        if not self.psi:
            return None
        name = max(self.psi, key=lambda f: (self.verdict.get(f, -1), nan_low(self.psi[f])))
        return name, self.psi[name], self.verdict.get(name, -1)


def nan_low(x):
    return -math.inf if math.isnan(x) else x


ROW_GAUGES = {
    "modelwatch_model_window_start_seconds": "window_start_s",
    "modelwatch_model_requests": "requests",
    "modelwatch_model_error_rate": "error_rate",
    "modelwatch_model_accuracy": "accuracy",
    "modelwatch_model_cost_per_1k": "cost_per_1k",
}


def rows_of(samples):
    """{(model, version): Row} from one replica's window gauges."""
    rows = {}

    def row(labels):
        key = (labels.get("model", ""), labels.get("version", ""))
        if key not in rows:
            rows[key] = Row(*key)
        return rows[key]
    for name, labels, value in samples:
        if name in ROW_GAUGES:
            setattr(row(labels), ROW_GAUGES[name], value)
        elif name == "modelwatch_model_latency_seconds" and labels.get("quantile") == "0.99":
            row(labels).p99_s = value
        elif name == "modelwatch_model_drift_psi":
            row(labels).psi[labels.get("feature", "")] = value
        elif name == "modelwatch_model_drift_verdict":
            row(labels).verdict[labels.get("feature", "")] = value
    return rows


class Snapshot:
    """What every replica's /metrics says, merged."""

    def __init__(self, scrapes, window_s):
        self.window_s = window_s
        self.down = [url for url, s in scrapes if s is None]
        self.rows = {}
        self.predictions = 0.0
        self.pages = self.resolves = 0.0
        self.leader = None
        self.batches = []  # (url, batches this replica applied): how the replicas share the work
        alert_sets = []
        for url, samples in scrapes:
            if samples is None:
                continue
            for key, row in rows_of(samples).items():
                have = self.rows.get(key)
                if have is None or nan_low(row.window_start_s) > nan_low(have.window_start_s):
                    self.rows[key] = row
            leader = False
            alerts = []
            for name, labels, value in samples:
                if name == "modelwatch_aggregator_batches_applied_total":
                    self.batches.append((url, value))
                elif name == "modelwatch_predictions_total":
                    self.predictions += value
                elif name == "modelwatch_alerting_leader" and value == 1:
                    leader = True
                elif name == "modelwatch_alert_pages_total":
                    self.pages += value
                elif name == "modelwatch_alert_resolves_total":
                    self.resolves += value
                elif name == "modelwatch_alert_state" and int(value) in ALERT_STATES:
                    alerts.append(labels | {"state": ALERT_STATES[int(value)]})
            if leader:
                self.leader = url
            alert_sets.append((leader, alerts))
        # The replica that evaluates exports the states; another may still show old ones.
        chosen = [a for leader, a in alert_sets if leader] or [a for _, a in alert_sets]
        for alerts in chosen[:1]:
            for a in alerts:
                key = (a.get("model", ""), a.get("version", ""))
                if key not in self.rows:
                    self.rows[key] = Row(*key)
                self.rows[key].alerts.append((a.get("alertname", "?"), a.get("feature", ""),
                                              a["state"]))

    def newest_start_s(self, model):
        return max((nan_low(r.window_start_s) for (m, _), r in self.rows.items() if m == model),
                   default=-math.inf)


def read_phase(path):
    """(phase, text, window, windows, window_start_ms) from the demo's phase file, or None."""
    try:
        with open(path) as f:
            parts = f.read().rstrip("\n").split("\t")
        return parts[0], parts[1], int(parts[2]), int(parts[3]), int(parts[4])
    except (OSError, IndexError, ValueError):
        return None


# ---- formatting ------------------------------------------------------------------------------
def clock(seconds):
    if math.isnan(seconds) or seconds <= 0:
        return "-"
    return time.strftime("%H:%M", time.localtime(seconds))


def number(x, fmt, scale=1.0):
    """x * scale formatted, or "-" when the gauge has no value (NaN)."""
    return "-" if x is None or math.isnan(x) else fmt.format(x * scale)


def cells(snap, row):
    """The row's columns as text, and whether its window is older than its model's newest."""
    stale = nan_low(row.window_start_s) < snap.newest_start_s(row.model)
    worst = row.worst_feature()
    drift = "-"
    if worst:
        name, psi, verdict = worst
        word = {2: "drift", 1: "possible", 0: "none"}.get(int(verdict), "n/a")
        drift = f"{name} PSI {number(psi, '{:.2f}')} {word}"
    alerts = ", ".join(f"{n}{'(' + f + ')' if f else ''} {s}" for n, f, s in sorted(row.alerts))
    return {
        "model": row.model,
        "version": row.version,
        "window": clock(row.window_start_s),
        "rps": number(row.requests, "{:.1f}", 1.0 / snap.window_s),
        "errors": number(row.error_rate, "{:.2f}%", 100),
        "p99": number(row.p99_s, "{:.1f} ms", 1000),
        "drift": drift,
        "accuracy": number(row.accuracy, "{:.1f}%", 100),
        "cost": number(row.cost_per_1k, "{:.4g}"),
        "alerts": alerts or "-",
    }, stale, worst


COLUMNS = [("model", "MODEL", 10), ("version", "VERSION", 8), ("window", "WINDOW", 7),
           ("rps", "RPS", 7), ("errors", "ERRORS", 8), ("p99", "P99", 10),
           ("drift", "WORST DRIFT", 24), ("accuracy", "ACCURACY", 9), ("cost", "COST/1K", 9),
           ("alerts", "ALERTS", 0)]


def host_port(url):
    return url.split("//")[-1].split("/")[0]


def header_lines(snap, phase, ingest_rate):
    lines = []
    if phase:
        name, text, w, n, start_ms = phase
        lines.append(f"{BOLD}modelwatch demo{RESET}  phase {BOLD}{name}{RESET}: {text}")
        lines.append(f"event time {clock(start_ms / 1000)}  (window {min(w + 1, n)} of {n}, "
                     "one minute each)")
    else:
        lines.append(f"{BOLD}modelwatch live view{RESET}")
    leader = host_port(snap.leader) if snap.leader else "none yet"
    shares = ", ".join(f"{host_port(url)} {n:.0f}" for url, n in snap.batches)
    lines.append(f"ingest {ingest_rate:.0f} predictions/s   batches applied by replica: {shares}")
    lines.append(f"alerts evaluated by {leader}   pages {snap.pages:.0f}, "
                 f"resolves {snap.resolves:.0f}")
    for url in snap.down:
        lines.append(f"{RED}{url} does not answer{RESET}")
    return lines


def render_screen(snap, phase, ingest_rate):
    out = header_lines(snap, phase, ingest_rate)
    out.append("")
    out.append(DIM + " ".join(title.ljust(width) if width else title
                              for _, title, width in COLUMNS) + RESET)
    if not snap.rows:
        out.append("(no final window yet)")
    for key in sorted(snap.rows):
        c, stale, worst = cells(snap, snap.rows[key])
        parts = []
        for field, _, width in COLUMNS:
            text = c[field].ljust(width) if width else c[field]
            if field == "drift" and worst and worst[2] >= 2:
                text = RED + text + RESET
            elif field == "drift" and worst and worst[2] == 1:
                text = YELLOW + text + RESET
            elif field == "alerts" and "firing" in text:
                text = BOLD + RED + text + RESET
            elif field == "alerts" and "pending" in text:
                text = YELLOW + text + RESET
            parts.append(text)
        line = " ".join(parts)
        out.append(DIM + line + RESET if stale else line)
    out.append("")
    out.append(DIM + "one row per model version: its latest final one-minute window (event time);"
               " dimmed: no newer window" + RESET)
    # Home, draw, clear what an earlier, longer frame left below.
    sys.stdout.write("\x1b[H" + "\n".join(line + "\x1b[K" for line in out) + "\n\x1b[J")
    sys.stdout.flush()


def render_plain(snap):
    for key in sorted(snap.rows):
        c, stale, _ = cells(snap, snap.rows[key])
        print(f"live: window {c['window']} {c['model']} {c['version']} rps={c['rps']} "
              f"errors={c['errors']} p99={c['p99'].replace(' ', '')} "
              f"worst_drift={c['drift'].replace(' ', ':')} accuracy={c['accuracy']} "
              f"cost_per_1k={c['cost']} alerts={c['alerts'].replace(' ', ':')}"
              + (" (no newer window)" if stale else ""), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", action="append", required=True, help="an aggregator's /metrics")
    ap.add_argument("--phase-file", help="the demo's phase file")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    ap.add_argument("--plain-every", type=float, default=5.0,
                    help="seconds between plain blocks when stdout is not a terminal")
    ap.add_argument("--window-seconds", type=float, default=60.0,
                    help="width of the windows the gauges describe (windows.fine)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tty = sys.stdout.isatty()
    if tty:
        sys.stdout.write("\x1b[2J")
    last_phase = None
    last_plain = 0.0
    last_count, last_t = None, None
    try:
        while True:
            t = time.monotonic()
            snap = Snapshot([(url, scrape(url)) for url in args.metrics], args.window_seconds)
            rate = 0.0
            if last_count is not None and t > last_t:
                rate = max(0.0, (snap.predictions - last_count) / (t - last_t))
            last_count, last_t = snap.predictions, t
            phase = read_phase(args.phase_file) if args.phase_file else None
            if tty:
                render_screen(snap, phase, rate)
            else:
                if phase and phase[:2] != (last_phase or (None, None))[:2]:
                    print(f"live: phase {phase[0]}: {phase[1]}", flush=True)
                last_phase = phase
                if t - last_plain >= args.plain_every:
                    last_plain = t
                    render_plain(snap)
            time.sleep(max(0.0, args.interval - (time.monotonic() - t)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
