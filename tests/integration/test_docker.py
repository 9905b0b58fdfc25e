#!/usr/bin/env python3
"""deploy/docker/*.Dockerfile against the build: no image is built, the package lists are checked.

For each Dockerfile (multi-stage, Debian slim, the release this machine runs, so its dpkg
database can map files to packages):
- The build stage installs the Debian package that provides each of meson's dependency()
  lookups (the package owning the library meson resolved, including http_parser found with
  find_library), and of each find_program() the build runs; tests are off there, so
  dependencies required only for tests are not needed.
- The runtime stage installs no -dev package and no compiler; it runs as a numeric non-root
  user; every library the shipped binaries load (ldd, on this build) belongs to a package it
  installs or to Debian's required set (what the slim image holds), directly for the libraries
  the binaries name (DT_NEEDED) and through package dependencies for the rest; and it installs
  nothing that the shipped binaries do not link (meson's link line), except ca-certificates.
"""
import json
import os
import re
import shlex
import subprocess

from harness import TestFailure, run

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILES = ["deploy/docker/agent.Dockerfile", "deploy/docker/aggregator.Dockerfile"]
# Packages the build stage may list besides those of meson's dependencies and programs.
BUILD_TOOLS = {"gcc", "libc6-dev", "meson", "ninja-build", "pkg-config"}
# Packages a runtime stage may list that no binary links: the CA bundle for TLS to Kafka,
# Redis and PagerDuty.
RUNTIME_EXTRAS = {"ca-certificates"}


def parse_dockerfile(path):
    """[(stage name or index, base image, [instructions as (KEYWORD, text)])], ARG defaults."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    stages, args = [], {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.strip().partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append((name, image, []))
        elif stages:
            stages[-1][2].append((keyword, rest.strip()))
    return stages, args


def apt_packages(instructions):
    pkgs = []
    for keyword, text in instructions:
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", text):
            words = shlex.split(command)
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def sh(argv):
    return subprocess.run(argv, capture_output=True, text=True)


_owner_cache = {}


def owner(path, follow=True):
    """The Debian package owning a file (with `follow`, the file a symbolic link such as a -dev
    package's libfoo.so leads to), trying the spellings merged /usr gives a path."""
    key = (path, follow)
    if key in _owner_cache:
        return _owner_cache[key]
    candidates = []
    for p in (os.path.realpath(path) if follow else os.path.normpath(path),):
        candidates.append(p)
        candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    result = None
    for c in candidates:
        out = sh(["dpkg-query", "-S", c])
        if out.returncode == 0:
            result = out.stdout.split(":")[0].strip()
            break
    _owner_cache[key] = result
    return result


_deps_cache = {}


def direct_deps(pkg):
    if pkg not in _deps_cache:
        out = sh(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg])
        names = set()
        for alt in out.stdout.split(","):
            for choice in alt.split("|"):
                name = choice.strip().split(" ")[0].split(":")[0]
                if name and installed(name):
                    names.add(name)
        _deps_cache[pkg] = names
    return _deps_cache[pkg]


def installed(pkg):
    out = sh(["dpkg-query", "-W", "-f=${Status}", pkg])
    return out.returncode == 0 and "install ok installed" in out.stdout


def closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += direct_deps(p)
    return seen


def required_set():
    out = sh(["dpkg-query", "-W", "-f=${Package} ${Priority}\n"])
    return closure({line.split()[0] for line in out.stdout.splitlines()
                    if line.split()[1:] == ["required"]})


def meson_dependencies(build_dir):
    """{name: [library files meson resolved]} for each dependency() meson found."""
    out = subprocess.run(["meson", "introspect", "--dependencies", build_dir],
                         capture_output=True, text=True, check=True)
    return {d["name"]: [a for a in d["link_args"] if a.startswith("/")]
            for d in json.loads(out.stdout)}


def test_only_dependencies():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        text = f.read()
    return set(re.findall(r"dependency\('([^']+)'[^)]*required:\s*get_option\('tests'\)", text))


