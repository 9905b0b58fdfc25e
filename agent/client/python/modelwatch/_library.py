"""Finding and loading libmodelwatch, the C library the binding wraps.

Looked for, first found wins:
  1. MODELWATCH_LIB, the path of a libmodelwatch.so (to choose another build, e.g. a build tree);
  2. the library directory recorded when this package was built
     (pip install --config-settings libdir=DIR), see _build_config;
  3. where the dynamic linker finds it (ctypes.util.find_library: the ldconfig cache);
  4. the places `meson install` puts it by default and the system's: /usr/local and /usr, each
     with lib/<multiarch triplet>, lib64 and lib, and this Python's own prefix (a venv).
"""
import ctypes
import ctypes.util
import os
import platform
import sys
import sysconfig
from typing import List, Optional

from . import _build_config

_NAMES = ("libmodelwatch.so", "libmodelwatch.so.0")


def _multiarch() -> str:
    triplet = sysconfig.get_config_var("MULTIARCH")
    if isinstance(triplet, str) and triplet:
        return triplet
    return f"{platform.machine()}-linux-gnu"


def standard_dirs() -> List[str]:
    """The directories searched after the linker's cache, in order."""
    dirs = []
    for prefix in ("/usr/local", "/usr", sys.prefix, sys.base_prefix):
        for sub in (os.path.join("lib", _multiarch()), "lib64", "lib"):
            path = os.path.join(prefix, sub)
            if path not in dirs:
                dirs.append(path)
    return dirs


def _in_dir(directory: str) -> Optional[str]:
    for name in _NAMES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def candidates() -> List[str]:
    """Every place looked at, in order (for the error message and for tests)."""
    places = []
    if _build_config.LIBDIR:
        places.append(_build_config.LIBDIR)
    places.append("the dynamic linker's cache (ctypes.util.find_library)")
    places.extend(standard_dirs())
    return places


def locate() -> Optional[str]:
    """The path or name of the libmodelwatch to load, or None (MODELWATCH_LIB aside)."""
    if _build_config.LIBDIR:
        found = _in_dir(_build_config.LIBDIR)
        if found:
            return found
    name = ctypes.util.find_library("modelwatch")
    if name:
        return name
    for directory in standard_dirs():
        found = _in_dir(directory)
        if found:
            return found
    return None


def load() -> ctypes.CDLL:
    """Load libmodelwatch, or raise ImportError saying where it was looked for."""
    path = os.environ.get("MODELWATCH_LIB")
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"modelwatch: cannot load the library named by MODELWATCH_LIB="
                              f"{path!r}: {e}") from e
    found = locate()
    if found is None:
        raise ImportError("modelwatch: libmodelwatch was not found; looked in "
                          + ", ".join(candidates())
                          + ". Install it (meson install), or reinstall this package with "
                          "--config-settings libdir=DIR naming the directory that holds "
                          "libmodelwatch.so, or set MODELWATCH_LIB to its path.")
    try:
        return ctypes.CDLL(found)
    except OSError as e:
        raise ImportError(f"modelwatch: cannot load {found!r} (set MODELWATCH_LIB to choose "
                          f"the library): {e}") from e
