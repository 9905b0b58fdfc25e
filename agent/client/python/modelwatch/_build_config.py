"""What the build recorded about this installation.

In the source tree nothing is recorded. The package's build backend (build_backend/ next to
pyproject.toml) writes this file into the wheel it builds, with the directory given by
`pip install --config-settings libdir=DIR`, so that the installed package finds
libmodelwatch.so there without any environment variable.
"""
from typing import Optional

LIBDIR: Optional[str] = None
