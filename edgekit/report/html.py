"""One self-contained HTML page for a run's report.json: tables, inline SVG plots, no network.

Tolerant of partial reports (no benchmarks, failed rows, missing audit keys):
a missing value prints as an em dash, a missing section is left out.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from edgekit.report import plots

DASH = "—"
Row = Mapping[str, Any]

# Results table columns: (key in the row dict, header, numeric?) -- the one column table.
RESULT_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("name", "artifact", False), ("format", "format", False), ("precision", "precision", False),
    ("size_kb", "size KB", True), ("x_smaller", "× smaller", True), ("accuracy_pct", "accuracy %", True),
    ("delta_pp", "Δ pp vs baseline", True), ("p50", "p50 ms", True), ("p90", "p90 ms", True),
    ("throughput", "best throughput /s", True), ("provider", "provider", False), ("target", "target", False),
    ("emulated", "emulated", False),
)
BENCH_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("name", "artifact", False), ("precision", "precision", False), ("target", "target", False),
    ("emulated", "emulated", False), ("batch", "batch", True), ("threads", "threads", True),
    ("status", "status", False), ("reason", "reason", False), ("accuracy_pct", "accuracy %", True),
    ("target_agree_pct", "agree vs ref. target %", True), ("reference_target", "ref. target", False),
    ("agreement_pct", "agree vs parent %", True), ("p50", "p50 ms", True), ("p90", "p90 ms", True),
    ("p99", "p99 ms", True), ("std", "std ms", True), ("throughput", "throughput /s", True),
    ("provider", "provider", False), ("runtime", "runtime", False), ("format", "format", False),
)
WRAP_KEYS = frozenset({"reason"})
"""Table columns whose long text wraps; every other cell stays on one line (names, targets, numbers)."""
LAYER_KEYS: dict[str, tuple[str, ...]] = {  # column -> accepted audit keys, first found wins
    "name": ("name", "layer"), "op": ("op", "type", "op_type"),
    "dtype": ("weight_dtype", "dtype", "weights_dtype", "precision"),
    "params": ("params", "parameters", "num_params"),
    "zeros": ("zeros_fraction", "zero_fraction", "sparsity"), "macs": ("macs", "MACs", "flops"),
}


# --------------------------------------------------------------------------- data
def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _first(d: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def artifact_label(a: Mapping[str, Any]) -> str:
    """A readable, unique-enough label: ``name.format`` (falls back to stage or id)."""
    return f"{a.get('name') or a.get('stage') or a.get('id', '?')}.{a.get('format', '?')}"


def _artifacts(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a for a in report.get("artifacts") or [] if isinstance(a, dict)]


def _benchmarks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [b for b in report.get("benchmarks") or [] if isinstance(b, dict)]


def reference_bytes(report: Mapping[str, Any], artifact: Mapping[str, Any]) -> float | None:
    """Size of the fp32 reference of the artifact's format (report.md's definition), None if unknown."""
    from edgekit.report.markdown import reference_ids

    try:
        ref_id = reference_ids(dict(report)).get(str(artifact.get("format")))
    except (KeyError, TypeError, AttributeError):  # a partial report: no ratio rather than no page
        return None
    ref = next((a for a in _artifacts(report) if a.get("id") == ref_id), None)
    return _num(ref.get("bytes")) if ref else None


def _best_throughput(report: Mapping[str, Any], artifact_id: Any, target: Any) -> float | None:
    vals = [_num(b.get("throughput_per_s")) for b in _benchmarks(report)
            if b.get("artifact_id") == artifact_id and b.get("target") == target and b.get("status") == "ok"]
    return max((v for v in vals if v is not None), default=None)


def results_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per artifact and target at batch 1 / 1 thread (artifacts never benchmarked get one row)."""
    arts = _artifacts(report)
    by_id = {a.get("id"): a for a in arts}
    base = by_id.get(report.get("baseline_id")) or {}
    base_acc = _num(base.get("accuracy"))
    single: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in _benchmarks(report):
        if b.get("batch_size") == 1 and b.get("threads") == 1:
            single[b.get("artifact_id")].append(b)
    rows = []
    for a in arts:
        size, ref = _num(a.get("bytes")), reference_bytes(report, a)
        common = {
            "id": a.get("id"), "name": artifact_label(a), "format": a.get("format"), "precision": a.get("precision"),
            "size_kb": size / 1024 if size is not None else None,
            "x_smaller": ref / size if size and ref else None,
            "chosen": a.get("id") == report.get("chosen_id"), "baseline": a.get("id") == report.get("baseline_id"),
        }
        for b in single.get(a.get("id"), []) or [None]:
            cells = _bench_cells(b)
            if b is not None:
                cells["throughput"] = _best_throughput(report, a.get("id"), b.get("target"))
            # accuracy as measured on that target (int8 kernels differ by target), else the artifact's own;
            # a failed/skipped row gets none (no CPU-measured figure under a target that did not run)
            acc = _num((b or {}).get("accuracy"))
            if acc is None and (b is None or b.get("status") == "ok"):
                acc = _num(a.get("accuracy"))
            common.update(accuracy_pct=acc * 100 if acc is not None else None,
                          delta_pp=(acc - base_acc) * 100 if acc is not None and base_acc is not None else None)
            rows.append({**cells, **common})
    return rows


