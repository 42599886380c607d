"""The sections only report.html shows: the status box, the plots, the chosen artifact's layers, the lineage,
every benchmark row and the environment (report.md keeps to the results and the lists)."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from typing import Any

from edgekit.report import plots
from edgekit.report._fields import pct
from edgekit.report.cells import kv_text, ms_text, peak_text, row_class, status_line
from edgekit.report.content import (
    HTML_DASH,
    Bullets,
    Code,
    Column,
    Figure,
    KeyValues,
    Node,
    Section,
    Strong,
    Table,
    Text,
    Tree,
)
from edgekit.report.model import ArtifactRecord, BenchRow, Report


def status(report: Report) -> Section:
    """The page's status box: the status, warnings, problems and failed verifications."""
    items = list(report.problems)
    for a in report.artifacts:
        v = a.verification
        if v is not None and v.status != "ok":
            msg = f"verification {v.status}: {a.label} ({a.id}) {v.reason}".strip()
            if not any(a.id in p and "agreement" in p for p in items):
                items.append(msg)
    failed = [b for b in report.benchmarks if b.status == "failed"]
    warnings = tuple(Text.of(f"Warning: {w}", style="warn") for w in report.warnings)
    if not items and not failed and report.status == "ok":
        return Section("problems", f"Status: {status_line(report)}",
                       warnings or (Text.of("No problems recorded."),), cls="warn" if report.warnings else "ok",
                       only="html")
    extra = (Text.of(f"{len(failed)} benchmark row(s) failed — see the full benchmark table."),) if failed else ()
    return Section("problems", f"Status: {status_line(report)} — {len(items)} problem(s)",
                   (*warnings, Bullets(tuple(items)), *extra), cls="bad", only="html")


def latency(report: Report) -> Section:
    """Accuracy against p50 latency, one plot per target (native and emulated targets never share axes)."""
    groups: dict[tuple[str, bool], list[BenchRow]] = defaultdict(list)
    for b in report.benchmarks:
        if b.ok and b.p50 is not None:
            groups[(b.target, b.emulated)].append(b)
    blocks: list[Any] = [Text.of("One plot per target; native and emulated targets never share axes. The orange "
                                 "step line and rings mark the Pareto front (nothing both faster and more accurate).",
                                 style="note")]
    if not groups:
        blocks.append(Text.of("No successful benchmark rows: nothing to plot."))
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
        blocks.append(Figure(functools.partial(plots.accuracy_latency, pts, title, xlabel),
                             f"accuracy vs latency on {target}", box="plotbox emulated" if emulated else "plotbox",
                             heading=target, badge="EMULATED" if emulated else ""))
    return Section("latency", "Accuracy vs latency", tuple(blocks), only="html")


def sizes(report: Report) -> Section:
    arts = [a for a in report.artifacts if a.bytes is not None]
    if not arts:
        return Section("sizes", "Size", (Text.of("No artifact sizes recorded."),), only="html")
    return Section("sizes", "Size", (Figure(lambda: plots.sizes(
        [a.label for a in arts], [float(a.bytes or 0) for a in arts],
        [float(a.gzip_bytes) if a.gzip_bytes is not None else None for a in arts]),
        "raw and gzipped size per artifact"),), only="html")


def short_layer_name(name: str, width: int = 40) -> str:
    """A readable layer name: TFLite's fused 'model/conv1/Relu;model/conv1/BiasAdd;...' becomes 'conv1'."""
    first = str(name).split(";")[0]
    parts = first.split("/")
    short = "/".join(parts[1:-1]) if len(parts) >= 3 else first
    return short if len(short) <= width else short[: width - 1] + "…"


LAYER_COLUMNS: tuple[Column, ...] = (
    Column("layer", lambda x: short_layer_name(x.name)), Column("op", lambda x: x.op),
    Column("weight dtype", lambda x: x.weight_dtype), Column("params", lambda x: x.params, numeric=True),
    Column("zero weights %", lambda x: pct(x.sparsity), html=".2f", numeric=True),
    Column("MACs", lambda x: x.macs, numeric=True))


def layers(report: Report) -> Section:
    """The chosen artifact's layers: weight dtype, parameters, zero weights and MACs."""
    title = "Chosen artifact: per-layer sparsity and precision"
    chosen, note = report.chosen, "Chosen artifact"
    if chosen is None:  # no choice recorded: show the smallest audited artifact, and say so
        audited = [a for a in report.artifacts if a.audit is not None and a.bytes]
        if not audited:
            return Section("layers", title, (Text.of("No chosen artifact and no audited artifact recorded."),),
                           only="html")
        chosen = min(audited, key=lambda a: a.bytes or 0)
        note = "No chosen artifact recorded; smallest audited artifact"
    audit = chosen.audit
    sparsity = chosen.sparsity if chosen.sparsity is not None else (audit.sparsity if audit else None)
    sparsity_txt = f"{sparsity * 100:.1f} % of weights are zero" if sparsity is not None else f"sparsity {HTML_DASH}"
    blocks: list[Any] = [Text.of(f"{note}: ", Strong(chosen.label),
                                 f" ({chosen.id}), precision {chosen.precision or HTML_DASH}, {sparsity_txt}.")]
    if audit is None:
        return Section("layers", title, (*blocks, Text.of("No per-layer audit recorded for this artifact.")),
                       only="html")
    share = ", ".join(f"{k}: {v * 100:.1f}%" for k, v in audit.weight_share.items())
    if share:
        blocks.append(Text.of(f"Weight share by dtype: {share}"))
    blocks.append(Table(LAYER_COLUMNS, audit.layers))
    plotted = [x for x in audit.layers if x.sparsity is not None]
    if plotted:
        blocks.append(Figure(lambda: plots.layer_sparsity([short_layer_name(x.name) for x in plotted],
                                                          [float(x.sparsity or 0.0) for x in plotted],
                                                          [x.weight_dtype or "?" for x in plotted]),
                             "per-layer sparsity"))
    return Section("layers", title, tuple(blocks), only="html")