def link_libraries(build_dir, target):
    """Shared libraries on meson's link line for `target` (a path in the build directory)."""
    with open(os.path.join(build_dir, "build.ninja")) as f:
        for line in f:
            if line.startswith(f"build {target}: c_LINKER "):
                deps = line.split("|", 1)[1].split() if "|" in line else []
                return [d for d in deps if d.startswith("/") and ".so" in os.path.basename(d)]
    raise TestFailure(f"no link edge for {target} in build.ninja")


# A sanitizer build (deploy/local/test.sh's build-asan) links the sanitizer runtimes, and
# through them libstdc++ and libgcc_s; no image is built from it, so neither the runtimes nor
# what only they load are the runtime stages' concern.
SANITIZER_RUNTIME = re.compile(r"lib(asan|ubsan)\.so")


def needed(binary):
    out = sh(["readelf", "-d", binary])
    return [so for so in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)
            if not SANITIZER_RUNTIME.match(so)]


def ldd_all(binary):
    out = sh(["ldd", binary])
    libs = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            libs[os.path.basename(m.group(1))] = m.group(2) if m.lastindex == 2 else m.group(1)
    return libs


def ldd(binary):
    """{soname: resolved path} of everything the binary loads, but the sanitizer runtimes."""
    libs = ldd_all(binary)
    direct = set(needed(binary))
    runtimes = [path for so, path in libs.items() if SANITIZER_RUNTIME.match(so)]
    for path in runtimes:
        for so in ldd_all(path):
            if so not in direct:
                libs.pop(so, None)
    for so in [so for so in libs if SANITIZER_RUNTIME.match(so)]:
        del libs[so]
    return libs


def programs_needed():
    """Programs the build (without tests) runs through find_program, outside the source tree."""
    progs = set()
    for dirpath, dirnames, filenames in os.walk(SOURCE_ROOT):
        rel = os.path.relpath(dirpath, SOURCE_ROOT)
        if rel.startswith(("build", "tests", ".git", "deploy/local/run")):
            dirnames[:] = []
            continue
        if "meson.build" in filenames:
            with open(os.path.join(dirpath, "meson.build")) as f:
                for m in re.finditer(r"find_program\('([^']+)'", f.read()):
                    if not os.path.exists(os.path.join(dirpath, m.group(1))):
                        progs.add(m.group(1))
    return progs


def which_path(prog):
    if os.path.isabs(prog):
        return prog if os.path.exists(prog) else None
    out = sh(["sh", "-c", f"command -v {shlex.quote(prog)}"])
    return out.stdout.strip() or None


