"""modelwatch_build — the PEP 517 build backend of the modelwatch Python package.

Standard library only, so that `pip install agent/client/python` works on a machine without
a package index: pip runs this backend from the source tree (pyproject.toml's backend-path)
and needs nothing else. It builds
  - a pure-Python wheel (py3-none-any) of the `modelwatch` package, with the package's
    _build_config.py written to record the directory of libmodelwatch.so when the build is
    given one: `pip install --config-settings libdir=DIR ...` (an absolute path);
  - an sdist holding what the wheel is built from.
Metadata comes from pyproject.toml's [project] table. Archive members get a fixed time stamp,
so the same sources and settings give the same wheel.
"""
import base64
import hashlib
import io
import os
import re
import sys
import tarfile
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "modelwatch"
BUILD_CONFIG = f"{PACKAGE}/_build_config.py"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, for the sdist


class BuildError(Exception):
    """A build that cannot go on; the message says what and where."""


def _project() -> Dict[str, Any]:
    path = os.path.join(ROOT, "pyproject.toml")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib
        table: Dict[str, Any] = tomllib.loads(raw.decode("utf-8")).get("project", {})
    except ImportError:  # Python < 3.11: the few flat keys this file uses
        table = _project_without_tomllib(raw.decode("utf-8"))
    for key in ("name", "version"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise BuildError(f"{path}: [project] needs a string `{key}`")
    return table


def _project_without_tomllib(text: str) -> Dict[str, Any]:
    table: Dict[str, Any] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        if section != "[project]":
            continue
        m = re.match(r'^([A-Za-z-]+)\s*=\s*"([^"]*)"\s*$', line)
        if m:
            table[m.group(1)] = m.group(2)
        m = re.match(r'^license\s*=\s*\{\s*text\s*=\s*"([^"]*)"\s*\}\s*$', line)
        if m:
            table["license"] = {"text": m.group(1)}
    return table


def _dist_name(project: Mapping[str, Any]) -> str:
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _dist_info(project: Mapping[str, Any]) -> str:
    return f"{_dist_name(project)}-{project['version']}.dist-info"


def _metadata(project: Mapping[str, Any]) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    license_ = project.get("license")
    if isinstance(license_, dict) and license_.get("text"):
        lines.append(f"License: {license_['text']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    body = ""
    readme = project.get("readme")
    if isinstance(readme, str):
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
        lines.append("Description-Content-Type: text/markdown")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _wheel_file() -> bytes:
    return (b"Wheel-Version: 1.0\nGenerator: modelwatch_build\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n")


def _libdir(config_settings: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The libdir config setting, checked: an absolute directory path, or None."""
    value = (config_settings or {}).get("libdir")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BuildError(f"--config-settings libdir must be given once, got {value!r}")
    if not os.path.isabs(value):
        raise BuildError(f"--config-settings libdir must be an absolute path, got {value!r}")
    if not any(os.path.exists(os.path.join(value, n))
               for n in ("libmodelwatch.so", "libmodelwatch.so.0")):
        # A packager may record where the library will be, before it is there: say so only.
        print(f"modelwatch_build: warning: {value} holds no libmodelwatch.so (yet)",
              file=sys.stderr)
    return os.path.normpath(value)


def _build_config(libdir: Optional[str]) -> bytes:
    return ('"""What the build recorded about this installation (written by modelwatch_build).'
            '"""\nfrom typing import Optional\n\n'
            f"LIBDIR: Optional[str] = {libdir!r}\n").encode("utf-8")


def _package_files() -> List[Tuple[str, str]]:
    """(archive name, source path) of the package's files, sorted."""
    files = []
    top = os.path.join(ROOT, PACKAGE)
    for directory, subdirs, names in os.walk(top):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py") or name == "py.typed":
                path = os.path.join(directory, name)
                files.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    if not any(arc == f"{PACKAGE}/__init__.py" for arc, _ in files):
        raise BuildError(f"{top}: no {PACKAGE}/__init__.py")
    return files


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


# --- PEP 517 hooks --------------------------------------------------------------------------
def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Mapping[str, Any]] = None) -> str:
    project = _project()
    dist_info = _dist_info(project)
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for name, data in (("METADATA", _metadata(project)), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, dist_info, name), "wb") as f:
            f.write(data)
    return dist_info


def build_wheel(wheel_directory: str, config_settings: Optional[Mapping[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    project = _project()
    libdir = _libdir(config_settings)
    dist_info = _dist_info(project)
    filename = f"{_dist_name(project)}-{project['version']}-py3-none-any.whl"
    entries = []
    for arc, path in _package_files():
        if arc == BUILD_CONFIG:
            continue
        with open(path, "rb") as f:
            entries.append((arc, f.read()))
    entries.append((BUILD_CONFIG, _build_config(libdir)))
    entries.sort()
    entries.append((f"{dist_info}/METADATA", _metadata(project)))
    entries.append((f"{dist_info}/WHEEL", _wheel_file()))
    entries.append((f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()))
    record = [_record_line(name, data) for name, data in entries]
    record.append(f"{dist_info}/RECORD,,")
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    os.makedirs(wheel_directory, exist_ok=True)
    target = os.path.join(wheel_directory, filename)
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in entries:
            _add(zf, name, data)
    return filename


def build_sdist(sdist_directory: str,
                config_settings: Optional[Mapping[str, Any]] = None) -> str:
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    sources = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
               ("build_backend/modelwatch_build.py", os.path.abspath(__file__))]
    if isinstance(project.get("readme"), str):
        sources.append((project["readme"], os.path.join(ROOT, project["readme"])))
    sources += _package_files()
    os.makedirs(sdist_directory, exist_ok=True)
    filename = f"{base}.tar.gz"

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{base}/{name}")
        info.size = len(data)
        info.mtime = FIXED_MTIME
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for arc, path in sources:
            with open(path, "rb") as f:
                add(tar, arc, f.read())
        add(tar, "PKG-INFO", _metadata(project))
    return filename