def lineage(report: Report) -> Section:
    """Stage → artifact it produced, nested under its parent."""
    ids = {a.id for a in report.artifacts}
    children: dict[str | None, list[ArtifactRecord]] = defaultdict(list)
    for a in report.artifacts:
        children[a.parent_id if a.parent_id in ids else None].append(a)
    flagged = {g.artifact_id for g in report.regressions}

    def node(a: ArtifactRecord, seen: frozenset[str]) -> Node:
        v = a.verification
        tags: tuple[tuple[str, str], ...] = ((f"ver {v.status}", f"verified: {v.status}"),) if v is not None else ()
        tags += (("ver failed", "worse than parent"),) if a.id in flagged else ()
        kids = () if a.id in seen else tuple(node(c, seen | {a.id}) for c in children.get(a.id, []))
        return Node(a.stage or HTML_DASH, a.label, f"{a.precision} · {a.id} · {a.path or ''}", tags, kids)

    roots = tuple(node(a, frozenset()) for a in children.get(None, []))
    return Section("lineage", "Lineage", (Text.of("stage → artifact it produced, nested under its parent.",
                                                  style="note"), Tree(roots, "No artifacts.")), only="html")


def _latency_ms(c: Any, k: str) -> Any:
    """A benchmark cell's ``k`` latency statistic (``p50``...), or None when it has no latencies."""
    return getattr(c[0].latency_ms, k) if c[0].latency_ms else None


BENCH_COLUMNS: tuple[Column, ...] = (
    Column("artifact", lambda c: c[1].label if c[1] else c[0].artifact_id),
    Column("precision", lambda c: c[1].precision if c[1] else None),
    Column("target", lambda c: c[0].target), Column("emulated", lambda c: c[0].emulated),
    Column("batch", lambda c: c[0].batch_size, numeric=True), Column("threads", lambda c: c[0].threads, numeric=True),
    Column("status", lambda c: c[0].status), Column("reason", lambda c: c[0].reason, wrap=True),
    Column("accuracy %", lambda c: pct(c[0].accuracy), html=".2f", numeric=True),
    Column("agree vs ref. target %",  # vs itself is trivially 100 %
           lambda c: pct(c[0].target_agreement) if c[0].reference_target not in (None, c[0].target) else None,
           html=".2f", numeric=True),
    Column("ref. target", lambda c: c[0].reference_target if c[0].reference_target != c[0].target else None),
    Column("agree vs parent %", lambda c: pct(c[0].top1_agreement), html=".2f", numeric=True),
    *(Column(f"{k} ms", functools.partial(_latency_ms, k=k), html=ms_text, numeric=True)
      for k in ("p50", "p90", "p99", "std")),
    Column("throughput /s", lambda c: c[0].throughput_per_s, html=",.1f", numeric=True),
    Column("MACs / image", lambda c: c[0].macs_per_image, numeric=True),
    Column("% of peak", lambda c: c[0].percent_of_peak, html=".2f", numeric=True),
    Column("peak GMAC/s", lambda c: peak_text(c[0]), wrap=True),
    Column("provider", lambda c: c[0].provider), Column("runtime", lambda c: c[0].runtime),
    Column("format", lambda c: c[1].format if c[1] else None))


def benchmarks(report: Report) -> Section | None:
    """Every benchmark row (artifact × target × batch size × threads)."""
    if not report.benchmarks:
        return None
    cells = [(b, report.artifact(b.artifact_id)) for b in report.benchmarks]
    return Section("benchmarks", "All benchmark rows", (
        Text.of("Agree: top-1 agreement on the same test images — vs parent: with the model this artifact was made "
                "from; vs ref. target: with the same file on the reference target (the first target it ran on, e.g. "
                "ARM vs x86).", style="note"),
        Table(BENCH_COLUMNS, cells, lambda c: row_class(c[0].emulated, c[0].status))), only="html")


def environment(report: Report) -> Section:
    """Versions, the CPU and its flags, thread counts, and which targets were emulated."""
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
    return Section("environment", "Environment", (KeyValues(tuple((k, kv_text(v)) for k, v in items)),), only="html")


def header(report: Report, folder: Any) -> tuple[Text | KeyValues, ...]:
    """The page's run folder and run facts (dataset, sizes, seed, command, version)."""
    ds = report.dataset
    sizes_ = " / ".join(str(x) if x is not None else HTML_DASH for x in (ds.train_size, ds.val_size, ds.test_size))
    facts = KeyValues((("dataset", f"{ds.name or HTML_DASH} ({ds.source or 'source unknown'})"),
                       ("train / val / test", sizes_),
                       ("input shape", json.dumps(list(ds.input_shape)) if ds.input_shape else None),
                       ("seed", report.seed), ("command", report.command), ("created", report.created),
                       ("edgekit", report.edgekit_version)))
    return ((Text.of("Run folder: ", Code(str(folder)), style="note"),) if folder is not None else ()) \
        + (facts,)
