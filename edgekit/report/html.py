"""One self-contained HTML page for a run's report: tables, inline SVG plots, no network.

Reads the typed :class:`~edgekit.report.model.Report`; a section whose data the report does not
carry (no benchmarks, no audit, no search, analysis or tuning) is left out or says so, and a
missing value prints as an em dash.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from edgekit.report import plots
from edgekit.report.markdown import FLAG_WORDS, status_line
from edgekit.report.model import ArtifactRecord, BenchRow, Report
from edgekit.report.sections import budget_html
from edgekit.report.sections import where_it_ran_html
from edgekit.report.table import ResultRow, results_table

DASH = "—"
Cells = Mapping[str, Any]
Column = tuple[str, str, bool]  # (cell key, header, numeric?)

RESULT_COLUMNS: tuple[Column, ...] = (
    ("name", "artifact", False), ("format", "format", False), ("precision", "precision", False),
    ("size_kb", "size KB", True), ("x_smaller", "× smaller", True), ("accuracy_pct", "accuracy %", True),
    ("delta_pp", "Δ pp vs baseline", True), ("p50", "p50 ms", True), ("p90", "p90 ms", True),
    ("throughput", "best throughput /s", True), ("percent_of_peak", "% of peak", True),
    ("provider", "provider", False), ("target", "target", False),
    ("emulated", "emulated", False), ("flags", "worse than parent", False),
)
BENCH_COLUMNS: tuple[Column, ...] = (
    ("name", "artifact", False), ("precision", "precision", False), ("target", "target", False),
    ("emulated", "emulated", False), ("batch", "batch", True), ("threads", "threads", True),
    ("status", "status", False), ("reason", "reason", False), ("accuracy_pct", "accuracy %", True),
    ("target_agree_pct", "agree vs ref. target %", True), ("reference_target", "ref. target", False),
    ("agreement_pct", "agree vs parent %", True), ("p50", "p50 ms", True), ("p90", "p90 ms", True),
    ("p99", "p99 ms", True), ("std", "std ms", True), ("throughput", "throughput /s", True),
    ("macs", "MACs / image", True), ("percent_of_peak", "% of peak", True), ("peak", "peak GMAC/s", False),
    ("provider", "provider", False), ("runtime", "runtime", False), ("format", "format", False),
)
SEARCH_COLUMNS: tuple[Column, ...] = (
    ("label", "candidate", False), ("format", "format", False), ("precision", "precision", False),
    ("size_kb", "size KB", True), ("val_pct", "val accuracy %", True), ("val_drop_pp", "val drop pp", True),
    ("latency_ms", "p50 ms", True), ("front", "Pareto front", False), ("budget", "within budget", False),
    ("excluded", "not eligible because", False),
)
LAYER_COLUMNS: tuple[Column, ...] = (
    ("name", "layer", False), ("op", "op", False), ("dtype", "weight dtype", False),
    ("params", "params", True), ("zeros", "zero weights %", True), ("macs", "MACs", True),
)
WRAP_KEYS = frozenset({"reason", "config", "excluded", "peak"})
"""Table columns whose long text wraps; every other cell stays on one line (names, targets, numbers)."""


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


# --------------------------------------------------------------------------- cells
def _result_cells(r: ResultRow) -> dict[str, Any]:
    a = r.artifact
    return {"name": a.label, "format": a.format, "precision": a.precision, "size_kb": r.size_kb,
            "x_smaller": r.x_smaller, "accuracy_pct": r.accuracy_pct, "delta_pp": r.delta_pp, "p50": r.p50,
            "p90": r.p90, "throughput": r.throughput, "percent_of_peak": r.percent_of_peak, "provider": r.provider,
            "target": r.target,
            "emulated": r.emulated if r.target else None, "flags": ", ".join(FLAG_WORDS[f] for f in r.flags),
            "status": r.status, "chosen": r.chosen}


def _bench_cells(b: BenchRow, a: ArtifactRecord | None) -> dict[str, Any]:
    lat = b.latency_ms
    ref_target = b.reference_target if b.reference_target != b.target else None
    return {
        "name": a.label if a else b.artifact_id, "format": a.format if a else None, "precision": a.precision if a else None,
        "target": b.target, "emulated": b.emulated, "runtime": b.runtime, "provider": b.provider,
        "batch": b.batch_size, "threads": b.threads, "status": b.status, "reason": b.reason,
        "p50": lat.p50 if lat else None, "p90": lat.p90 if lat else None, "p99": lat.p99 if lat else None,
        "std": lat.std if lat else None, "throughput": b.throughput_per_s, "accuracy_pct": _pct(b.accuracy),
        "agreement_pct": _pct(b.top1_agreement),
        "target_agree_pct": _pct(b.target_agreement) if ref_target else None,  # vs itself is trivially 100 %
        "reference_target": ref_target, "macs": b.macs_per_image, "percent_of_peak": b.percent_of_peak,
        "peak": _peak_cell(b),
    }


def _peak_cell(b: BenchRow) -> str | None:
    """``54.1 (fp32)``, or why an ok row has no peak."""
    if b.peak_gmacs is not None:
        return f"{b.peak_gmacs:.1f} ({b.peak_kernel or '?'})"
    return b.peak_reason or None


# --------------------------------------------------------------------------- formatting
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(key: str, v: Any) -> str:
    if v is None or v == "":
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if key in ("delta_pp", "val_drop_pp", "drop_pp"):
            return f"{v:+.2f}"
        if key == "x_smaller":
            return f"{v:.2f}×"
        if key == "cosine":
            return f"{v:.4f}"
        if key == "snr_db":
            return f"{v:.1f}"
        if key in ("p50", "p90", "p99", "std", "latency_ms"):
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        if key in ("size_kb", "throughput"):
            return f"{v:,.1f}"
        return f"{v:.2f}"
    return str(v)


def _table(columns: Sequence[Column], rows: Sequence[Cells], cls: str = "sortable",
           row_class: Callable[[Cells], str] | None = None) -> str:
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


def _row_class(r: Cells) -> str:
    classes = []
    if r.get("emulated"):
        classes.append("emulated")
    if r.get("status") in ("failed", "skipped"):
        classes.append(str(r["status"]))
    if r.get("chosen"):
        classes.append("chosen")
    if r.get("flags"):
        classes.append("regressed")
    return " ".join(classes)


# --------------------------------------------------------------------------- sections
def _problems_section(report: Report) -> str:
    items = list(report.problems)
    for a in report.artifacts:
        v = a.verification
        if v is not None and v.status != "ok":
            msg = f"verification {v.status}: {a.label} ({a.id}) {v.reason}".strip()
            if not any(a.id in p and "agreement" in p for p in items):
                items.append(msg)
    failed = [b for b in report.benchmarks if b.status == "failed"]
    warnings = "".join(f'<p class="warn">Warning: {_e(w)}</p>' for w in report.warnings)
    if not items and not failed and report.status == "ok":
        cls = "warn" if report.warnings else "ok"
        return (f'<section id="problems" class="{cls}"><h2>Status: {_e(status_line(report))}</h2>'
                f"{warnings or '<p>No problems recorded.</p>'}</section>")
    lis = "".join(f"<li>{_e(p)}</li>" for p in items)
    extra = f"<p>{len(failed)} benchmark row(s) failed — see the full benchmark table.</p>" if failed else ""
    return (f'<section id="problems" class="bad"><h2>Status: {_e(status_line(report))} — {len(items)} problem(s)</h2>'
            f"{warnings}<ul>{lis}</ul>{extra}</section>")


def _regressions_section(report: Report) -> str:
    if not report.regressions_checked:
        return ('<section id="regressions"><h2>Worse than the model they were made from</h2>'
                "<p>Not checked: this report.json was written by an edgekit that did not look for regressions.</p>"
                "</section>")
    if not report.regressions:
        return ('<section id="regressions"><h2>Worse than the model they were made from</h2>'
                "<p>None: no artifact is larger, slower or less accurate than its parent.</p></section>")
    chosen = report.chosen_id
    lis = "".join(f'<li class="{"chosen" if g.artifact_id == chosen else ""}">{_e(g.message)}</li>'
                  for g in report.regressions)
    return ('<section id="regressions"><h2>Worse than the model they were made from</h2>'
            '<p class="note">Each file against its parent (for a file made from a Keras model: the fp32 file of the '
            "same format made from that model). Slower: p50 at batch 1, same thread count, per target.</p>"
            f'<ul class="regressions">{lis}</ul></section>')


def _latency_plots(report: Report) -> str:
    groups: dict[tuple[str, bool], list[BenchRow]] = defaultdict(list)
    for b in report.benchmarks:
        if b.ok and b.p50 is not None:
            groups[(b.target, b.emulated)].append(b)
    if not groups:
        return "<p>No successful benchmark rows: nothing to plot.</p>"
    out = []
    for (target, emulated), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        batch, threads = min((r.batch_size or 0, r.threads or 0) for r in rows)
        if any(r.batch_size == 1 and r.threads == 1 for r in rows):
            batch, threads = 1, 1
        pts = []
        for r in rows:
            if (r.batch_size, r.threads) != (batch, threads):
                continue
            a = report.artifact(r.artifact_id)
            acc = r.accuracy if r.accuracy is not None else (a.accuracy if a else None)
            if acc is None or r.p50 is None:
                continue
            pts.append(plots.Point(a.label if a else r.artifact_id, r.p50, acc, a.precision if a else "",
                                   a.format if a else ""))
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


def _size_section(report: Report) -> str:
    arts = [a for a in report.artifacts if a.bytes is not None]
    if not arts:
        return "<p>No artifact sizes recorded.</p>"
    uri = plots.sizes([a.label for a in arts], [float(a.bytes or 0) for a in arts],
                      [float(a.gzip_bytes) if a.gzip_bytes is not None else None for a in arts])
    return _img(uri, "raw and gzipped size per artifact")


def short_layer_name(name: str, width: int = 40) -> str:
    """A readable layer name: TFLite's fused 'model/conv1/Relu;model/conv1/BiasAdd;...' becomes 'conv1'."""
    first = str(name).split(";")[0]
    parts = first.split("/")
    short = "/".join(parts[1:-1]) if len(parts) >= 3 else first
    return short if len(short) <= width else short[: width - 1] + "…"


