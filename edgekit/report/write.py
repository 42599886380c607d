"""Write ``report.json``, ``report.md`` and ``report.html`` into a run folder, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import OutputExistsError
from edgekit.fsutil import write_json, write_text
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown

REPORT_FILES = ("report.json", "report.md", "report.html")


def write_reports(out_dir: Path, report: dict[str, Any], force: bool = False) -> list[Path]:
    """Write the three report files; refuses to replace existing ones unless ``force``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not force:
        existing = [out_dir / f for f in REPORT_FILES if (out_dir / f).exists()]
        if existing:
            raise OutputExistsError(f"{existing[0]}: already exists (use --force to replace it)")
    written = [write_json(out_dir / "report.json", report), write_text(out_dir / "report.md", render_markdown(report))]
    written.append(write_text(out_dir / "report.html", render_html(report, out_dir)))
    return written
