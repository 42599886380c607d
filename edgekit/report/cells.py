"""Cell formats, row styles and the status line the report's sections share (report.md and report.html)."""

from __future__ import annotations

import json
from typing import Any

from edgekit.report.content import MD_DASH
from edgekit.report.model import BenchRow


def status_line(report: Any) -> str:
    """``ok``, ``failed``, or ``ok, 1 warning``: the run's status as the title says it (``report``: a Report)."""
    n = len(report.warnings)
    return report.status + (f", {n} warning{'s' if n != 1 else ''}" if n else "")


def md_num(v: Any, spec: str) -> str:
    """A number in report.md by ``spec`` (a dash for none)."""
    return MD_DASH if v is None else format(v, spec)


def ms_text(v: float) -> str:
    """A latency in ms: 3 decimals under 10 ms, 1 above."""
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def percent(v: float) -> str:
    """A percentage in report.md's cells: ``94.00 %``."""
    return f"{v:.2f} %"


def times(v: float) -> str:
    """A ratio: ``3.69×``."""
    return f"{v:.2f}×"


def kb(n: int | None) -> float | None:
    return None if n is None else n / 1024


def chosen_mark(name: str, chosen: bool, mark: str = "chosen") -> str:
    return f"{name} **({mark})**" if chosen else name


def row_class(emulated: bool = False, status: str = "", chosen: bool = False, flagged: bool = False) -> str:
    """The page's row style: italic when emulated, red when failed, grey when skipped, green when chosen."""
    classes = (["emulated"] if emulated else []) + ([status] if status in ("failed", "skipped") else [])
    return " ".join(classes + (["chosen"] if chosen else []) + (["regressed"] if flagged else []))


def peak_text(b: BenchRow) -> str | None:
    """``54.1 (fp32)``, or why an ok row has no peak."""
    if b.peak_gmacs is not None:
        return f"{b.peak_gmacs:.1f} ({b.peak_kernel or '?'})"
    return b.peak_reason or None


def kv_text(v: Any) -> str | None:
    """A key-value cell: a string as it is, a list or table as JSON, anything else as text."""
    return v if isinstance(v, str) or v is None else json.dumps(v)
