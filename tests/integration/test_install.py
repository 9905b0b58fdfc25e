#!/usr/bin/env python3
"""`meson install` into a DESTDIR, then use what was installed as a user would.

- The installed set: the three binaries (the development tools only with -Ddev_tools=true),
  libmodelwatch (shared and static) with libmodelwatch.pc, the header, the example
  configurations and every rule file of config/rules, the systemd units and the sysusers.d
  file, and a man page for every installed binary.
- An external C program is compiled against the installed header and library with pkg-config
  (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR into the DESTDIR), once linked with the shared
  library and once with the static archive, and run against the *installed* agent and
  aggregator: every prediction it captured is counted by the aggregator.
- The installed example configurations pass --check-config; the installed rules pass
  `modelwatch-ctl rules check`.
- Man pages render without a groff warning and name every option the binary's --help lists.
- The systemd units pass `systemd-analyze verify` (their ExecStart binaries and man pages
  resolved inside the DESTDIR) and `systemd-analyze security --offline` rates them exposed at
  most MAX_EXPOSURE; without systemd-analyze on the machine those checks are skipped, and say so.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import Cluster, TestFailure, metrics, run, wait_for

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVENTS = 500
MAX_EXPOSURE = 2.0  # systemd-analyze security's scale: 0 (locked down) .. 10 (exposed)

PROGRAM = r"""
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c17 */
#include <modelwatch.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Captures argv[2] predictions for model "installcheck" at argv[1], retrying while the agent is
 * not connected yet (the library refuses rather than blocks), then a label for the first. */
