"""Read and write a run's report files: ``report.json`` (the data), ``report.md`` and ``report.html``.

Every page is rendered in memory before any file is written, and each file is written atomically,
so a report that cannot be rendered leaves the folder as it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import OutputExistsError, ReportError
from edgekit.fsutil import write_json, write_text
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown
from edgekit.report.model import Report

REPORT_JSON = "report.json"
REPORT_FILES = (REPORT_JSON, "report.md", "report.html")


def write_reports(out_dir: Path, report: Report | Mapping[str, Any], force: bool = False) -> list[Path]:
    """Write the three report files; refuses to replace existing ones unless ``force``."""
    typed = Report.coerce(report)
    data = dict(report) if isinstance(report, Mapping) else typed.to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    if not force:
        existing = [out_dir / f for f in REPORT_FILES if (out_dir / f).exists()]
        if existing:
            raise OutputExistsError(f"{existing[0]}: already exists (use --force to replace it)")
    md, page = render_markdown(typed), render_html(typed, out_dir)
    return [write_json(out_dir / REPORT_JSON, data), write_text(out_dir / "report.md", md),
            write_text(out_dir / "report.html", page)]


def report_path(run: Path) -> Path:
    """RUN_DIR/report.json, or ``run`` itself when it names a .json file."""
    return run if run.suffix == ".json" else run / REPORT_JSON


def load(run: Path) -> Report:
    """Read and check RUN_DIR/report.json (or a report.json path); a bad file raises ReportError naming it."""
    path = report_path(run)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (is {run} an edgekit run folder?)") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a folder, expected a report.json file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise ReportError(f"{path}: not valid JSON for a report (nested too deep to parse)") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not an edgekit report (expected an object with an 'artifacts' list)")
    return Report.from_dict(data, str(path))


def regenerate(run: Path) -> list[Path]:
    """Rewrite report.html and report.md from report.json (left untouched); nothing is written if it is bad."""
    report = load(run)
    folder = report_path(run).parent
    md, page = render_markdown(report), render_html(report, folder)
    return [write_text(folder / "report.html", page), write_text(folder / "report.md", md)]