def _layers_section(report: Report) -> str:
    chosen, note = report.chosen, "Chosen artifact"
    if chosen is None:  # no choice recorded: show the smallest audited artifact, and say so
        audited = [a for a in report.artifacts if a.audit is not None and a.bytes]
        if not audited:
            return "<p>No chosen artifact and no audited artifact recorded.</p>"
        chosen = min(audited, key=lambda a: a.bytes or 0)
        note = "No chosen artifact recorded; smallest audited artifact"
    audit = chosen.audit
    sparsity = chosen.sparsity if chosen.sparsity is not None else (audit.sparsity if audit else None)
    sparsity_txt = f"{sparsity * 100:.1f} % of weights are zero" if sparsity is not None else f"sparsity {DASH}"
    head = (f"<p>{note}: <b>{_e(chosen.label)}</b> ({_e(chosen.id)}), precision {_e(chosen.precision or DASH)}, "
            f"{_e(sparsity_txt)}.</p>")
    if audit is None:
        return head + "<p>No per-layer audit recorded for this artifact.</p>"
    rows = [{"name": short_layer_name(layer.name), "op": layer.op, "dtype": layer.weight_dtype, "params": layer.params,
             "zeros": _pct(layer.sparsity), "macs": layer.macs} for layer in audit.layers]
    share_txt = ", ".join(f"{_e(k)}: {v * 100:.1f}%" for k, v in audit.weight_share.items())
    out = head + (f"<p>Weight share by dtype: {share_txt}</p>" if share_txt else "") + _table(LAYER_COLUMNS, rows)
    plotted = [layer for layer in audit.layers if layer.sparsity is not None]
    if plotted:
        out += _img(plots.layer_sparsity([short_layer_name(x.name) for x in plotted],
                                         [float(x.sparsity or 0.0) for x in plotted],
                                         [x.weight_dtype or "?" for x in plotted]), "per-layer sparsity")
    return out


