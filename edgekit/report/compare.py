"""What changed between two runs: settings, dataset, environment, and each matched artifact.

Artifacts are matched by (stage, format, precision, name) -- ids differ whenever
anything upstream changed, so they cannot be the key. Benchmark rows are matched
by (target, batch size, threads, emulated).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from edgekit.report import markdown
from edgekit.report.content import HTML_DASH, Bullets, Column, Section, Table, Text
from edgekit.report.html import page
from edgekit.report.model import ArtifactRecord, Report


def _settings(r: Report) -> dict[str, Any]:
    """The run settings compared (fields the report does not carry are left out)."""
    values = {"edgekit_version": r.edgekit_version, "command": r.command, "seed": r.seed,
              "config": dict(r.config) if r.config is not None else None, "status": r.status}
    return {k: v for k, v in values.items() if v is not None}


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        return {prefix: json.dumps(obj, sort_keys=True)}
    return {prefix: obj}


def _differences(a: Any, b: Any, prefix: str = "") -> list[dict[str, Any]]:
    fa, fb = _flatten(a or {}, prefix), _flatten(b or {}, prefix)
    return [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _keyed_artifacts(report: Report) -> dict[tuple[str, str, str, str, int], ArtifactRecord]:
    """Artifacts keyed by (stage, format, precision, name, n) where n counts repeats of the same four."""
    seen: Counter[tuple[str, str, str, str]] = Counter()
    out = {}
    for a in report.artifacts:
        base = (a.stage, a.format, a.precision, a.name)
        out[(*base, seen[base])] = a
        seen[base] += 1
    return out


Cell = tuple[str, int | None, int | None, bool]


def _p50_by_cell(report: Report, artifact_id: str) -> dict[Cell, float | None]:
    return {(b.target, b.batch_size, b.threads, b.emulated): b.p50 if b.ok else None
            for b in report.rows_for(artifact_id)}


def _delta(x: float | None, y: float | None, scale: float = 1.0) -> float | None:
    return (y - x) * scale if x is not None and y is not None else None


def _ratio(x: float | None, y: float | None) -> float | None:
    return y / x if x and y is not None else None


def compare_reports(a: Report | Mapping[str, Any], b: Report | Mapping[str, Any]) -> dict[str, Any]:
    """Differences from run ``a`` to run ``b`` (deltas are b minus a) as a JSON-ready dict."""
    a, b = Report.coerce(a), Report.coerce(b)
    ka, kb = _keyed_artifacts(a), _keyed_artifacts(b)
    matched = []
    for key in [k for k in ka if k in kb]:
        x, y = ka[key], kb[key]
        lat_a, lat_b = _p50_by_cell(a, x.id), _p50_by_cell(b, y.id)
        latency = []
        for cell in sorted(set(lat_a) | set(lat_b), key=lambda c: tuple(str(v) for v in c)):
            pa, pb = lat_a.get(cell), lat_b.get(cell)
            latency.append({"target": cell[0], "batch_size": cell[1], "threads": cell[2], "emulated": cell[3],
                            "p50_a": pa, "p50_b": pb, "delta_ms": _delta(pa, pb), "ratio": _ratio(pa, pb),
                            "only_in": "a" if cell not in lat_b else "b" if cell not in lat_a else None})
        matched.append({
            "stage": key[0], "format": key[1], "precision": key[2], "name": key[3], "label": y.label,
            "id_a": x.id, "id_b": y.id, "accuracy_a": x.accuracy, "accuracy_b": y.accuracy,
            "delta_accuracy_pp": _delta(x.accuracy, y.accuracy, 100.0),
            "bytes_a": x.bytes, "bytes_b": y.bytes,
            "delta_bytes": _delta(x.bytes, y.bytes) if x.bytes is not None and y.bytes is not None else None,
            "config": _differences(dict(x.config), dict(y.config)),
            "latency": latency,
        })
    return {
        "a": {"created": a.created, "command": a.command, "status": a.status},
        "b": {"created": b.created, "command": b.command, "status": b.status},
        "settings": _differences(_settings(a), _settings(b)),
        "dataset": _differences(a.dataset.to_dict(), b.dataset.to_dict()),
        "environment": _differences(a.environment.to_dict(), b.environment.to_dict()),
        "artifacts": matched,
        "only_in_a": [f"{ka[k].label} ({ka[k].stage})" for k in ka if k not in kb],
        "only_in_b": [f"{kb[k].label} ({kb[k].stage})" for k in kb if k not in ka],
        "problems_a": list(a.problems),
        "problems_b": list(b.problems),
    }


def _f(v: Any, spec: str = "") -> str:
    if v is None:
        return HTML_DASH
    if isinstance(v, float) and spec:
        return format(v, spec)
    return str(v)


def _md_cell(v: Any) -> str:
    """A value in a Markdown table cell: pipes escaped, one line."""
    return _f(v).replace("|", "\\|").replace("\n", " ")


def _col(header: str, get: Callable[[Any], Any], spec: str = "", numeric: bool = False, escape: bool = False) -> Column:
    """A column that shows ``get(row)`` alike on both pages (a dash for none; ``escape``: free text)."""
    return Column(header, get, html=lambda v: _f(v, spec), numeric=numeric, md_row=True,
                  md=(lambda r: _md_cell(get(r))) if escape else (lambda r: _f(get(r), spec)))


DIFF_COLUMNS = (_col("field", lambda r: r["key"], escape=True), _col("A", lambda r: r["a"], escape=True),
                _col("B", lambda r: r["b"], escape=True))


def _diff(title: str, rows: list[dict[str, Any]]) -> Section:
    return Section(title.lower(), title, (Table(DIFF_COLUMNS, rows),) if rows else (Text.of("no differences"),))


def _kb(n: float | None) -> float | None:
    return n / 1024 if n else None


ARTIFACT_COLUMNS = (
    _col("artifact", lambda m: m["label"]), _col("stage", lambda m: m["stage"]),
    _col("precision", lambda m: m["precision"]),
    _col("acc A %", lambda m: _pct(m["accuracy_a"]), ".2f", True),
    _col("acc B %", lambda m: _pct(m["accuracy_b"]), ".2f", True),
    _col("Δ acc pp", lambda m: m["delta_accuracy_pp"], "+.2f", True),
    _col("KB A", lambda m: _kb(m["bytes_a"]), ".1f", True), _col("KB B", lambda m: _kb(m["bytes_b"]), ".1f", True),
    _col("Δ KB", lambda m: m["delta_bytes"] / 1024 if m["delta_bytes"] is not None else None, "+.1f", True))
LATENCY_COLUMNS = (
    _col("artifact", lambda mr: mr[0]["label"]),
    _col("target", lambda mr: f"{mr[1]['target']} (emulated)" if mr[1]["emulated"] else str(mr[1]["target"])),
    _col("batch", lambda mr: mr[1]["batch_size"], numeric=True),
    _col("threads", lambda mr: mr[1]["threads"], numeric=True),
    _col("p50 A ms", lambda mr: mr[1]["p50_a"], ".4f", True), _col("p50 B ms", lambda mr: mr[1]["p50_b"], ".4f", True),
    _col("Δ ms", lambda mr: mr[1]["delta_ms"], "+.4f", True), _col("B/A", lambda mr: mr[1]["ratio"], ".2f", True))
CONFIG_COLUMNS = (_col("artifact", lambda mc: mc[0]["label"]), _col("field", lambda mc: mc[1]["key"]),
                  _col("A", lambda mc: mc[1]["a"], escape=True), _col("B", lambda mc: mc[1]["b"], escape=True))


def _pct(x: float | None) -> float | None:
    return x * 100 if x is not None else None


def compare_document(diff: Mapping[str, Any]) -> tuple[Bullets, list[Section]]:
    """The comparison's runs line and sections, for both pages: settings, dataset, environment, the matched
    artifacts, their latency and stage config changes, what only one run has, and each run's problems."""
    def run(side: str) -> str:
        d = diff[side]
        return (f"{side.upper()}: {_md_cell(d.get('command'))} ({_md_cell(d.get('created'))}, "
                f"status {_md_cell(d.get('status'))})")

    runs = Bullets((run("a"), run("b"), "Deltas are B minus A."))
    out = [_diff(title, diff[key]) for title, key in (("Settings", "settings"), ("Dataset", "dataset"),
                                                      ("Environment", "environment"))]
    out.append(Section("artifacts", "Artifacts", (Table(ARTIFACT_COLUMNS, diff["artifacts"]),)))
    lat = [(m, r) for m in diff["artifacts"] for r in m["latency"]]
    if lat:
        out.append(Section("latency", "p50 latency", (Table(LATENCY_COLUMNS, lat),)))
    cfg = [(m, c) for m in diff["artifacts"] for c in m["config"]]
    if cfg:
        out.append(Section("config", "Stage config changes", (Table(CONFIG_COLUMNS, cfg),)))
    for side in ("a", "b"):
        only = diff[f"only_in_{side}"]
        out.append(Section(f"only-{side}", f"Only in run {side.upper()}",
                           (Bullets(tuple(only)),) if only else (Text.of("none"),)))
    out += [Section(f"problems-{side}", f"Problems in run {side.upper()}", (Bullets(tuple(diff[f"problems_{side}"])),))
            for side in ("a", "b") if diff[f"problems_{side}"]]
    return runs, out


TITLE = "edgekit: run A vs run B"


def render_compare_markdown(diff: Mapping[str, Any]) -> str:
    """The comparison as Markdown: settings, dataset, environment, then one table per matched artifact."""
    runs, parts = compare_document(diff)
    lines = [f"# {TITLE}", "", *markdown.block(runs)]
    for s in parts:
        lines += markdown.section(s, align=True)
    return "\n".join(lines).rstrip() + "\n"


def render_compare_html(diff: Mapping[str, Any]) -> str:
    """The comparison as a standalone HTML page (the same sections as the Markdown)."""
    runs, parts = compare_document(diff)
    return page(TITLE, (runs,), parts)
