"""report.md and report.html of a tune run: REPORT's renderers, or a plain trials table when they cannot render it."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _pct(v: Any) -> str:
    return f"{v * 100:.2f} %" if isinstance(v, (int, float)) else "–"


def trials_table(trials: Sequence[Mapping[str, Any]], best_id: str) -> list[str]:
    """Markdown rows: one per trial, the best one marked."""
    lines = ["| trial | status | epochs run | val accuracy | config |", "|---|---|---|---|---|"]
    for r in trials:
        cfg = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["config"].items())
        mark = " **(best)**" if r["id"] == best_id else ""
        lines.append(f"| {r['id']}{mark} | {r['status']} | {r['epochs_run']} | {_pct(r['val_accuracy'])} | {cfg} |")
    return lines


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The winner and where the trials ran (Markdown paragraphs)."""
    t = report["tune"]
    best, ex, sched = t["best"], t["executor"], t["scheduler"]
    return [
        f"Best trial **{best['id']}** (chosen on validation accuracy only): validation {_pct(best['val_accuracy'])}, "
        f"**test {_pct(best['test_accuracy'])}** (test evaluated once, for the winner). "
        f"Recipe: `{best['recipe_file']}`.", "",
        f"Executor: {ex['kind']} {ex['address']}, {ex['nodes']} node(s), {ex['workers']} worker(s); "
        f"{len(t['trials'])} trials in {t['wall_s']:.0f} s; ASHA (max {sched['max_t']} epochs, grace "
        f"{sched['grace_period']}, reduction factor {sched['reduction_factor']}).", "",
    ]


def trials_markdown(report: Mapping[str, Any]) -> str:
    """The summary and the trials table (Markdown)."""
    lines = ["# edgekit tune", "", *summary_lines(report),
             *trials_table(report["tune"]["trials"], report["tune"]["best"]["id"])]
    for w in report.get("warnings", []):
        lines += ["", f"**Warning:** {w}"]
    return "\n".join(lines) + "\n"


def trials_html(report: Mapping[str, Any]) -> str:
    """A minimal self-contained page holding the trials table."""
    body = html.escape(trials_markdown(report))
    return f"<!doctype html><meta charset='utf-8'><title>edgekit tune</title><pre>{body}</pre>\n"


def render_reports(report: Mapping[str, Any], out: Path) -> tuple[str, str]:
    """(report.md, report.html) text: REPORT's renderers when they handle a tune-only report."""
    try:
        from edgekit.report.html import render_html
        from edgekit.report.markdown import render_markdown

        return render_markdown(dict(report)), render_html(dict(report), out)
    except Exception as e:  # a renderer that does not know tune reports yet
        log.debug("report renderers could not render the tune report (%s); writing the trials table", e)
        return trials_markdown(report), trials_html(report)