def _lineage_section(report: Report) -> str:
    ids = {a.id for a in report.artifacts}
    children: dict[str | None, list[ArtifactRecord]] = defaultdict(list)
    for a in report.artifacts:
        children[a.parent_id if a.parent_id in ids else None].append(a)
    flagged = {g.artifact_id for g in report.regressions}

    def node(a: ArtifactRecord, seen: frozenset[str]) -> str:
        v = a.verification
        ver = f' <span class="ver {_e(v.status)}">verified: {_e(v.status)}</span>' if v is not None else ""
        worse = ' <span class="ver failed">worse than parent</span>' if a.id in flagged else ""
        kids = "" if a.id in seen else "".join(node(c, seen | {a.id}) for c in children.get(a.id, []))
        return (f"<li><code>{_e(a.stage or DASH)}</code> → <b>{_e(a.label)}</b> "
                f"<span class=\"muted\">{_e(a.precision)} · {_e(a.id)} · {_e(a.path or '')}</span>"
                f"{ver}{worse}{f'<ul>{kids}</ul>' if kids else ''}</li>")

    roots = children.get(None, [])
    return f'<ul class="tree">{"".join(node(a, frozenset()) for a in roots)}</ul>' if roots else "<p>No artifacts.</p>"


def _search_section(report: Report) -> str:
    """The accuracy-budget search (``edgekit.search.choose``): plot, summary, candidates."""
    search = report.search
    if search is None:
        return ""
    front = set(search.front)
    rows = [{"label": c.label, "format": c.format, "precision": c.precision, "size_kb": c.bytes / 1024,
             "val_pct": c.val_accuracy * 100, "val_drop_pp": c.val_drop_pp, "latency_ms": c.latency_ms,
             "front": "★" if c.id in front else "", "budget": "✓" if c.within_budget else "",
             "excluded": c.excluded, "chosen": c.id == search.chosen_id} for c in search.candidates]
    target = search.target or "the search target"
    out = '<section id="search"><h2>Accuracy-budget search</h2>'
    summary = (search.summary or search.reason).replace("**", "")
    if summary:
        cls = "bad" if search.status == "failed" else "warn" if search.fallback else "note"
        out += f'<p class="{cls}">{_e(summary)}</p>'
    pts = [plots.Point(c.label, c.latency_ms, c.val_accuracy, c.precision, c.format)
           for c in search.candidates if c.latency_ms is not None]
    if pts:
        out += _img(plots.accuracy_latency(pts, f"Search candidates on {target}: validation accuracy vs p50",
                                           "p50 latency, batch 1, 1 thread (ms)", ylabel="validation accuracy (%)"),
                    "search candidates")
    out += ('<p class="note">Validation accuracy (the test set is never used to choose). ★: on the Pareto front over '
            "accuracy, size and latency (the plot's orange line is the 2-D accuracy/latency front). "
            "Not eligible: failed verification, not smaller or slower than the fp32 file of its format, or worse "
            "than its parent. Green row: chosen.</p>")
    return out + _table(SEARCH_COLUMNS, rows, row_class=_row_class) + "</section>"


