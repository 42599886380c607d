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

from edgekit.report.html import DASH, artifact_label, page

SETTINGS_KEYS: tuple[str, ...] = ("edgekit_version", "command", "seed", "config", "recipe", "status")
"""Top-level report fields compared as run settings (missing ones are skipped)."""


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


def _keyed_artifacts(report: Mapping[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Artifacts keyed by (stage, format, precision, name, n) where n counts repeats of the same four."""
    seen: Counter[tuple[Any, ...]] = Counter()
    out = {}
    for a in report.get("artifacts") or []:
        if not isinstance(a, dict):
            continue
        base = (a.get("stage"), a.get("format"), a.get("precision"), a.get("name") or "")
        out[(*base, seen[base])] = a
        seen[base] += 1
    return out


def _p50_by_cell(report: Mapping[str, Any], artifact_id: Any) -> dict[tuple[Any, ...], float | None]:
    out: dict[tuple[Any, ...], float | None] = {}
    for b in report.get("benchmarks") or []:
        if isinstance(b, dict) and b.get("artifact_id") == artifact_id:
            key = (b.get("target"), b.get("batch_size"), b.get("threads"), bool(b.get("emulated")))
            p50 = (b.get("latency_ms") or {}).get("p50") if b.get("status") == "ok" else None
            out[key] = float(p50) if isinstance(p50, (int, float)) else None
    return out


def _delta(x: Any, y: Any, scale: float = 1.0) -> float | None:
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return (y - x) * scale
    return None


def _ratio(x: Any, y: Any) -> float | None:
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x:
        return y / x
    return None


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Differences from run ``a`` to run ``b`` (deltas are b minus a) as a JSON-ready dict."""
    ka, kb = _keyed_artifacts(a), _keyed_artifacts(b)
    matched = []
    for key in [k for k in ka if k in kb]:
        x, y = ka[key], kb[key]
        lat_a, lat_b = _p50_by_cell(a, x.get("id")), _p50_by_cell(b, y.get("id"))
        latency = []
        for cell in sorted(set(lat_a) | set(lat_b), key=lambda c: tuple(str(v) for v in c)):
            pa, pb = lat_a.get(cell), lat_b.get(cell)
            latency.append({"target": cell[0], "batch_size": cell[1], "threads": cell[2], "emulated": cell[3],
                            "p50_a": pa, "p50_b": pb, "delta_ms": _delta(pa, pb), "ratio": _ratio(pa, pb),
                            "only_in": "a" if cell not in lat_b else "b" if cell not in lat_a else None})
        matched.append({
            "stage": key[0], "format": key[1], "precision": key[2], "name": key[3], "label": artifact_label(y),
            "id_a": x.get("id"), "id_b": y.get("id"),
            "accuracy_a": x.get("accuracy"), "accuracy_b": y.get("accuracy"),
            "delta_accuracy_pp": _delta(x.get("accuracy"), y.get("accuracy"), 100.0),
            "bytes_a": x.get("bytes"), "bytes_b": y.get("bytes"), "delta_bytes": _delta(x.get("bytes"), y.get("bytes")),
            "config": _differences(x.get("config"), y.get("config")),
            "latency": latency,
        })
    return {
        "a": {k: a.get(k) for k in ("created", "command", "status")},
        "b": {k: b.get(k) for k in ("created", "command", "status")},
        "settings": _differences({k: a.get(k) for k in SETTINGS_KEYS if k in a},
                                 {k: b.get(k) for k in SETTINGS_KEYS if k in b}),
        "dataset": _differences(a.get("dataset"), b.get("dataset")),
        "environment": _differences(a.get("environment"), b.get("environment")),
        "artifacts": matched,
        "only_in_a": [artifact_label(ka[k]) + f" ({ka[k].get('stage')})" for k in ka if k not in kb],
        "only_in_b": [artifact_label(kb[k]) + f" ({kb[k].get('stage')})" for k in kb if k not in ka],
        "problems_a": list(a.get("problems") or []),
        "problems_b": list(b.get("problems") or []),
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
