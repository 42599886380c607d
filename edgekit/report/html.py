"""One self-contained HTML page for a run's report: tables, inline SVG plots, no network.

The page is the report's sections (:mod:`edgekit.report.document`) rendered by autoescaped Jinja
templates (``edgekit/report/templates``): every value reaches the page escaped, and the markup of
each kind of block is written once, in ``blocks.html.j2``. A missing value prints as an em dash.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from edgekit.report import content
from edgekit.report.content import HTML_DASH, Block, Column, Section
from edgekit.report.document import sections
from edgekit.report.model import Report
from edgekit.report.page_sections import header

BLOCK_KINDS = (content.Text, content.Bullets, content.Table, content.Figure, content.KeyValues, content.Preformatted,
               content.Tree, content.Strong, content.Code, content.Badge)
"""The content types the templates tell apart (``{% if b is table %}``)."""


def value(v: Any) -> str:
    """A value as the page shows it where no column says how: a dash for nothing, yes/no, floats to 2 decimals."""
    if v is None or v == "":
        return HTML_DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def cell(c: Column, v: Any) -> str:
    """A table cell's text: the column's format (a spec or a function of the value), else :func:`value`."""
    if v is None or v == "" or isinstance(v, bool) or not c.html:
        return value(v)
    out = content.fmt(v, c.html)
    return HTML_DASH if out is None else out


@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    """The templates' environment: autoescaped, with the content types as tests and the cell formats."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("edgekit.report", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    for kind in BLOCK_KINDS:
        env.tests[kind.__name__.lower()] = lambda x, kind=kind: isinstance(x, kind)
    env.tests["sortable"] = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    env.globals.update(cell=cell, value=value)
    return env


def page(title: str, header_blocks: Sequence[Block], parts: Sequence[Section]) -> str:
    """A standalone page (inline CSS and JS, no external resources): a title, blocks under it, the sections."""
    shown = [s for s in parts if s.only in (None, "html")]
    return _templates().get_template("report.html.j2").render(title=title, header=header_blocks, sections=shown)


def render_html(report: Report | Mapping[str, Any], run_dir: Path | None = None) -> str:
    """Render ``report`` (typed, or the report.json dict) as one self-contained HTML page."""
    report = Report.coerce(report)
    ds = report.dataset.name
    folder = report.out or run_dir  # the run's final folder (reports are written before it is renamed into place)
    return page(f"edgekit report — {ds}" if ds else "edgekit report", header(report, folder), sections(report))
