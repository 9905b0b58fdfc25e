#!/usr/bin/env python3
"""`pip install agent/client/python` works offline and the installed package captures through a
real agent without any environment variable.

- libmodelwatch is installed with `meson install --destdir` (as a packager stages it).
- For Debian's Python (/usr/bin/python3, whose pip refuses the system site: the package goes
  into a venv) and for the python3 first on PATH when it is another one: a venv is made, the
  package is pip-installed into it with --no-index (no package index exists here: the in-tree
  build backend needs none) and --config-settings libdir=<the staged libdir>. The installed
  package carries py.typed and the recorded libdir; pip's metadata carries the project's version,
  which is meson.build's.
- A program run by the venv's Python, from a directory without the source tree, with neither
  MODELWATCH_LIB nor PYTHONPATH set, opens a Client and captures 2,000 events and 50 labels
  right away (no waiting, no retry): the agent accepts exactly that many, per interpreter.
- Without a recorded libdir the package looks in standard places, its own prefix among them:
  with none holding the library, import raises ImportError naming where it looked; with the
  library copied into the venv's lib/, it is found there.
- The installed package is typed: mypy --strict, run on a user's program against the venv,
  accepts a correct program and rejects one that passes an int as a prediction id.
- pip uninstall removes the package.
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile

from harness import TestFailure, metrics, python_child_env, run, wait_for

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGE_DIR = os.path.join(SOURCE_ROOT, "agent", "client", "python")
EVENTS = 2000
LABELS = 50

PROGRAM = r"""
import json, sys
import modelwatch
from modelwatch import _library

endpoint, events, labels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
refused = 0
with modelwatch.Client(endpoint, close_timeout_ms=5000) as mw:
    for i in range(events):
        refused += not mw.capture("pypackage", f"req-{i}", version="v1", latency_us=100 + i,
                                  features={"x": float(i), "country": "fr"}, score=0.5)
    for i in range(labels):
        refused += not mw.feedback("pypackage", f"req-{i}", "1", version="v1")
    flushed = mw.flush(10)
print(json.dumps({"sent": mw.sent, "dropped": mw.dropped, "refused": refused,
                  "flushed": flushed, "module": modelwatch.__file__,
                  "library": _library.locate()}))
"""


TYPED_PROGRAM = """
import modelwatch

def serve(endpoint: str) -> int:
    with modelwatch.Client(endpoint, buffer_bytes=1 << 20) as mw:
        mw.wait_ready(1.0)
        ok: bool = mw.capture("m", "p", features={"a": 1.0, "b": "x", "c": None}, score=0.5)
        mw.feedback("m", "p", "yes", event_time_ms=1)
        mw.flush(1.0)
        return mw.sent + int(ok)
"""
MISTYPED_PROGRAM = """
import modelwatch

with modelwatch.Client("ipc:///x") as mw:
    mw.capture("m", 17)