def _bench_cells(b: Mapping[str, Any] | None) -> dict[str, Any]:
    if b is None:
        return dict.fromkeys(("target", "emulated", "runtime", "provider", "batch", "threads", "status", "reason", "p50",
                              "p90", "p99", "std", "throughput", "accuracy_pct", "agreement_pct", "target_agree_pct",
                              "reference_target"))
    lat = b.get("latency_ms") or {}
    acc, agree = _num(b.get("accuracy")), _num(b.get("top1_agreement"))
    ref_target = b.get("reference_target") if b.get("reference_target") != b.get("target") else None
    target_agree = _num(b.get("target_agreement")) if ref_target else None  # vs itself is trivially 100 %
    return {
        "target": b.get("target"), "emulated": bool(b.get("emulated")), "runtime": b.get("runtime"),
        "provider": b.get("provider"), "batch": b.get("batch_size"), "threads": b.get("threads"),
        "status": b.get("status"), "reason": b.get("reason") or "",
        "p50": _num(lat.get("p50")), "p90": _num(lat.get("p90")), "p99": _num(lat.get("p99")),
        "std": _num(lat.get("std")), "throughput": _num(b.get("throughput_per_s")),
        "accuracy_pct": acc * 100 if acc is not None else None,
        "agreement_pct": agree * 100 if agree is not None else None,
        "target_agree_pct": target_agree * 100 if target_agree is not None else None, "reference_target": ref_target,
    }


def bench_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every benchmark row, joined with its artifact's name/format/precision."""
    by_id = {a.get("id"): a for a in _artifacts(report)}
    out = []
    for b in _benchmarks(report):
        a = by_id.get(b.get("artifact_id"), {"id": b.get("artifact_id")})
        out.append({"name": artifact_label(a), "format": a.get("format"), "precision": a.get("precision"),
                    **_bench_cells(b)})
    return out


# --------------------------------------------------------------------------- formatting
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(key: str, v: Any) -> str:
    if v is None or v == "":
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if key == "delta_pp":
            return f"{v:+.2f}"
        if key == "val_drop_pp":
            return f"{v:+.2f}"
        if key in ("x_smaller",):
            return f"{v:.2f}×"
        if key in ("p50", "p90", "p99", "std", "latency_ms"):
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        if key in ("size_kb", "throughput"):
            return f"{v:,.1f}"
        return f"{v:.2f}"
    return str(v)


def _table(columns: Sequence[tuple[str, str, bool]], rows: Sequence[Row], cls: str = "sortable",
           row_class: Any = None) -> str:
    head = "".join(f'<th data-num="{int(num)}">{_e(h)}</th>' for _, h, num in columns)
    body = []
    for r in rows:
        cells = []
        for key, _, num in columns:
            v = r.get(key)
            sort = f' data-v="{v}"' if num and isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            wrap = ' class="wrap"' if key in WRAP_KEYS else ""
            cells.append(f"<td{sort}{wrap}>{_e(_fmt(key, v))}</td>")
        rc = row_class(r) if row_class else ""
        body.append(f'<tr class="{_e(rc)}">' + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _kv_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt('', v) if not isinstance(v, str) else v or DASH)}</td></tr>"
                   for k, v in items)
    return f'<table class="kv">{rows}</table>'


def _img(uri: str, alt: str) -> str:
    return f'<figure><img class="plot" src="{_e(uri)}" alt="{_e(alt)}"></figure>'