def check_dockerfile(tap, build_dir, rel, codename, deps, test_only, base):
    stages, args = parse_dockerfile(os.path.join(SOURCE_ROOT, rel))
    name = os.path.basename(rel)
    tap.check(len(stages) >= 2, f"{name} is multi-stage", str([s[:2] for s in stages]))
    if len(stages) < 2:
        return
    build, runtime = stages[0], stages[-1]
    for stage in (build, runtime):
        tap.check(stage[1] == f"debian:{codename}-slim",
                  f"{name} stage {stage[0]} is Debian slim of this machine's release "
                  f"({codename})", stage[1])

    # Build stage: meson's dependencies and programs.
    build_pkgs = set(apt_packages(build[2]))
    runs = " ".join(t for k, t in build[2] if k == "RUN")
    tap.check("-Dtests=false" in runs and "-Ddev_tools=false" in runs,
              f"{name} builds without tests and development tools", runs)
    missing = {}
    for dep, files in sorted(deps.items()):
        if dep in test_only or not files:
            continue
        pkg = owner(files[0], follow=False)
        if pkg not in build_pkgs:
            missing[dep] = pkg
    http_parser = [f for f in link_libraries(build_dir, "aggregator/modelwatch-aggregator")
                   if "libhttp_parser" in f]
    for f in http_parser:  # cc.find_library: not in meson's dependency list
        dev = owner(os.path.join(os.path.dirname(f), "libhttp_parser.so"), follow=False)
        if dev not in build_pkgs:
            missing["http_parser (find_library)"] = dev
    for prog in sorted(programs_needed()):
        path = which_path(prog)
        pkg = owner(path) if path else None
        if pkg and pkg not in closure(build_pkgs) | base:
            missing[f"find_program {prog}"] = pkg
    tap.check(not missing, f"{name}: the build stage installs the package of every meson "
              f"dependency and program", str(missing))
    extra = {p for p in build_pkgs if not installed(p)}
    tap.check(not extra, f"{name}: every build-stage package is a Debian package this machine "
              f"knows (the names match the release)", str(sorted(extra)))

    # Runtime stage.
    rt_pkgs = set(apt_packages(runtime[2]))
    tap.check(not any(p.endswith("-dev") or p in ("gcc", "meson", "ninja-build", "pkg-config")
                      for p in rt_pkgs),
              f"{name}: the runtime stage installs no -dev package or build tool",
              str(sorted(rt_pkgs)))
    users = [t for k, t in runtime[2] if k == "USER"]
    uid = users[-1].split(":")[0] if users else ""
    tap.check(uid.isdigit() and int(uid) != 0,
              f"{name}: the runtime stage runs as a numeric non-root user (runAsNonRoot can "
              f"verify it)", str(users))
    shipped = re.findall(r"/build/(\S+) /out/usr/bin/", runs)
    tap.check(bool(shipped), f"{name} ships binaries from the build", str(shipped))
    provided = closure(rt_pkgs) | base
    linked_pkgs = set()
    for target in shipped:
        binary = os.path.join(build_dir, target)
        if not os.path.exists(binary):
            tap.check(False, f"{target} is built in {build_dir}")
            continue
        loads = ldd(binary)
        direct = {so: owner(loads[so]) if so in loads else None for so in needed(binary)}
        not_direct = {so: p for so, p in direct.items() if p not in rt_pkgs | base}
        tap.check(not not_direct, f"{name}: every library {os.path.basename(target)} names "
                  f"(DT_NEEDED) comes from a runtime-stage package or the slim base",
                  str(not_direct))
        unresolved = {so: owner(p) for so, p in loads.items() if owner(p) not in provided}
        tap.check(not unresolved, f"{name}: every library {os.path.basename(target)} loads "
                  f"(ldd) is installed by the runtime stage's packages or the base",
                  str(unresolved))
        for lib in link_libraries(build_dir, target):
            pkg = owner(lib)
            if pkg:
                linked_pkgs.add(pkg)
    stray = rt_pkgs - linked_pkgs - RUNTIME_EXTRAS
    tap.check(not stray, f"{name}: the runtime stage installs only libraries the shipped "
              f"binaries link (and {', '.join(sorted(RUNTIME_EXTRAS))})", str(sorted(stray)))
    unknown = {p for p in rt_pkgs if not installed(p)}
    tap.check(not unknown, f"{name}: every runtime package is a Debian package this machine "
              f"knows", str(sorted(unknown)))


def main(tap, cluster):
    build_dir = cluster.build_dir
    with open("/etc/os-release") as f:
        codename = dict(line.rstrip("\n").split("=", 1) for line in f
                        if "=" in line).get("VERSION_CODENAME", "").strip('"')
    tap.check(bool(codename), "this machine names its Debian release", codename)
    deps = meson_dependencies(build_dir)
    tap.check({"rdkafka", "libprotobuf-c", "nanomsg"} <= set(deps),
              "meson introspect lists the dependencies", str(sorted(deps)))
    test_only = test_only_dependencies()
    tap.check("cmocka" in test_only, "cmocka is a dependency of the tests only",
              str(sorted(test_only)))
    base = required_set()
    for rel in DOCKERFILES:
        check_dockerfile(tap, build_dir, rel, codename, deps, test_only, base)
    with open(os.path.join(SOURCE_ROOT, ".dockerignore")) as f:
        ignored = f.read().split()
    tap.check(".git" in ignored and "build*/" in ignored,
              ".dockerignore keeps .git and build directories out of the build context",
              str(ignored))


if __name__ == "__main__":
    run(main)