MCU_COLUMNS: tuple[Column, ...] = (
    ("name", "artifact", False), ("precision", "precision", False), ("tflm", "TFLM", False),
    ("agree_pct", "agree with LiteRT %", True), ("arena_kb", "arena KB", True), ("ram_kb", "RAM need KB", True),
    ("ram_margin_kb", "RAM margin KB", True), ("flash_kb", "flash need KB", True),
    ("flash_margin_kb", "flash margin KB", True), ("fits", "fits", False), ("reason", "why not", False),
)


def _mcu_section(report: Report) -> str:
    """Microcontroller targets: the fit of every .tflite file (TFLM on this host) and the cross-compiled size."""
    from edgekit.report.mcu import NOTE, fit_rows

    out = ""
    for sec in report.mcu:
        def kb(n: int | None) -> float | None:
            return None if n is None else n / 1024

        rows = []
        for b in fit_rows(report, sec.target):
            m, a = b.mcu, report.artifact(b.artifact_id)
            assert m is not None
            rows.append({"name": a.label if a else b.artifact_id, "precision": a.precision if a else None,
                         "tflm": m.tflm_status, "agree_pct": _pct(m.tflm_agreement), "arena_kb": kb(m.arena_bytes),
                         "ram_kb": kb(m.ram_needed_bytes), "ram_margin_kb": kb(m.ram_margin_bytes),
                         "flash_kb": kb(m.flash_needed_bytes), "flash_margin_kb": kb(m.flash_margin_bytes),
                         "fits": m.fits, "reason": m.reason or (b.reason if not b.ok else ""),
                         "status": "ok" if m.fits else "skipped", "chosen": b.artifact_id == report.chosen_id})
        budget = f"{sec.ram_kb} KB RAM, {sec.flash_kb} KB flash" if sec.ram_kb is not None else "budgets unknown"
        out += (f'<section id="mcu-{_e(sec.target)}"><h2>Microcontroller: {_e(sec.target)} ({_e(budget)}, '
                f'{_e(sec.runtime)})</h2><p class="note">{_e(NOTE)} Green row: chosen artifact.</p>'
                + _table(MCU_COLUMNS, rows, row_class=_row_class))
        cc = sec.cross_compile
        if cc is not None:
            out += (f'<p class="note">Cross-compiled examples/mcu for {_e(cc.cpu or sec.cpu or "the MCU")}: '
                    f'{_e(cc.status)}{_e(f" ({cc.reason})" if cc.reason else "")}'
                    f'{_e(f", {cc.toolchain}" if cc.toolchain else "")}.</p>')
            if cc.size_output:
                out += f"<pre>{_e(cc.size_output)}</pre>"
        out += "</section>"
    return out