int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = strtol(argv[2], NULL, 10);
    mw_client *client;
    int rc = mw_client_open(argv[1], &client);
    if (rc) {
        fprintf(stderr, "open: %s (%s)\n", mw_strerror(rc), mw_err_name(rc));
        return 1;
    }
    for (long i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%ld", i);
        struct mw_feature features[] = {MW_NUMERIC("age", 20 + i % 50),
                                        MW_CATEGORICAL("country", i % 2 ? "fr" : "de")};
        struct mw_event ev = {.model = "installcheck", .version = "v1", .prediction_id = id,
                              .latency_us = 1000 + (uint64_t)i, .status = MW_STATUS_OK,
                              .features = features, .n_features = 2,
                              .predicted_class = "1", .has_score = 1, .score = 0.75};
        for (int attempt = 0; (rc = mw_capture(client, &ev)) == MW_EAGAIN && attempt < 5000;
             attempt++) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        if (rc) {
            fprintf(stderr, "capture %ld: %s\n", i, mw_strerror(rc));
            return 1;
        }
    }
    rc = mw_feedback(client, "installcheck", "v1", "req-0", "1");
    if (rc == 0)
        rc = mw_client_flush(client, 5000);
    printf("{\"sent\": %llu, \"dropped\": %llu, \"rc\": \"%s\"}\n",
           (unsigned long long)mw_client_sent(client),
           (unsigned long long)mw_client_dropped(client), mw_err_name(rc));
    mw_client_close(client);
    return rc ? 1 : 0;
}
"""


def build_options(build_dir):
    out = subprocess.run(["meson", "introspect", "--buildoptions", build_dir],
                         capture_output=True, text=True, check=True)
    return {o["name"]: o["value"] for o in json.loads(out.stdout)}


class Installed(Cluster):
    """A cluster whose agent and aggregator are the installed binaries; devkafka comes from the
    build directory (a development tool, not installed by default)."""

    def __init__(self, build_dir, bindir):
        super().__init__(build_dir, name="test_install")
        self.bindir = bindir

    def binary(self, rel):
        name = os.path.basename(rel)
        if name in ("modelwatch-agent", "modelwatch-aggregator"):
            path = os.path.join(self.bindir, name)
            if not os.path.exists(path):
                raise TestFailure(f"{path} was not installed")
            return path
        return super().binary(rel)


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def check_installed_set(tap, opts, root):
    prefix = root + opts["prefix"]
    bindir = os.path.join(prefix, opts["bindir"])
    libdir = os.path.join(prefix, opts["libdir"])
    datadir = os.path.join(prefix, opts["datadir"])
    mandir = os.path.join(prefix, opts["mandir"])
    dev = opts["dev_tools"]
    want_bins = {"modelwatch-agent", "modelwatch-aggregator", "modelwatch-ctl"}
    dev_bins = {"modelwatch-devkafka", "modelwatch-loadgen"}
    got_bins = set(os.listdir(bindir)) if os.path.isdir(bindir) else set()
    tap.check(got_bins == (want_bins | dev_bins if dev else want_bins),
              f"bin/ holds the binaries, the development tools only with -Ddev_tools=true "
              f"(dev_tools={str(dev).lower()})", str(sorted(got_bins)))
    for name in ["libmodelwatch.so", "libmodelwatch.a", "pkgconfig/libmodelwatch.pc"]:
        tap.check(os.path.exists(os.path.join(libdir, name)), f"{opts['libdir']}/{name} installed")
    tap.check(os.path.exists(os.path.join(prefix, opts["includedir"], "modelwatch.h")),
              "the public header modelwatch.h installed")
    rules = sorted(os.path.basename(p) for p in glob.glob(os.path.join(SOURCE_ROOT, "config",
                                                                       "rules", "*.yaml")))
    got_rules = sorted(os.path.basename(p) for p in glob.glob(os.path.join(datadir, "modelwatch",
                                                                          "rules", "*.yaml")))
    tap.check(rules and got_rules == rules, "every rule file of config/rules is installed",
              f"{got_rules} vs {rules}")
    for name in ["agent.example.yaml", "aggregator.example.yaml"]:
        tap.check(os.path.exists(os.path.join(datadir, "modelwatch", name)),
                  f"{name} installed in {opts['datadir']}/modelwatch")
    unit_dir = opts["systemd_unit_dir"] or os.path.join(opts["prefix"], "lib/systemd/system")
    sysusers = opts["sysusers_dir"] or os.path.join(opts["prefix"], "lib/sysusers.d")
    units = {u: os.path.join(root + unit_dir, u)
             for u in ["modelwatch-agent.service", "modelwatch-aggregator.service"]}
    tap.check(all(os.path.exists(p) for p in units.values()), "both systemd units installed",
              str(units))
    tap.check(os.path.exists(os.path.join(root + sysusers, "modelwatch.conf")),
              "sysusers.d/modelwatch.conf installed")
    pages = {}
    for b in sorted(got_bins):
        found = glob.glob(os.path.join(mandir, "man*", b + ".[18]"))
        pages[b] = found[0] if found else None
    tap.check(all(pages.values()), "every installed binary has a man page", str(pages))
    return bindir, libdir, datadir, mandir, units, pages


def check_man_pages(tap, bindir, pages):
    for binary, page in sorted(pages.items()):
        if not page:
            continue
        if not shutil.which("groff"):
            raise TestFailure("groff is not installed (deploy/local/install-deps.sh --test)")
        out = sh(["groff", "-man", "-ww", "-z", "-t", page])
        tap.check(out.returncode == 0 and not out.stderr.strip(),
                  f"{os.path.basename(page)} renders without a groff warning", out.stderr)
        helptext = sh([os.path.join(bindir, binary), "--help"]).stdout
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", helptext))
        with open(page) as f:
            source = f.read().replace("\\-", "-")
        missing = sorted(f for f in flags if f not in source)
        tap.check(flags and not missing,
                  f"{os.path.basename(page)} documents every option of {binary} --help",
                  f"missing: {missing}; --help lists {sorted(flags)}")


def check_configs(tap, bindir, datadir):
    examples = os.path.join(datadir, "modelwatch")
    for b, cfg in [("modelwatch-agent", "agent.example.yaml"),
                   ("modelwatch-aggregator", "aggregator.example.yaml")]:
        out = sh([os.path.join(bindir, b), "--config", os.path.join(examples, cfg),
                  "--check-config"])
        tap.check(out.returncode == 0, f"installed {b} accepts the installed {cfg}",
                  out.stdout + out.stderr)
    rules = sorted(glob.glob(os.path.join(examples, "rules", "*.yaml")))
    out = sh([os.path.join(bindir, "modelwatch-ctl"), "rules", "check"] + rules)
    tap.check(out.returncode == 0, "installed modelwatch-ctl rules check passes the installed rules",
              out.stdout + out.stderr)


def check_units(tap, opts, root, units, mandir):
    exe = shutil.which("systemd-analyze")
    if not exe:
        # Not every build machine has systemd (containers often do not): say so, once.
        tap.check(True, "# SKIP systemd-analyze is not installed: units not verified")
        return
    prefix = opts["prefix"].rstrip("/") + "/"
    work = tempfile.mkdtemp(prefix="mw-units-")
    try:
        copies = []
        for name, path in units.items():
            with open(path) as f:
                text = f.read()
            for line in text.splitlines():
                if line.startswith("ExecStart="):
                    tap.check(line.split("=", 1)[1].startswith(
                        os.path.join(opts["prefix"], opts["bindir"])),
                        f"{name}: ExecStart names the installed binary", line)
            # The units name the install's paths; resolve them inside the DESTDIR to verify.
            copy = os.path.join(work, name)
            with open(copy, "w") as f:
                f.write(text.replace(prefix, root + prefix))
            copies.append(copy)
        env = dict(os.environ, MANPATH=mandir)
        for copy in copies:
            out = sh([exe, "verify", copy], env=env)
            tap.check(out.returncode == 0 and not out.stderr.strip(),
                      f"systemd-analyze verify {os.path.basename(copy)}: no error, no warning",
                      out.stdout + out.stderr)
            out = sh([exe, "security", "--offline=yes", copy], env=env)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
            exposure = float(m.group(1)) if m else None
            tap.check(exposure is not None and exposure <= MAX_EXPOSURE,
                      f"{os.path.basename(copy)}: systemd-analyze security exposure "
                      f"{exposure} <= {MAX_EXPOSURE}",
                      "\n".join(line for line in out.stdout.splitlines() if "✗" in line))
            with open(copy) as f:
                text = f.read()
            for directive in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                              "PrivateTmp=yes", "CapabilityBoundingSet=\n"]:
                tap.check(directive in text, f"{os.path.basename(copy)} sets "
                          f"{directive.strip() or directive!r}")
            tap.check("DynamicUser=yes" in text or re.search(r"^User=\S+", text, re.M),
                      f"{os.path.basename(copy)} runs as a dynamic or dedicated user")
        with open(units["modelwatch-agent.service"]) as f:
            text = f.read()
        tap.check("StateDirectory=modelwatch" in text and "RuntimeDirectory=modelwatch" in text,
                  "the agent's unit has StateDirectory (spool in /var/lib/modelwatch) and "
                  "RuntimeDirectory (socket in /run/modelwatch)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_program(tap, cluster, root, libdir, opts):
    pc_dir = os.path.join(libdir, "pkgconfig")
    env = dict(os.environ, PKG_CONFIG_PATH=pc_dir, PKG_CONFIG_SYSROOT_DIR=root)
    env.pop("PKG_CONFIG_LIBDIR", None)
    cflags = sh(["pkg-config", "--cflags", "libmodelwatch"], env=env)
    libs = sh(["pkg-config", "--libs", "libmodelwatch"], env=env)
    static_libs = sh(["pkg-config", "--static", "--libs", "libmodelwatch"], env=env)
    tap.check(cflags.returncode == 0 and libs.returncode == 0 and static_libs.returncode == 0,
              "pkg-config finds libmodelwatch in the DESTDIR",
              cflags.stderr + libs.stderr + static_libs.stderr)
    tap.check(root in cflags.stdout and root in libs.stdout,
              "pkg-config's flags point into the DESTDIR", cflags.stdout + libs.stdout)
    src = os.path.join(cluster.dir, "capture.c")
    with open(src, "w") as f:
        f.write(PROGRAM)
    cc = os.environ.get("CC", "cc")
    shared_exe = os.path.join(cluster.dir, "capture-shared")
    out = sh([cc, "-std=c17", "-Wall", "-Wextra", "-Werror", src, "-o", shared_exe]
             + cflags.stdout.split() + libs.stdout.split())
    tap.check(out.returncode == 0, "an external program compiles and links against the "
              "installed header and shared library with pkg-config", out.stderr)
    # The archive: its full path, and what --static says it needs besides -lmodelwatch.
    static_exe = os.path.join(cluster.dir, "capture-static")
    extra = [a for a in static_libs.stdout.split() if a != "-lmodelwatch"]
    out2 = sh([cc, "-std=c17", "-Wall", "-Wextra", "-Werror", src, "-o", static_exe]
              + cflags.stdout.split() + [os.path.join(libdir, "libmodelwatch.a")] + extra)
    tap.check(out2.returncode == 0, "and against the installed static archive with "
              "pkg-config --static", out2.stderr)
    if out.returncode or out2.returncode:
        return
    ldd = sh(["ldd", static_exe]).stdout
    tap.check("libmodelwatch" not in ldd, "the static program does not need libmodelwatch.so",
              ldd)

    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator()
    agent = cluster.start_agent()
    run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    total = 0
    for exe in [shared_exe, static_exe]:
        res = sh([exe, agent.endpoint, str(EVENTS)], env=run_env, timeout=120)
        tap.check(res.returncode == 0, f"{os.path.basename(exe)} runs and hands every "
                  f"prediction to the installed agent", res.stdout + res.stderr)
        total += EVENTS
    ldd = sh(["ldd", shared_exe], env=run_env).stdout
    tap.check(os.path.join(libdir, "libmodelwatch.so") in ldd,
              "the shared program ran with the installed libmodelwatch.so", ldd)

    def counted():
        return metrics(agg.http_port).get(
            'modelwatch_predictions_total{model="installcheck",version="v1"}', 0)
    try:
        wait_for(lambda: counted() == total, 60, "the installed aggregator to count them")
    except TestFailure:
        pass
    tap.check(counted() == total, f"the installed aggregator counted the {total} predictions "
              f"of both programs", str(counted()))
    for proc in (agent, agg):
        tap.check(cluster.stop(proc) == 0, f"installed {proc.mw_name} exits 0 on SIGTERM")


def main(tap, cluster):
    build_dir = cluster.build_dir
    opts = build_options(build_dir)
    root = tempfile.mkdtemp(prefix="mw-destdir-")
    try:
        out = sh(["meson", "install", "-C", build_dir, "--no-rebuild", "--destdir", root],
                 timeout=300)
        tap.check(out.returncode == 0, "meson install --destdir succeeds", out.stdout + out.stderr)
        if out.returncode:
            return
        bindir, libdir, datadir, mandir, units, pages = check_installed_set(tap, opts, root)
        check_man_pages(tap, bindir, pages)
        check_configs(tap, bindir, datadir)
        check_units(tap, opts, root, units, os.path.join(root + opts["prefix"], opts["mandir"]))
        installed = Installed(build_dir, bindir)
        try:
            check_program(tap, installed, root, libdir, opts)
        finally:
            if tap.failed:
                installed.dump_logs()
            installed.stop_all()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run(main)