def _row_class(r: Row) -> str:
    classes = []
    if r.get("emulated"):
        classes.append("emulated")
    if r.get("status") in ("failed", "skipped"):
        classes.append(str(r["status"]))
    if r.get("chosen"):
        classes.append("chosen")
    return " ".join(classes)


# --------------------------------------------------------------------------- sections
def _problems_section(report: Mapping[str, Any]) -> str:
    items = [str(p) for p in report.get("problems") or []]
    for a in _artifacts(report):
        v = a.get("verification") or {}
        if v.get("status") not in (None, "ok"):
            msg = f"verification {v.get('status')}: {artifact_label(a)} ({a.get('id')}) {v.get('reason') or ''}".strip()
            if not any(str(a.get("id")) in p and "agreement" in p for p in items):
                items.append(msg)
    failed = [b for b in _benchmarks(report) if b.get("status") == "failed"]
    status = report.get("status", "ok")
    if not items and not failed and status == "ok":
        return '<section id="problems" class="ok"><h2>Status: ok</h2><p>No problems recorded.</p></section>'
    lis = "".join(f"<li>{_e(p)}</li>" for p in items)
    extra = f"<p>{len(failed)} benchmark row(s) failed — see the full benchmark table.</p>" if failed else ""
    return (f'<section id="problems" class="bad"><h2>Status: {_e(status)} — {len(items)} problem(s)</h2>'
            f"<ul>{lis}</ul>{extra}</section>")


def _latency_plots(report: Mapping[str, Any]) -> str:
    by_id = {a.get("id"): a for a in _artifacts(report)}
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for b in _benchmarks(report):
        if b.get("status") == "ok" and _num((b.get("latency_ms") or {}).get("p50")) is not None:
            groups[(str(b.get("target")), bool(b.get("emulated")))].append(b)
    if not groups:
        return "<p>No successful benchmark rows: nothing to plot.</p>"
    out = []
    for (target, emulated), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        batch, threads = min((r.get("batch_size") or 0, r.get("threads") or 0) for r in rows)
        if any(r.get("batch_size") == 1 and r.get("threads") == 1 for r in rows):
            batch, threads = 1, 1
        pts = []
        for r in rows:
            if (r.get("batch_size"), r.get("threads")) != (batch, threads):
                continue
            a = by_id.get(r.get("artifact_id"), {})
            acc = _num(r.get("accuracy")) if _num(r.get("accuracy")) is not None else _num(a.get("accuracy"))
            if acc is None:
                continue
            pts.append(plots.Point(artifact_label(a) if a else str(r.get("artifact_id")),
                                   float(r["latency_ms"]["p50"]), acc, str(a.get("precision", "")), str(a.get("format", ""))))
        if not pts:
            continue
        kind = "EMULATED (relative only, not device speed)" if emulated else "native"
        title = f"{target} — {kind} — batch {batch}, {threads} thread(s)"
        xlabel = "p50 latency under emulation (ms, relative only)" if emulated else "p50 latency (ms)"
        cls = "plotbox emulated" if emulated else "plotbox"
        badge = '<span class="badge emu">EMULATED</span> ' if emulated else ""
        out.append(f'<div class="{cls}"><h3>{badge}{_e(target)}</h3>'
                   + _img(plots.accuracy_latency(pts, title, xlabel), f"accuracy vs latency on {target}") + "</div>")
    return "".join(out)


def _size_section(report: Mapping[str, Any]) -> str:
    arts = [a for a in _artifacts(report) if _num(a.get("bytes")) is not None]
    if not arts:
        return "<p>No artifact sizes recorded.</p>"
    uri = plots.sizes([artifact_label(a) for a in arts], [_num(a.get("bytes")) for a in arts],
                      [_num(a.get("gzip_bytes")) for a in arts])
    return _img(uri, "raw and gzipped size per artifact")


def short_layer_name(name: Any, width: int = 40) -> str:
    """A readable layer name: TFLite's fused 'model/conv1/Relu;model/conv1/BiasAdd;...' becomes 'conv1'."""
    first = str(name).split(";")[0]
    parts = first.split("/")
    short = "/".join(parts[1:-1]) if len(parts) >= 3 else first
    return short if len(short) <= width else short[: width - 1] + "…"


def _weight_share(audit: Mapping[str, Any]) -> dict[str, Any]:
    """dtype -> share of weights, from audit['params']['by_dtype'] (edgekit.audit) or a flat 'weight_share'."""
    params = audit.get("params")
    raw = params.get("by_dtype") if isinstance(params, dict) else audit.get("weight_share")
    if not isinstance(raw, dict):
        raw = audit.get("weight_share") if isinstance(audit.get("weight_share"), dict) else {}
    return {str(k): v.get("share") if isinstance(v, dict) else v for k, v in raw.items()}


