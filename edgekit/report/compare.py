"""What changed between two runs: settings, dataset, environment, and each matched artifact.

Artifacts are matched by (stage, format, precision, name) -- ids differ whenever
anything upstream changed, so they cannot be the key. Benchmark rows are matched
by (target, batch size, threads, emulated).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from typing import Any, Mapping

from edgekit.report.html import DASH, page
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
        return DASH
    if isinstance(v, float) and spec:
        return format(v, spec)
    return str(v)


def _diff_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["no differences", ""]
    out = ["| field | A | B |", "|---|---|---|"]
    out += [f"| {r['key']} | {_cell(r['a'])} | {_cell(r['b'])} |" for r in rows]
    return out + [""]


def _cell(v: Any) -> str:
    return _f(v).replace("|", "\\|").replace("\n", " ")


def render_compare_markdown(diff: Mapping[str, Any]) -> str:
    """The comparison as Markdown: settings, dataset, environment, then one table per matched artifact."""
    lines = ["# edgekit: run A vs run B", "",
             f"- A: {_cell(diff['a'].get('command'))} ({_cell(diff['a'].get('created'))}, status {_cell(diff['a'].get('status'))})",
             f"- B: {_cell(diff['b'].get('command'))} ({_cell(diff['b'].get('created'))}, status {_cell(diff['b'].get('status'))})",
             "- Deltas are B minus A.", ""]
    for title, key in (("Settings", "settings"), ("Dataset", "dataset"), ("Environment", "environment")):
        lines += [f"## {title}", "", *_diff_table(diff[key])]
    lines += ["## Artifacts", "",
              "| artifact | stage | precision | acc A % | acc B % | Δ acc pp | KB A | KB B | Δ KB |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for m in diff["artifacts"]:
        kb = [m["bytes_a"] / 1024 if m["bytes_a"] else None, m["bytes_b"] / 1024 if m["bytes_b"] else None,
              m["delta_bytes"] / 1024 if m["delta_bytes"] is not None else None]
        acc = [m["accuracy_a"] * 100 if m["accuracy_a"] is not None else None,
               m["accuracy_b"] * 100 if m["accuracy_b"] is not None else None]
        lines.append(f"| {m['label']} | {m['stage']} | {m['precision']} | {_f(acc[0], '.2f')} | {_f(acc[1], '.2f')} "
                     f"| {_f(m['delta_accuracy_pp'], '+.2f')} | {_f(kb[0], '.1f')} | {_f(kb[1], '.1f')} | {_f(kb[2], '+.1f')} |")
    lines.append("")
    lat = [(m, r) for m in diff["artifacts"] for r in m["latency"]]
    if lat:
        lines += ["## p50 latency", "", "| artifact | target | batch | threads | p50 A ms | p50 B ms | Δ ms | B/A |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for m, r in lat:
            target = f"{r['target']} (emulated)" if r["emulated"] else str(r["target"])
            lines.append(f"| {m['label']} | {target} | {_f(r['batch_size'])} | {_f(r['threads'])} | {_f(r['p50_a'], '.4f')} "
                         f"| {_f(r['p50_b'], '.4f')} | {_f(r['delta_ms'], '+.4f')} | {_f(r['ratio'], '.2f')} |")
        lines.append("")
    cfg = [(m, c) for m in diff["artifacts"] for c in m["config"]]
    if cfg:
        lines += ["## Stage config changes", "", "| artifact | field | A | B |", "|---|---|---|---|"]
        lines += [f"| {m['label']} | {c['key']} | {_cell(c['a'])} | {_cell(c['b'])} |" for m, c in cfg]
        lines.append("")
    for side in ("a", "b"):
        only = diff[f"only_in_{side}"]
        lines += [f"## Only in run {side.upper()}", "", *([f"- {x}" for x in only] or ["none"]), ""]
    for side in ("a", "b"):
        if diff[f"problems_{side}"]:
            lines += [f"## Problems in run {side.upper()}", "", *[f"- {p}" for p in diff[f"problems_{side}"]], ""]
    return "\n".join(lines).rstrip() + "\n"


def _markdown_to_html(text: str) -> str:
    """HTML for the Markdown subset :func:`render_compare_markdown` writes (headings, bullets, tables)."""
    out: list[str] = []
    table: list[list[str]] = []

    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        return [html.escape(c.strip().replace("\\|", "|")) for c in parts]

    def flush() -> None:
        if table:
            head, rows = table[0], table[2:]
            out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                       + "</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(cells(line))
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def render_compare_html(diff: Mapping[str, Any]) -> str:
    """The comparison as a standalone HTML page (same content as the Markdown)."""
    return page("edgekit: run A vs run B", _markdown_to_html(render_compare_markdown(diff)))
