"""What a report section says, as data: the one input of both renderers (report.md and report.html).

A section function (:mod:`edgekit.report.document`) returns a :class:`Section`: a title and blocks
(text, lists, tables, figures). :mod:`edgekit.report.markdown` and :mod:`edgekit.report.html` only
turn blocks into syntax. Where the two pages say a thing differently (a figure only the page can
show, a shorter note in Markdown, a table cell's precision), the block or column carries both forms,
so each section's content is still decided in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MD_DASH = "–"
"""A missing value in report.md."""
HTML_DASH = "—"
"""A missing value in report.html."""


@dataclass(frozen=True)
class Strong:
    """Bold text inside a paragraph (``**x**`` in Markdown, ``<b>`` on the page)."""

    text: str


@dataclass(frozen=True)
class Code:
    """A path or command inside a paragraph (plain in Markdown, ``<code>`` on the page)."""

    text: str


@dataclass(frozen=True)
class Badge:
    """A label inside a paragraph (plain in Markdown, a coloured badge on the page)."""

    text: str
    cls: str = ""


Inline = str | Strong | Code | Badge


@dataclass(frozen=True)
class Text:
    """A paragraph. ``cls`` styles it on the page (note, warn, bad); ``only`` keeps it to one output (md | html)."""

    parts: tuple[Inline, ...]
    cls: str = ""
    only: str | None = None

    @classmethod
    def of(cls, *parts: Inline, style: str = "", only: str | None = None) -> Text:
        return cls(tuple(parts), style, only)


@dataclass(frozen=True)
class Bullets:
    """A list; ``classes`` styles each item on the page; ``title`` heads it (an h3, or ``Title:`` in Markdown)."""

    items: tuple[str, ...]
    cls: str = ""
    classes: tuple[str, ...] = ()
    title: str = ""
    only: str | None = None


@dataclass(frozen=True)
class Column:
    """One table column: its header, and how a row shows in it.

    ``value(row)`` is the cell's value (numbers sort as numbers on the page); ``html``/``md`` turn it into
    text for each page (a format spec, or a function of the value; None: a dash). With ``md_row``, ``md`` is a
    function of the whole row whose text report.md shows as it is (where report.md adds a mark, such as
    **(chosen)**). ``md_header`` is the Markdown header where it differs; ``md=False`` leaves the column out
    of report.md.
    """

    header: str
    value: Callable[[Any], Any]
    html: str | Callable[[Any], str | None] = ""
    md: str | Callable[[Any], str | None] | bool = ""
    md_header: str | None = None
    numeric: bool = False
    wrap: bool = False  # long text that wraps on the page (every other cell stays on one line)
    md_row: bool = False  # ``md`` is a function of the whole row, not of the value


@dataclass(frozen=True)
class Table:
    """A table of ``rows`` (any objects the columns read). ``row_class(row)`` styles a row on the page;
    ``cls`` is its class there (``sortable``: a click on a header sorts it)."""

    columns: tuple[Column, ...]
    rows: Sequence[Any]
    row_class: Callable[[Any], str] | None = None
    cls: str = "sortable"
    only: str | None = None


@dataclass(frozen=True)
class Figure:
    """An inline SVG plot (the page only), drawn when the page is rendered (``draw()`` gives its data URI);
    ``box``/``heading``/``badge`` frame it in a plot box."""

    draw: Callable[[], str]
    alt: str
    box: str = ""
    heading: str = ""
    badge: str = ""
    only: str | None = "html"


@dataclass(frozen=True)
class KeyValues:
    """A two-column table of names and values (the page only)."""

    items: tuple[tuple[str, Any], ...]
    only: str | None = "html"


@dataclass(frozen=True)
class Preformatted:
    """Text shown as it is (a tool's output)."""

    text: str
    only: str | None = None


@dataclass(frozen=True)
class Node:
    """One entry of a tree: text parts (code, bold, muted, and tags) and its children."""

    code: str
    name: str
    muted: str
    tags: tuple[tuple[str, str], ...] = ()  # (css class, text)
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Tree:
    """A nested list (the lineage; the page only)."""

    roots: tuple[Node, ...]
    empty: str = ""
    only: str | None = "html"


Block = Text | Bullets | Table | Figure | KeyValues | Preformatted | Tree


@dataclass(frozen=True)
class Section:
    """A titled part of a report. ``id`` anchors it on the page, ``cls`` frames it there; ``md_title`` is its
    Markdown heading where it differs (``""``: the section is not in report.md), ``only`` keeps it to one page."""

    id: str
    title: str
    blocks: tuple[Block, ...] = ()
    cls: str = ""
    md_title: str | None = None
    only: str | None = None

    def blocks_for(self, output: str) -> list[Block]:
        return [b for b in self.blocks if b.only in (None, output)]


def fmt(v: Any, spec: str | Callable[[Any], str | None]) -> str | None:
    """``v`` as text by a format spec or a function (None stays None, to be shown as a dash)."""
    if v is None or v == "":
        return None
    if callable(spec):
        return spec(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if spec else str(v)