def _layers_section(report: Mapping[str, Any]) -> str:
    by_id = {a.get("id"): a for a in _artifacts(report)}
    chosen = by_id.get(report.get("chosen_id"))
    note = "Chosen artifact"
    if chosen is None:  # no choice recorded: show the smallest audited artifact, and say so
        audited = [a for a in by_id.values() if isinstance(a.get("audit"), dict) and _num(a.get("bytes"))]
        if not audited:
            return "<p>No chosen artifact and no audited artifact recorded.</p>"
        chosen, note = min(audited, key=lambda a: a["bytes"]), "No chosen artifact recorded; smallest audited artifact"
    audit = chosen.get("audit") if isinstance(chosen.get("audit"), dict) else None
    sparsity = _num(chosen.get("sparsity"))
    sparsity = sparsity if sparsity is not None else _num((audit or {}).get("sparsity"))
    sparsity_txt = f"{sparsity * 100:.1f} % of weights are zero" if sparsity is not None else f"sparsity {DASH}"
    head = f"<p>{note}: <b>{_e(artifact_label(chosen))}</b> ({_e(chosen.get('id'))}), " \
           f"precision {_e(chosen.get('precision') or DASH)}, {_e(sparsity_txt)}.</p>"
    if not audit:
        return head + "<p>No per-layer audit recorded for this artifact.</p>"
    layers = [layer for layer in audit.get("layers") or [] if isinstance(layer, dict)]
    rows = [{col: _first(layer, keys) for col, keys in LAYER_KEYS.items()} for layer in layers]
    for r in rows:
        r["name"] = short_layer_name(r["name"]) if r["name"] is not None else None
        z = _num(r["zeros"])
        r["zeros"] = z * 100 if z is not None else None
    share = _weight_share(audit)
    share_txt = ", ".join(f"{_e(k)}: {_num(v) * 100:.1f}%" for k, v in share.items() if _num(v) is not None) \
        if isinstance(share, dict) else ""
    out = head + (f"<p>Weight share by dtype: {share_txt}</p>" if share_txt else "")
    cols = (("name", "layer", False), ("op", "op", False), ("dtype", "weight dtype", False),
            ("params", "params", True), ("zeros", "zero weights %", True), ("macs", "MACs", True))
    out += _table(cols, rows)
    plotted = [r for r in rows if r["zeros"] is not None]
    if plotted:
        out += _img(plots.layer_sparsity([str(r["name"]) for r in plotted], [r["zeros"] / 100 for r in plotted],
                                         [str(r["dtype"] or "?") for r in plotted]), "per-layer sparsity")
    return out


def _lineage_section(report: Mapping[str, Any]) -> str:
    arts = _artifacts(report)
    ids = {a.get("id") for a in arts}
    children: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for a in arts:
        children[a.get("parent_id") if a.get("parent_id") in ids else None].append(a)

    def node(a: Mapping[str, Any], seen: frozenset[Any]) -> str:
        v = a.get("verification") or {}
        vs = v.get("status")
        ver = f' <span class="ver {_e(vs)}">verified: {_e(vs)}</span>' if vs else ""
        kids = "" if a.get("id") in seen else "".join(node(c, seen | {a.get("id")}) for c in children.get(a.get("id"), []))
        return (f"<li><code>{_e(a.get('stage') or DASH)}</code> → <b>{_e(artifact_label(a))}</b> "
                f"<span class=\"muted\">{_e(a.get('precision') or '')} · {_e(a.get('id'))} · {_e(a.get('path') or '')}</span>"
                f"{ver}{f'<ul>{kids}</ul>' if kids else ''}</li>")

    roots = children.get(None, [])
    return f'<ul class="tree">{"".join(node(a, frozenset()) for a in roots)}</ul>' if roots else "<p>No artifacts.</p>"


SEARCH_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("label", "candidate", False), ("format", "format", False), ("precision", "precision", False),
    ("size_kb", "size KB", True), ("val_pct", "val accuracy %", True), ("val_drop_pp", "val drop pp", True),
    ("latency_ms", "p50 ms", True), ("front", "Pareto front", False), ("budget", "within budget", False),
)


