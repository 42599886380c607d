"""Write measured figures into benchmarks/RESULTS.md (and README) between markers.

A section looks like ``<!-- BEGIN name -->`` … ``<!-- END name -->``; re-running a
script replaces its own section and leaves the others alone. Figures are never
typed by hand: every section records the command that produced it.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
README_PATH = ROOT / "README.md"
HEADER = "# Measured results\n\nEvery figure below was written by the script named in its section, with the command that produced it.\n"


def machine_line() -> str:
    from edgekit.runtime.host import cpu_model

    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu or platform.processor()}, "
            f"{os.cpu_count()} cores, {platform.machine()}; 1-min load average at the end {load:.1f}")


def update_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) section ``name`` of ``path`` with ``body``."""
    text = path.read_text() if path.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
