"""``edgekit report RUN_DIR`` regenerates report.md/.html; ``edgekit report RUN_A RUN_B`` compares two runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.errors import OutputExistsError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="one run folder to regenerate, or two to compare")
    parser.add_argument("--out", type=Path, default=None,
                        help="with two runs: also write compare.md and compare.html into this folder")
    parser.add_argument("--force", action="store_true", help="overwrite compare.md/compare.html in --out")


def run(args: argparse.Namespace) -> int:
    from edgekit.report.write import load, regenerate

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

    diff = compare_reports(load(runs[0]), load(runs[1]))
    text = render_compare_markdown(diff)
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a folder")
        existing = [p for p in (args.out / "compare.md", args.out / "compare.html") if p.exists()]
        if existing and not args.force:
            raise OutputExistsError(f"{existing[0]}: exists (use --force to overwrite)")
    print(text, end="")
    if args.out is not None:
        write_text(args.out / "compare.md", text)
        write_text(args.out / "compare.html", render_compare_html(diff))
        print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.html'}")
    return 0
