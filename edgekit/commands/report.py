"""``edgekit report RUN_DIR`` regenerates report.md/.html; ``edgekit report RUN_A RUN_B`` compares two runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgekit.errors import OutputExistsError, UsageError

REPORT_JSON = "report.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="one run folder to regenerate, or two to compare")
    parser.add_argument("--out", type=Path, default=None,
                        help="with two runs: also write compare.md and compare.html into this folder")
    parser.add_argument("--force", action="store_true", help="overwrite compare.md/compare.html in --out")


def load_report(run_dir: Path) -> dict[str, Any]:
    """Read RUN_DIR/report.json (or a report.json path) and check it is a report object."""
    path = run_dir if run_dir.suffix == ".json" else run_dir / REPORT_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (is {run_dir} an edgekit run folder?)") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, expected a report.json file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("artifacts", []), list):
        raise UsageError(f"{path}: not an edgekit report (expected an object with an 'artifacts' list)")
    return data


def regenerate(run_dir: Path) -> list[Path]:
    """Rewrite RUN_DIR/report.html and report.md from report.json (which is left untouched)."""
    from edgekit.fsutil import write_text
    from edgekit.report.html import render_html
    from edgekit.report.markdown import render_markdown

    report = load_report(run_dir)
    folder = run_dir.parent if run_dir.suffix == ".json" else run_dir
    return [write_text(folder / "report.html", render_html(report, folder)),
            write_text(folder / "report.md", render_markdown(report))]


def run(args: argparse.Namespace) -> int:
    runs: list[Path] = args.runs
    if len(runs) > 2:
        raise UsageError(f"report: give one run folder, or two to compare (got {len(runs)})")
    if len(runs) == 1:
        if args.out is not None:
            raise UsageError("report: --out is only used when comparing two runs")
        for path in regenerate(runs[0]):
            print(f"wrote {path}")
        return 0
    from edgekit.fsutil import write_text
    from edgekit.report.compare import compare_reports, render_compare_html, render_compare_markdown

    diff = compare_reports(load_report(runs[0]), load_report(runs[1]))
    text = render_compare_markdown(diff)
    print(text, end="")
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a folder")
        existing = [p for p in (args.out / "compare.md", args.out / "compare.html") if p.exists()]
        if existing and not args.force:
            raise OutputExistsError(f"{existing[0]}: exists (use --force to overwrite)")
        write_text(args.out / "compare.md", text)
        write_text(args.out / "compare.html", render_compare_html(diff))
        print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.html'}")
    return 0
