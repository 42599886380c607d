"""Pack the device-side runner and the sessions it uses into one zip application (``.pyz``).

The archive holds ``__main__.py``, an empty ``edgekit/__init__.py`` and the modules of
:data:`SHIPPED`, so ``python edgekit-runner.pyz REQUEST.json RESULT.json`` works on any machine
with Python 3.9+, NumPy and the runtime, including under ``python -I`` (the archive is on
``sys.path`` whatever the isolation flags). The same archive runs locally, under qemu and over SSH.
"""

from __future__ import annotations

import os
import zipfile
from importlib import resources
from pathlib import Path

ARCHIVE_NAME = "edgekit-runner.pyz"
SHIPPED = ("__init__.py", "host.py", "sessions.py", "measure.py", "peak.py", "runner.py")
"""The runtime modules the runner needs (each imports only stdlib, NumPy, the runtime and these)."""

_MAIN = "import sys\n\nfrom edgekit.runtime.runner import main\n\nsys.exit(main(sys.argv))\n"
_STAMP = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same bytes


def runner_archive(folder: str | Path) -> Path:
    """Write ``folder/edgekit-runner.pyz`` (atomically) and return its path."""
    package = resources.files("edgekit.runtime")
    path = Path(folder) / ARCHIVE_NAME
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("__main__.py", _STAMP), _MAIN)
        z.writestr(zipfile.ZipInfo("edgekit/__init__.py", _STAMP), "")
        for name in SHIPPED:
            z.writestr(zipfile.ZipInfo(f"edgekit/runtime/{name}", _STAMP), (package / name).read_text())
    os.replace(tmp, path)
    return path