def _drops_text(drops: Mapping[str, float]) -> str:
    return ", ".join(f"{float(k) * 100:g} %: {v:+.2f}" for k, v in sorted(drops.items(), key=lambda kv: float(kv[0])))


def _analysis_section(report: Report) -> str:
    """Per-layer sensitivity (``edgekit analyze``): the guilty layers first, as a table and a bar chart."""
    analysis = report.analysis
    if analysis is None:
        return ""
    layers = analysis.guilty_first()
    budget = f" Budget: {analysis.budget_pp:g} pp of validation accuracy." if analysis.budget_pp is not None else ""
    out = ('<section id="analysis"><h2>Per-layer sensitivity</h2>'
           '<p class="note">Validation-accuracy drop (pp) with only that layer pruned (by sparsity), with a fraction '
           "of its filters removed (structured), or with only that layer in int8; the most sensitive layers first."
           f"{_e(budget)} Protected layers were kept as they are.</p>")
    if not layers:
        return out + "<p>No layers analysed.</p></section>"
    worst = [s for s in layers if s.worst_drop_pp > 0] or layers
    out += _img(plots.layer_sensitivity([s.name for s in worst], [s.worst_drop_pp for s in worst],
                                        [s.protected for s in worst], analysis.budget_pp),
                "per-layer sensitivity")
    columns: tuple[Column, ...] = (
        ("name", "layer", False), ("op", "op", False), ("params", "params", True), ("macs", "MACs", True),
        ("drop_pp", "worst drop pp", True), ("prune", "prune: sparsity → drop pp", False),
        ("structured", "filters removed → drop pp", False), ("snr_db", "int8 SNR dB", True),
        ("cosine", "int8 cosine", True), ("quant_drop", "int8 drop pp", True), ("protected", "protected", False),
        ("reason", "why", False))
    rows = [{"name": s.name, "op": s.op, "params": s.params, "macs": s.macs, "drop_pp": s.worst_drop_pp,
             "prune": _drops_text(s.prune), "structured": _drops_text(s.structured),
             "snr_db": s.quant.snr_db if s.quant else None, "cosine": s.quant.cosine if s.quant else None,
             "quant_drop": s.quant.drop_pp if s.quant else None, "protected": s.protected, "reason": s.reason}
            for s in layers]
    return out + _table(columns, rows) + "</section>"


def _tune_section(report: Report) -> str:
    """Hyper-parameter tuning (``edgekit tune``): trials table and validation accuracy per epoch."""
    tune = report.tune
    if tune is None:
        return ""
    out = '<section id="tune"><h2>Tuning trials</h2>'
    ex = tune.executor
    if ex is not None:
        out += _kv_table([("executor", ex.kind), ("address", ex.address), ("nodes", ex.nodes), ("workers", ex.workers)])
    best = tune.best
    if best is not None:
        test = f", test {best.test_accuracy * 100:.2f} % (measured once, for the winner)" \
            if best.test_accuracy is not None else ""
        val = f"validation {best.val_accuracy * 100:.2f} %" if best.val_accuracy is not None else "no validation figure"
        out += f'<p class="note">Best trial <b>{_e(best.id)}</b>: {_e(val + test)}.</p>'
    curves = [(t.id, list(t.history)) for t in tune.trials if t.history]
    if curves:
        out += _img(plots.trial_histories(curves), "validation accuracy per epoch per trial")
    columns: tuple[Column, ...] = (("id", "trial", False), ("config", "config", False),
                                   ("val_pct", "val accuracy %", True), ("epochs", "epochs run", True),
                                   ("status", "status", False))
    rows = [{"id": t.id, "config": ", ".join(f"{k}={v}" for k, v in t.config.items()), "val_pct": _pct(t.val_accuracy),
             "epochs": t.epochs_run, "status": t.status, "chosen": best is not None and t.id == best.id}
            for t in tune.trials]
    return out + (_table(columns, rows, row_class=_row_class) if rows else "<p>No trials.</p>") + "</section>"


