"""``report.md``: the report's sections (:mod:`edgekit.report.document`) as Markdown.

Turns content blocks into Markdown syntax and nothing else: what each section says is decided
once, in :mod:`edgekit.report.document`, for this page and for report.html.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgekit.report.cells import status_line
from edgekit.report.content import (
    MD_DASH,
    Badge,
    Block,
    Bullets,
    Code,
    Column,
    Inline,
    Preformatted,
    Section,
    Strong,
    Table,
    Text,
    fmt,
)
from edgekit.report.document import RESULT_COLUMNS, sections
from edgekit.report.model import Report
from edgekit.report.table import results_table


def inline(parts: Sequence[Inline]) -> str:
    """A paragraph's parts as Markdown (bold as ``**x**``; code and badges as plain text)."""
    return "".join(f"**{p.text}**" if isinstance(p, Strong) else p.text if isinstance(p, (Code, Badge)) else p
                   for p in parts)


def _cell(c: Column, row: Any) -> str:
    """A cell as report.md shows it: a dash for no value, nothing for an empty string."""
    if c.md_row:
        assert callable(c.md)
        out = c.md(row)
    else:
        v = c.value(row)
        if v == "":
            return ""
        out = fmt(v, c.md if isinstance(c.md, str) or callable(c.md) else "")
    return MD_DASH if out is None else str(out)


def table(t: Table, align: bool = False) -> list[str]:
    """A Markdown table of the columns meant for report.md; ``align`` right-aligns numeric columns."""
    cols = [c for c in t.columns if c.md is not False]
    head = "| " + " | ".join(c.header if c.md_header is None else c.md_header for c in cols) + " |"
    sep = "|" + "|".join("---:" if align and c.numeric else "---" for c in cols) + "|"
    return [head, sep, *("| " + " | ".join(_cell(c, r) for c in cols) + " |" for r in t.rows)]


def block(b: Block, align: bool = False) -> list[str]:
    if isinstance(b, Text):
        return [inline(b.parts), ""]
    if isinstance(b, Bullets):
        return ([f"{b.title}:", ""] if b.title else []) + [f"- {x}" for x in b.items] + [""]
    if isinstance(b, Table):
        return table(b, align) + [""]
    if isinstance(b, Preformatted):
        return ["```", b.text, "```", ""]
    return []  # figures, key-value tables and trees are the page's


def section(s: Section, align: bool = False) -> list[str]:
    """One section: its ``##`` heading (none where ``md_title`` is empty), then its blocks."""
    title = s.title if s.md_title is None else s.md_title
    lines = [f"## {title}", ""] if title else []
    for b in s.blocks_for("md"):
        lines += block(b, align)
    return lines


def render_table(report: Report | Mapping[str, Any]) -> str:
    """The results table in Markdown."""
    report = Report.coerce(report)
    return "\n".join(table(Table(RESULT_COLUMNS, results_table(report))))


def render_markdown(report: Report | Mapping[str, Any]) -> str:
    """The whole ``report.md``."""
    report = Report.coerce(report)
    ds = report.dataset
    lines = [
        f"# edgekit report ({status_line(report)})",
        "",
        f"Dataset **{ds.name}** ({ds.train_size} train / {ds.val_size or 0} validation / {ds.test_size} test), "
        f"seed {report.seed}, edgekit {report.edgekit_version}.",
        "",
    ]
    if report.warnings:
        lines += [f"**Warning:** {w}" for w in report.warnings] + [""]
    for s in sections(report):
        if s.only in (None, "md"):
            lines += section(s)
    return "\n".join(lines)