def _search_section(report: Mapping[str, Any]) -> str:
    """The accuracy-budget search (``edgekit.search.choose``'s section of report.json): plot, summary, candidates."""
    search = report.get("search")
    if not isinstance(search, dict):
        return ""
    cands = [c for c in search.get("candidates") or [] if isinstance(c, dict)]
    front = {str(i.get("id") if isinstance(i, dict) else i) for i in search.get("front") or []}
    chosen = search.get("chosen_id")
    rows = [{**c, "label": artifact_label(c), "size_kb": _num(c.get("bytes")) / 1024 if _num(c.get("bytes")) else None,
             "val_pct": _num(c.get("val_accuracy")) * 100 if _num(c.get("val_accuracy")) is not None else None,
             "front": "★" if str(c.get("id")) in front else "", "budget": "✓" if c.get("within_budget") else "",
             "chosen": c.get("id") == chosen} for c in cands]
    target = search.get("target") or "the search target"
    out = '<section id="search"><h2>Accuracy-budget search</h2>'
    summary = str(search.get("summary") or search.get("reason") or "").replace("**", "")
    if summary:
        out += f'<p class="{"bad" if search.get("status") == "failed" else "note"}">{_e(summary)}</p>'
    pts = [plots.Point(artifact_label(c), float(c["latency_ms"]), float(c["val_accuracy"]), str(c.get("precision", "")),
                       str(c.get("format", "")))
           for c in cands if _num(c.get("latency_ms")) is not None and _num(c.get("val_accuracy")) is not None]
    if pts:
        out += _img(plots.accuracy_latency(pts, f"Search candidates on {target}: validation accuracy vs p50",
                                           "p50 latency, batch 1, 1 thread (ms)", ylabel="validation accuracy (%)"),
                    "search candidates")
    out += ('<p class="note">Validation accuracy (the test set is never used to choose). ★: on the Pareto front over '
            "accuracy, size and latency (the plot's orange line is the 2-D accuracy/latency front). "
            "Green row: chosen.</p>")
    return out + _table(SEARCH_COLUMNS, rows, row_class=_row_class) + "</section>"


def _environment_section(report: Mapping[str, Any]) -> str:
    env = report.get("environment") or {}
    benches = _benchmarks(report)
    threads = sorted({b.get("threads") for b in benches if isinstance(b.get("threads"), int)})
    emulated = sorted({str(b.get("target")) for b in benches if b.get("emulated")})
    flags = env.get("cpu_flags")
    flags_txt = " ".join(map(str, flags)) if isinstance(flags, list) else flags
    items: list[tuple[str, Any]] = [(k, env.get(k)) for k in ("edgekit", "tensorflow", "onnxruntime", "litert", "python",
                                                               "platform", "machine", "cpu_model", "cpu_count")]
    items += [("cpu_flags", flags_txt), ("benchmark threads", ", ".join(map(str, threads)) or None),
              ("emulated targets", ", ".join(emulated) or "none"),
              ("native targets", ", ".join(sorted({str(b.get('target')) for b in benches if not b.get('emulated')})) or None)]
    items += [(k, v) for k, v in env.items() if k not in {i[0] for i in items}]
    return _kv_table((k, v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)) for k, v in items)


def _header(report: Mapping[str, Any]) -> str:
    ds = report.get("dataset") or {}
    items = [("dataset", f"{ds.get('name', DASH)} ({ds.get('source') or 'source unknown'})"),
             ("train / val / test", " / ".join(str(ds.get(k, DASH)) for k in ("train_size", "val_size", "test_size"))),
             ("input shape", json.dumps(ds.get("input_shape")) if ds.get("input_shape") else None),
             ("seed", report.get("seed")), ("command", report.get("command")),
             ("created", report.get("created")), ("edgekit", report.get("edgekit_version"))]
    return _kv_table(items)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;color:#222;padding:0 16px}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}