"""


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


def clean_env():
    """The environment of a user's shell: no variable points at the library or the sources
    (meson's test runner sets LD_LIBRARY_PATH to the build tree, a user does not)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MODELWATCH_LIB", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                        "LD_LIBRARY_PATH", "LIBRARY_PATH")}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return python_child_env(env)


def interpreters():
    """Debian's Python, and the python3 first on PATH when it is another one."""
    found = ["/usr/bin/python3"]
    on_path = shutil.which("python3")
    if on_path:
        real = sh([on_path, "-c", "import sys; print(sys.executable)"]).stdout.strip()
        if real and os.path.realpath(real) != os.path.realpath("/usr/bin/python3"):
            found.append(real)
    return found


def meson_info(build_dir):
    opts = json.loads(sh(["meson", "introspect", "--buildoptions", build_dir]).stdout)
    info = json.loads(sh(["meson", "introspect", "--projectinfo", build_dir]).stdout)
    return {o["name"]: o["value"] for o in opts}, info["version"]


def make_venv(tap, python, where):
    out = sh([python, "-m", "venv", where], env=clean_env())
    tap.check(out.returncode == 0, f"{python} -m venv", out.stdout + out.stderr)
    if out.returncode:
        raise TestFailure(f"cannot make a venv with {python}")
    return os.path.join(where, "bin", "python")


def pip_install(venv_python, extra=()):
    return sh([venv_python, "-m", "pip", "install", "--no-index", *extra, PACKAGE_DIR],
              env=clean_env())


def site_package(venv_python, rel):
    out = sh([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
             env=clean_env())
    return os.path.join(out.stdout.strip(), rel)


def capture_through_agent(tap, label, venv_python, agent, workdir):
    before = metrics(agent.http_port)
    prog = os.path.join(workdir, "capture.py")
    with open(prog, "w") as f:
        f.write(PROGRAM)
    out = sh([venv_python, prog, agent.endpoint, str(EVENTS), str(LABELS)], env=clean_env(),
             cwd=workdir)
    tap.check(out.returncode == 0, f"{label}: the program runs without MODELWATCH_LIB",
              out.stdout + out.stderr)
    if out.returncode:
        return None
    report = json.loads(out.stdout)
    tap.check(report["refused"] == 0 and report["sent"] == EVENTS + LABELS and
              report["dropped"] == 0 and report["flushed"],
              f"{label}: every capture right after Client() accepted and handed over",
              str(report))
    tap.check(report["module"].startswith(os.path.dirname(os.path.dirname(venv_python))),
              f"{label}: the venv's installed package was used", report["module"])

    def counts():
        m = metrics(agent.http_port)
        return (m["modelwatch_agent_events_accepted_total"] -
                before["modelwatch_agent_events_accepted_total"],
                m["modelwatch_agent_feedback_accepted_total"] -
                before["modelwatch_agent_feedback_accepted_total"])
    try:
        wait_for(lambda: counts() == (EVENTS, LABELS), 30, "the agent to count them")
    except TestFailure:
        pass
    tap.check(counts() == (EVENTS, LABELS),
              f"{label}: the agent accepted exactly {EVENTS} events and {LABELS} labels",
              str(counts()))
    return report


def check_typing(tap, label, venv_python, workdir):
    results = []
    for name, text in (("typed_ok.py", TYPED_PROGRAM), ("typed_bad.py", MISTYPED_PROGRAM)):
        path = os.path.join(workdir, name)
        with open(path, "w") as f:
            f.write(text)
        results.append(sh(["/usr/bin/python3", "-m", "mypy", "--strict", "--no-incremental",
                           "--python-executable", venv_python, path], env=clean_env(),
                          cwd=workdir))
    good, bad = results
    tap.check(good.returncode == 0, f"{label}: mypy --strict accepts a program using the "
              f"installed package (py.typed, hints)", good.stdout + good.stderr)
    wrong_id = 'Argument 2 to "capture" of "Client" has incompatible type "int"'
    tap.check(bad.returncode == 1 and wrong_id in bad.stdout,
              f"{label}: ... and rejects an int as a prediction id", bad.stdout + bad.stderr)


def check_interpreter(tap, python, libdir, version, agent, workdir):
    label = os.path.basename(os.path.dirname(os.path.dirname(python))) + ":" + python
    venv_python = make_venv(tap, python, os.path.join(workdir, f"venv-{abs(hash(python))}"))
    out = pip_install(venv_python, ["--config-settings", f"libdir={libdir}"])
    tap.check(out.returncode == 0, f"{label}: pip install --no-index agent/client/python",
              out.stdout + out.stderr)
    if out.returncode:
        return
    shown = sh([venv_python, "-m", "pip", "show", "modelwatch"], env=clean_env()).stdout
    tap.check(f"Version: {version}\n" in shown, f"{label}: pip knows modelwatch {version}",
              shown)
    tap.check(os.path.exists(site_package(venv_python, "modelwatch/py.typed")),
              f"{label}: py.typed is installed")
    recorded = sh([venv_python, "-c", "from modelwatch import _build_config as b; "
                   "print(b.LIBDIR)"], env=clean_env(), cwd=workdir).stdout.strip()
    tap.check(recorded == libdir, f"{label}: the build recorded the libdir", recorded)
    check_typing(tap, label, venv_python, workdir)
    report = capture_through_agent(tap, label, venv_python, agent, workdir)
    if report:
        tap.check(report["library"] == os.path.join(libdir, "libmodelwatch.so"),
                  f"{label}: the staged libmodelwatch.so was loaded", str(report["library"]))
    out = sh([venv_python, "-m", "pip", "uninstall", "-y", "modelwatch"], env=clean_env())
    gone = sh([venv_python, "-c", "import modelwatch"], env=clean_env(), cwd=workdir)
    tap.check(out.returncode == 0 and gone.returncode != 0,
              f"{label}: pip uninstall removes it", out.stdout + out.stderr)


def check_standard_places(tap, libdir, agent, workdir):
    venv_python = make_venv(tap, "/usr/bin/python3", os.path.join(workdir, "venv-search"))
    out = pip_install(venv_python)
    tap.check(out.returncode == 0, "pip install without a recorded libdir",
              out.stdout + out.stderr)
    system_wide = sh(["/usr/bin/python3", "-c", "import ctypes.util; "
                      "print(ctypes.util.find_library('modelwatch') or '')"],
                     env=clean_env()).stdout.strip()
    if system_wide:
        tap.check(True, "# SKIP libmodelwatch is installed system-wide: ImportError not seen")
    else:
        out = sh([venv_python, "-c", "import modelwatch"], env=clean_env(), cwd=workdir)
        tap.check(out.returncode != 0 and "ImportError" in out.stderr and
                  "/usr/local/lib" in out.stderr and "venv-search/lib" in out.stderr,
                  "without the library anywhere, import raises ImportError naming where it "
                  "looked", out.stderr[-600:])
    venv_lib = os.path.join(workdir, "venv-search", "lib")
    for path in glob.glob(os.path.join(libdir, "libmodelwatch.so*")):
        shutil.copy(path, venv_lib, follow_symlinks=True)
    report = capture_through_agent(tap, "library in the venv's lib/", venv_python, agent,
                                   workdir)
    if report:
        # (a venv's lib64 is a link to its lib)
        tap.check(os.path.realpath(report["library"]) ==
                  os.path.realpath(os.path.join(venv_lib, "libmodelwatch.so")),
                  "... found in the venv's own lib/", str(report["library"]))


def main(tap, cluster):
    build_dir = cluster.build_dir
    opts, version = meson_info(build_dir)
    with open(os.path.join(PACKAGE_DIR, "pyproject.toml")) as f:
        pyproject = f.read()
    tap.check(f'version = "{version}"' in pyproject,
              f"pyproject.toml's version is meson.build's ({version})")
    root = tempfile.mkdtemp(prefix="mw-pypackage-")
    try:
        destdir = os.path.join(root, "destdir")
        out = sh(["meson", "install", "-C", build_dir, "--no-rebuild", "--destdir", destdir])
        tap.check(out.returncode == 0, "meson install --destdir", out.stdout + out.stderr)
        libdir = os.path.join(destdir + opts["prefix"], opts["libdir"])
        tap.check(os.path.exists(os.path.join(libdir, "libmodelwatch.so")),
                  "libmodelwatch.so staged", libdir)
        cluster.start_devkafka()
        agent = cluster.start_agent()
        for python in interpreters():
            check_interpreter(tap, python, libdir, version, agent, root)
        check_standard_places(tap, libdir, agent, root)
        tap.check(cluster.stop(agent) == 0, "the agent exits 0")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run(main)