def _environment_section(report: Report) -> str:
    env = report.environment.values
    threads = sorted({b.threads for b in report.benchmarks if b.threads is not None})
    emulated = sorted({b.target for b in report.benchmarks if b.emulated})
    native = sorted({b.target for b in report.benchmarks if not b.emulated})
    items: list[tuple[str, Any]] = [(k, env.get(k)) for k in report.environment.SHOWN_FIRST]
    items += [("cpu_flags", " ".join(report.environment.cpu_flags) or None),
              ("benchmark threads", ", ".join(map(str, threads)) or None),
              ("emulated targets", ", ".join(emulated) or "none"), ("native targets", ", ".join(native) or None)]
    shown = {k for k, _ in items}
    items += [(k, v) for k, v in env.items() if k not in shown]
    return _kv_table((k, v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)) for k, v in items)


def _header(report: Report) -> str:
    ds = report.dataset
    sizes = " / ".join(str(x) if x is not None else DASH for x in (ds.train_size, ds.val_size, ds.test_size))
    items = [("dataset", f"{ds.name or DASH} ({ds.source or 'source unknown'})"), ("train / val / test", sizes),
             ("input shape", json.dumps(list(ds.input_shape)) if ds.input_shape else None),
             ("seed", report.seed), ("command", report.command), ("created", report.created),
             ("edgekit", report.edgekit_version)]
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
#problems.bad h2{color:#c0392b;border:0}#problems.warn{border:2px solid #b35900;background:#fff4e5;padding:4px 16px;border-radius:6px}
p.warn{color:#b35900;font-weight:600}tr.regressed td:last-child{color:#b35900;font-weight:600}ul.regressions li.chosen{font-weight:600}
#problems.ok{border:1px solid #2e7d32;background:#eef6ee;padding:4px 16px;border-radius:6px}
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


def render_html(report: Report | Mapping[str, Any], run_dir: Path | None = None) -> str:
    """Render ``report`` (typed, or the report.json dict) as one self-contained HTML page."""
    report = Report.coerce(report)
    ds = report.dataset.name
    title = f"edgekit report — {ds}" if ds else "edgekit report"
    folder = report.out or run_dir  # the run's final folder (reports are written before it is renamed into place)
    where = f'<p class="note">Run folder: <code>{_e(folder)}</code></p>' if folder is not None else ""
    rows = [_result_cells(r) for r in results_table(report)]
    emu_note = ('<p class="note"><span class="badge emu">EMULATED</span> rows (italic) ran under an emulator: their '
                "latencies compare artifacts with each other on that target only and are not device speed.</p>")
    body = [f"<h1>{_e(title)}</h1>", where, _header(report), _problems_section(report)]
    if report.artifacts:  # a tune-only report has none
        body += [
            '<section id="results"><h2>Results (batch 1, 1 thread)</h2>',
            '<p class="note">× smaller: vs the fp32 model of the same format. Δ pp: accuracy minus the baseline\'s. '
            "Accuracy: as measured on that target (the artifact's own where not benchmarked). "
            "Best throughput: the highest over the batch sizes and thread counts measured. "
            "Worse than parent: see the next section. Green row: chosen artifact. Click a header to sort.</p>",
            _table(RESULT_COLUMNS, rows, row_class=_row_class), emu_note if any(r["emulated"] for r in rows) else "",
            "</section>", _regressions_section(report),
            '<section id="latency"><h2>Accuracy vs latency</h2>'
            '<p class="note">One plot per target; native and emulated targets never share axes. '
            "The orange step line and rings mark the Pareto front (nothing both faster and more accurate).</p>",
            _latency_plots(report), "</section>",
            '<section id="sizes"><h2>Size</h2>', _size_section(report), "</section>",
            '<section id="layers"><h2>Chosen artifact: per-layer sparsity and precision</h2>', _layers_section(report),
            "</section>",
            '<section id="lineage"><h2>Lineage</h2><p class="note">stage → artifact it produced, nested under its parent.</p>',
            _lineage_section(report), "</section>"]
    body += [_search_section(report), _mcu_section(report), _analysis_section(report), _tune_section(report)]
    body.append(budget_html(report.extra.get("budget")))
    body.append(where_it_ran_html(report.executor))
    if report.benchmarks:
        benches = [_bench_cells(b, report.artifact(b.artifact_id)) for b in report.benchmarks]
        body += ['<section id="benchmarks"><h2>All benchmark rows</h2>',
                 '<p class="note">Agree: top-1 agreement on the same test images — vs parent: with the model this '
                 "artifact was made from; vs ref. target: with the same file on the reference target (the first "
                 "target it ran on, e.g. ARM vs x86).</p>",
                 _table(BENCH_COLUMNS, benches, row_class=_row_class), "</section>"]
    body += ['<section id="environment"><h2>Environment</h2>', _environment_section(report), "</section>"]
    return page(title, "".join(body))