table.sortable th{cursor:pointer;background:#f4f4f4;user-select:none}table.sortable th:after{content:" ⇅";color:#aaa}
td{white-space:nowrap}td.wrap{white-space:normal;min-width:320px}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{background:#f8f8f8;font-weight:600;width:180px}table.kv td{white-space:normal;overflow-wrap:anywhere}
tr.chosen td{background:#eef6ee}tr.failed td{background:#fdecea}tr.skipped td{color:#888}
tr.emulated td{font-style:italic}
#problems.bad{border:2px solid #c0392b;background:#fdecea;padding:8px 16px;border-radius:6px}
#problems.bad h2{color:#c0392b;border:0}#problems.ok{border:1px solid #2e7d32;background:#eef6ee;padding:4px 16px;border-radius:6px}
.badge{font-size:11px;padding:1px 6px;border-radius:4px;color:#fff;background:#777}.badge.emu{background:#b35900}
.plotbox{display:inline-block;vertical-align:top;margin:4px 12px 12px 0}
.plotbox.emulated{border:2px dashed #b35900;padding:4px;border-radius:6px}
img.plot{max-width:100%;height:auto}figure{margin:6px 0}
.muted{color:#777;font-size:12px}.ver.ok{color:#2e7d32}.ver.failed{color:#c0392b;font-weight:600}
ul.tree{list-style:none;padding-left:8px}ul.tree ul{list-style:none;border-left:1px solid #ccc;margin-left:8px;padding-left:14px}
.note{font-size:13px;color:#555}p.bad{color:#c0392b;font-weight:600}.scroll{overflow-x:auto}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var num=th.dataset.num==='1', asc=th.dataset.asc!=='1'; th.dataset.asc=asc?'1':'0';
      var rows=Array.prototype.slice.call(t.tBodies[0].rows);
      rows.sort(function(a,b){
        var x=a.cells[i], y=b.cells[i];
        if(num){var u=parseFloat(x.dataset.v), w=parseFloat(y.dataset.v);
          if(isNaN(u)) return 1; if(isNaN(w)) return -1; return asc?u-w:w-u;}
        return asc?x.textContent.localeCompare(y.textContent):y.textContent.localeCompare(x.textContent);
      });
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});
    });
  });
});
"""


def page(title: str, body: str) -> str:
    """Wrap ``body`` in the report's standalone HTML page (inline CSS and JS, no external resources)."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}<script>{JS}</script></body></html>\n")


def render_html(report: Mapping[str, Any], run_dir: Path | None = None) -> str:
    """Render ``report`` (the parsed report.json) as one self-contained HTML page."""
    ds = (report.get("dataset") or {}).get("name", "")
    title = f"edgekit report — {ds}" if ds else "edgekit report"
    folder = report.get("out") or run_dir  # the run's final folder (reports are written before it is renamed into place)
    where = f'<p class="note">Run folder: <code>{_e(folder)}</code></p>' if folder is not None else ""
    rows = results_rows(report)
    benches = bench_rows(report)
    emu_note = ('<p class="note"><span class="badge emu">EMULATED</span> rows (italic) ran under an emulator: their '
                "latencies compare artifacts with each other on that target only and are not device speed.</p>")
    body = [f"<h1>{_e(title)}</h1>", where, _header(report), _problems_section(report),
            '<section id="results"><h2>Results (batch 1, 1 thread)</h2>',
            '<p class="note">× smaller: vs the fp32 model of the same format. Δ pp: accuracy minus the baseline\'s. '
            "Accuracy: as measured on that target (the artifact's own where not benchmarked). "
            "Best throughput: the highest over the batch sizes and thread counts measured. "
            "Green row: chosen artifact. Click a header to sort.</p>",
            _table(RESULT_COLUMNS, rows, row_class=_row_class), emu_note if any(r.get("emulated") for r in rows) else "",
            "</section>",
            '<section id="latency"><h2>Accuracy vs latency</h2>'
            '<p class="note">One plot per target; native and emulated targets never share axes. '
            "The orange step line and rings mark the Pareto front (nothing both faster and more accurate).</p>",
            _latency_plots(report), "</section>",
            '<section id="sizes"><h2>Size</h2>', _size_section(report), "</section>",
            '<section id="layers"><h2>Chosen artifact: per-layer sparsity and precision</h2>', _layers_section(report),
            "</section>",
            '<section id="lineage"><h2>Lineage</h2><p class="note">stage → artifact it produced, nested under its parent.</p>',
            _lineage_section(report), "</section>",
            _search_section(report)]
    if benches:
        body += ['<section id="benchmarks"><h2>All benchmark rows</h2>',
                 '<p class="note">Agree: top-1 agreement on the same test images — vs parent: with the model this '
                 "artifact was made from; vs ref. target: with the same file on the reference target (the first "
                 "target it ran on, e.g. ARM vs x86).</p>",
                 _table(BENCH_COLUMNS, benches, row_class=_row_class), "</section>"]
    body += ['<section id="environment"><h2>Environment</h2>', _environment_section(report), "</section>"]
    return page(title, "".join(body))
