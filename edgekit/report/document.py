"""The sections of a run's report, each written once for report.md and report.html.

Every function here reads the typed :class:`~edgekit.report.model.Report` and returns a
:class:`~edgekit.report.content.Section` (or None when the report has nothing for it): its title,
notes, lists and tables. A section whose data the report does not carry is left out or says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from typing import Any, Mapping

from edgekit.report import plots
from edgekit.report.content import (HTML_DASH, MD_DASH, Badge, Bullets, Code, Column, Figure, KeyValues, Node,
                                    Preformatted, Section, Strong, Table, Text, Tree)
from edgekit.report.mcu import NOTE as MCU_NOTE
from edgekit.report.mcu import fit_rows
from edgekit.report.model import ArtifactRecord, BenchRow, Report
from edgekit.report.sections import Budget, Executor, pp_text, where_it_ran
from edgekit.report.table import ResultRow, results_table

FLAG_WORDS = {"larger": "larger", "slower": "slower", "less_accurate": "less accurate"}
"""How a regression kind reads in a table cell."""


def status_line(report: Report) -> str:
    """``ok``, ``failed``, or ``ok, 1 warning``: the run's status as the title says it."""
    n = len(report.warnings)
    return report.status + (f", {n} warning{'s' if n != 1 else ''}" if n else "")


# --------------------------------------------------------------------------- cell formats
def _md(v: Any, spec: str) -> str:
    return MD_DASH if v is None else format(v, spec)


def _pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0


def _latency(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _percent(v: float) -> str:
    return f"{v:.2f} %"


def _times(v: float) -> str:
    return f"{v:.2f}×"


def _kb(n: int | None) -> float | None:
    return None if n is None else n / 1024


def _chosen(name: str, chosen: bool, mark: str = "chosen") -> str:
    return f"{name} **({mark})**" if chosen else name


def _row_class(emulated: bool = False, status: str = "", chosen: bool = False, flagged: bool = False) -> str:
    """The page's row style: italic when emulated, red when failed, grey when skipped, green when chosen."""
    classes = (["emulated"] if emulated else []) + ([status] if status in ("failed", "skipped") else [])
    return " ".join(classes + (["chosen"] if chosen else []) + (["regressed"] if flagged else []))


def _peak(b: BenchRow) -> str | None:
    """``54.1 (fp32)``, or why an ok row has no peak."""
    if b.peak_gmacs is not None:
        return f"{b.peak_gmacs:.1f} ({b.peak_kernel or '?'})"
    return b.peak_reason or None


def _emu(r: ResultRow) -> str:
    return " (emulated)" if r.emulated else ""


def text(v: Any) -> str:
    """A key-value cell: a string as it is, a list or table as JSON, anything else as text."""
    return v if isinstance(v, str) or v is None else json.dumps(v)


# --------------------------------------------------------------------------- shared sections
RESULT_COLUMNS: tuple[Column, ...] = (
    Column("artifact", lambda r: r.artifact.label, md=lambda r: _chosen(r.artifact.name or r.artifact.id, r.chosen),
           md_row=True),
    Column("format", lambda r: r.artifact.format),
    Column("precision", lambda r: r.artifact.precision),
    Column("size KB", lambda r: r.size_kb, html=",.1f", md=".1f", numeric=True),
    Column("× smaller", lambda r: r.x_smaller, html=_times, md=lambda r: f"{_md(r.x_smaller, '.2f')}×", md_row=True,
           numeric=True),
    Column("accuracy %", lambda r: r.accuracy_pct, html=".2f", md=_percent, md_header="accuracy", numeric=True),
    Column("Δ pp vs baseline", lambda r: r.delta_pp, html="+.2f", md="+.2f", md_header="Δ pp", numeric=True),
    Column("p50 ms", lambda r: r.p50, html=_latency, md=lambda r: f"{_md(r.p50, '.3f')}{_emu(r)}", md_row=True,
           numeric=True),
    Column("p90 ms", lambda r: r.p90, html=_latency, md=lambda r: f"{_md(r.p90, '.3f')}{_emu(r)}", md_row=True,
           numeric=True),
    Column("best throughput /s", lambda r: r.throughput, html=",.1f", md=".0f", md_header="throughput/s",
           numeric=True),
    Column("% of peak", lambda r: r.percent_of_peak, html=".2f",
           md=lambda r: f"{_md(r.percent_of_peak, '.1f')}{_emu(r)}", md_row=True, numeric=True),
    Column("provider", lambda r: r.provider,
           md=lambda r: f"{r.provider or ''}{'' if r.status in ('ok', '') else f' ({r.status})'}", md_row=True),
    Column("target", lambda r: r.target, md=lambda r: r.target or "", md_row=True),
    Column("emulated", lambda r: r.emulated if r.target else None, md=False),
    Column("worse than parent", lambda r: ", ".join(FLAG_WORDS[f] for f in r.flags),
           md=lambda r: ", ".join(FLAG_WORDS[f] for f in r.flags), md_row=True),
)


def results(report: Report) -> Section | None:
    """The results table: one row per artifact and target (:func:`edgekit.report.table.results_table`)."""
    if not report.artifacts:  # a tune-only report has none
        return None
    rows = results_table(report)
    blocks: list[Any] = [
        Text.of("Latency: p50/p90 at batch 1 with 1 thread; throughput: the best over the batch sizes and thread "
                "counts measured. × smaller: against the fp32 model of the same format. Δ pp: test accuracy (on that "
                "target) against the trained fp32 model. Worse than parent: see below.", only="md"),
        Text.of("× smaller: vs the fp32 model of the same format. Δ pp: accuracy minus the baseline's. "
                "Accuracy: as measured on that target (the artifact's own where not benchmarked). "
                "Best throughput: the highest over the batch sizes and thread counts measured. "
                "Worse than parent: see the next section. Green row: chosen artifact. Click a header to sort.",
                style="note", only="html"),
        Table(RESULT_COLUMNS, rows, lambda r: _row_class(bool(r.emulated and r.target), r.status, r.chosen,
                                                          bool(r.flags)))]
    if any(r.emulated and r.target for r in rows):
        blocks.append(Text.of(Badge("EMULATED", "emu"), " rows (italic) ran under an emulator: their latencies compare "
                              "artifacts with each other on that target only and are not device speed.",
                              style="note", only="html"))
    return Section("results", "Results (batch 1, 1 thread)", tuple(blocks), md_title="")


def regressions(report: Report) -> Section | None:
    """Files worse than the model they were made from (:mod:`edgekit.report.regressions`)."""
    title = "Worse than the model they were made from"
    if not report.regressions_checked:
        return Section("regressions", title, (Text.of("Not checked: this report.json was written by an edgekit that "
                                                      "did not look for regressions."),), only="html")
    if not report.regressions:
        return Section("regressions", title, (Text.of("None: no artifact is larger, slower or less accurate than its "
                                                      "parent."),), only="html")
    return Section("regressions", title, (
        Text.of("Each file against its parent (for a file made from a Keras model: the fp32 file of the same format "
                "made from that model). Slower: p50 at batch 1, same thread count, per target.", style="note",
                only="html"),
        Bullets(tuple(g.message for g in report.regressions), cls="regressions",
                classes=tuple("chosen" if g.artifact_id == report.chosen_id else "" for g in report.regressions))))


def verification(report: Report) -> Section | None:
    """Each artifact against its parent model (``edgekit.export.verify``)."""
    verified = [a for a in report.artifacts if a.verification is not None]
    if not verified:
        return None

    def parent(a: ArtifactRecord) -> str:
        assert a.verification is not None
        p = report.artifact(a.verification.parent_id)
        return p.name if p else a.verification.parent_id

    columns = (
        Column("artifact", lambda a: a.name, md=lambda a: a.name, md_row=True),
        Column("parent", parent),
        Column("max abs diff", lambda a: a.verification.max_abs_diff, md=".2e"),
        Column("top-1 agreement", lambda a: _pct(a.verification.top1_agreement), md=_percent),
        Column("Δ accuracy pp", lambda a: a.verification.accuracy_delta_pp, md="+.2f"),
        Column("status", lambda a: f"{a.verification.status} {a.verification.reason}"))
    return Section("verification", "Verification against the parent model", (Table(columns, verified),), only="md")


def not_run(report: Report) -> Section | None:
    """Benchmark cells that did not run, and why (each target and reason once)."""
    skipped = sorted({(r.target, r.status, r.reason) for r in report.benchmarks if not r.ok})
    if not skipped:
        return None
    return Section("not-run", "Benchmarks not run", (Bullets(tuple(f"{t}: {s} — {why}" for t, s, why in skipped)),),
                   only="md")


def search(report: Report) -> Section | None:
    """The accuracy-budget search (``edgekit.search.choose``): summary, plot, candidates."""
    s = report.search
    if s is None:
        return None
    front = set(s.front)
    columns = (
        Column("candidate", lambda c: c.label, md=lambda c: _chosen(c.name, c.id == s.chosen_id), md_row=True),
        Column("format", lambda c: c.format),
        Column("precision", lambda c: c.precision),
        Column("size KB", lambda c: c.bytes / 1024, html=",.1f", md=".1f", md_header="KB", numeric=True),
        Column("val accuracy %", lambda c: c.val_accuracy * 100, html=".2f", md=_percent, md_header="val accuracy",
               numeric=True),
        Column("val drop pp", lambda c: c.val_drop_pp, html="+.2f", md="+.2f", numeric=True),
        Column("p50 ms", lambda c: c.latency_ms, html=_latency, md=".3f", numeric=True),
        Column("Pareto front", lambda c: "★" if c.id in front else "", md=lambda c: "★" if c.on_front else "",
               md_row=True, md_header="front"),
        Column("within budget", lambda c: "✓" if c.within_budget else "",
               md=lambda c: "✓" if c.within_budget else "", md_row=True, md_header="budget"),
        Column("not eligible because", lambda c: c.excluded, md=lambda c: c.excluded, md_row=True, wrap=True))
    summary = (s.summary or s.reason).replace("**", "")
    target = s.target or "the search target"
    pts = [plots.Point(c.label, c.latency_ms, c.val_accuracy, c.precision, c.format)
           for c in s.candidates if c.latency_ms is not None]
    blocks: list[Any] = [Text.of(s.summary, only="md")]
    if summary:
        blocks.append(Text.of(summary, style="bad" if s.status == "failed" else "warn" if s.fallback else "note",
                              only="html"))
    if pts:
        blocks.append(Figure(lambda: plots.accuracy_latency(
            pts, f"Search candidates on {target}: validation accuracy vs p50", "p50 latency, batch 1, 1 thread (ms)",
            ylabel="validation accuracy (%)"), "search candidates"))
    blocks += [
        Text.of("Validation accuracy (never the test set) against the trained fp32 model; p50 at batch 1, 1 thread on "
                f"{s.target}. ★ = Pareto front (accuracy, size, latency), ✓ = within the budget.", only="md"),
        Text.of("Validation accuracy (the test set is never used to choose). ★: on the Pareto front over "
                "accuracy, size and latency (the plot's orange line is the 2-D accuracy/latency front). "
                "Not eligible: failed verification, not smaller or slower than the fp32 file of its format, or worse "
                "than its parent. Green row: chosen.", style="note", only="html"),
        Table(columns, s.candidates, lambda c: _row_class(chosen=c.id == s.chosen_id), only="html"),
        Table(columns, sorted(s.candidates, key=lambda c: c.bytes), only="md")]
    return Section("search", "Accuracy-budget search", tuple(blocks))


def mcu(report: Report) -> list[Section]:
    """One section per microcontroller target: the fit of every .tflite file (TFLM on this host) and the
    cross-compiled size of the chosen one."""
    out = []
    for sec in report.mcu:
        def name(b: BenchRow, md: bool) -> str:
            a = report.artifact(b.artifact_id)
            if not md:
                return a.label if a else b.artifact_id
            return _chosen((a.name or a.id) if a else b.artifact_id, b.artifact_id == report.chosen_id)

        def precision(b: BenchRow) -> str | None:
            a = report.artifact(b.artifact_id)
            return a.precision if a else None

        def fits(v: bool | None) -> str:
            return MD_DASH if v is None else ("yes" if v else "**no**")

        columns = (
            Column("artifact", lambda b: name(b, False), md=lambda b: name(b, True), md_row=True),
            Column("precision", precision, md=lambda b: precision(b) or "", md_row=True),
            Column("TFLM", lambda b: b.mcu.tflm_status),
            Column("agree with LiteRT %", lambda b: _pct(b.mcu.tflm_agreement), html=".2f", md=_percent,
                   md_header="agree with LiteRT", numeric=True),
            Column("arena KB", lambda b: _kb(b.mcu.arena_bytes), html=".2f", md=".1f", numeric=True),
            Column("RAM need KB", lambda b: _kb(b.mcu.ram_needed_bytes), html=".2f", md=".1f", numeric=True),
            Column("RAM margin KB", lambda b: _kb(b.mcu.ram_margin_bytes), html=".2f", md="+.1f", numeric=True),
            Column("flash need KB", lambda b: _kb(b.mcu.flash_needed_bytes), html=".2f", md=".1f", numeric=True),
            Column("flash margin KB", lambda b: _kb(b.mcu.flash_margin_bytes), html=".2f", md="+.1f", numeric=True),
            Column("fits", lambda b: b.mcu.fits, md=lambda b: fits(b.mcu.fits), md_row=True),
            Column("why not", lambda b: b.mcu.reason or (b.reason if not b.ok else ""),
                   md=lambda b: b.mcu.reason or (b.reason if not b.ok else ""), md_row=True, wrap=True))
        budget = f"{sec.ram_kb} KB RAM, {sec.flash_kb} KB flash" if sec.ram_kb is not None else "budgets unknown"
        blocks: list[Any] = [
            Text.of(MCU_NOTE, only="md"), Text.of(MCU_NOTE + " Green row: chosen artifact.", style="note", only="html"),
            Table(columns, fit_rows(report, sec.target), lambda b: _row_class(
                status="ok" if b.mcu.fits else "skipped", chosen=b.artifact_id == report.chosen_id))]
        cc = sec.cross_compile
        if cc is not None:
            blocks.append(Text.of(f"Cross-compiled examples/mcu for {cc.cpu or sec.cpu or 'the MCU'}: {cc.status}"
                                  + (f" ({cc.reason})" if cc.reason else "")
                                  + (f", {cc.toolchain}" if cc.toolchain else "") + ".", style="note"))
            if cc.size_output:
                blocks.append(Preformatted(cc.size_output))
        out.append(Section(f"mcu-{sec.target}", f"Microcontroller: {sec.target} ({budget}, {sec.runtime})",
                           tuple(blocks)))
    return out


def _drops_text(drops: Mapping[str, float]) -> str:
    return ", ".join(f"{float(k) * 100:g} %: {v:+.2f}" for k, v in sorted(drops.items(), key=lambda kv: float(kv[0])))


def analysis(report: Report) -> Section | None:
    """Per-layer sensitivity (``edgekit analyze``): the guilty layers first, as a table and a bar chart."""
    a = report.analysis
    if a is None:
        return None
    layers = a.guilty_first()
    title = "Per-layer sensitivity"
    budget = f" Budget: {a.budget_pp:g} pp of validation accuracy." if a.budget_pp is not None else ""
    note = Text.of("Validation-accuracy drop (pp) with only that layer pruned (by sparsity), with a fraction of its "
                   "filters removed (structured), or with only that layer in int8; the most sensitive layers first."
                   f"{budget} Protected layers were kept as they are.", style="note", only="html")
    if not layers:
        return Section("analysis", title, (note, Text.of("No layers analysed.")), only="html")
    worst = [s for s in layers if s.worst_drop_pp > 0] or layers
    columns = (
        Column("layer", lambda s: s.name), Column("op", lambda s: s.op),
        Column("params", lambda s: s.params, numeric=True), Column("MACs", lambda s: s.macs, numeric=True, md=False),
        Column("worst drop pp", lambda s: s.worst_drop_pp, html="+.2f", md="+.2f", numeric=True),
        Column("prune: sparsity → drop pp", lambda s: _drops_text(s.prune), md=False),
        Column("filters removed → drop pp", lambda s: _drops_text(s.structured), md=False),
        Column("int8 SNR dB", lambda s: s.quant.snr_db if s.quant else None, html=".1f", md=".1f", numeric=True),
        Column("int8 cosine", lambda s: s.quant.cosine if s.quant else None, html=".4f", numeric=True, md=False),
        Column("int8 drop pp", lambda s: s.quant.drop_pp if s.quant else None, html=".2f", numeric=True, md=False),
        Column("protected", lambda s: s.protected, md=lambda s: "yes" if s.protected else "", md_row=True),
        Column("why", lambda s: s.reason, md=lambda s: s.reason, md_row=True, wrap=True))
    md_budget = f" (budget {a.budget_pp:g} pp)" if a.budget_pp is not None else ""
    return Section("analysis", title, (
        note, Text.of("Validation-accuracy drop (pp) with only that layer changed; the most sensitive layers first.",
                      only="md"),
        Figure(lambda: plots.layer_sensitivity([s.name for s in worst], [s.worst_drop_pp for s in worst],
                                               [s.protected for s in worst], a.budget_pp), "per-layer sensitivity"),
        Table(columns, layers)), md_title=title + md_budget)


def tune(report: Report) -> Section | None:
    """Hyper-parameter tuning (``edgekit tune``): the executor, the best trial, validation accuracy per epoch."""
    t = report.tune
    if t is None:
        return None
    blocks: list[Any] = []
    ex = t.executor
    if ex is not None:
        blocks += [KeyValues((("executor", ex.kind), ("address", ex.address), ("nodes", ex.nodes),
                              ("workers", ex.workers))),
                   Text.of(f"Executor: {ex.kind}" + (f" at {ex.address}" if ex.address else "")
                           + (f", {ex.nodes} node(s)" if ex.nodes is not None else "")
                           + (f", {ex.workers} worker(s)" if ex.workers is not None else "") + ".", only="md")]
    best = t.best
    if best is not None:
        val = f"validation {best.val_accuracy * 100:.2f} %" if best.val_accuracy is not None else "no validation figure"
        test = f", test {best.test_accuracy * 100:.2f} % (measured once, for the winner)" \
            if best.test_accuracy is not None else ""
        blocks.append(Text.of("Best trial ", Strong(best.id), f": {val}{test}.", style="note"))
    curves = [(x.id, list(x.history)) for x in t.trials if x.history]
    if curves:
        blocks.append(Figure(lambda: plots.trial_histories(curves), "validation accuracy per epoch per trial"))

    def is_best(x: Any) -> bool:
        return best is not None and x.id == best.id

    columns = (
        Column("trial", lambda x: x.id, md=lambda x: _chosen(x.id, is_best(x), "best"), md_row=True),
        Column("config", lambda x: ", ".join(f"{k}={v}" for k, v in x.config.items()), wrap=True),
        Column("val accuracy %", lambda x: _pct(x.val_accuracy), html=".2f", md=_percent, md_header="val accuracy",
               numeric=True),
        Column("epochs run", lambda x: x.epochs_run, numeric=True, md_header="epochs"),
        Column("status", lambda x: x.status))
    blocks.append(Table(columns, t.trials, lambda x: _row_class(status=x.status, chosen=is_best(x)))
                  if t.trials else Text.of("No trials.", only="html"))
    return Section("tune", "Tuning trials", tuple(blocks), only=None if t.trials else "html")


def budget(report: Report) -> Section | None:
    """The accuracy budget (report.json's ``budget``): its rule, each file's check, decisions and notes."""
    data = report.extra.get("budget")
    if data is None:
        return None
    b = Budget.from_dict(data)
    columns = (
        Column("file", lambda c: c.name), Column("validation drop", lambda c: pp_text(c.drop_pp)),
        Column("upper bound", lambda c: pp_text(c.bound_pp)),
        Column("images lost / gained",
               lambda c: f"{c.lost} / {c.gained}" if c.lost is not None and c.gained is not None else MD_DASH),
        Column("within budget", lambda c: "yes" if c.within_budget else "no"))
    blocks: list[Any] = [Text.of(b.rule())]
    if b.checks:
        blocks.append(Table(columns, b.checks, lambda c: "" if c.within_budget else "regressed", cls="budget"))
    lists = [("Decisions", [f"{n}: {s}" for n, s in b.decisions]), ("Explicit values", list(b.explicit)),
             ("Not chosen", [f"{n}: {why}" for n, why in b.excluded.items()]),
             ("Within the budget (notes, not flags)", list(b.notes))]
    blocks += [Bullets(tuple(items), title=title) for title, items in lists if items]
    return Section("budget", "Accuracy budget", tuple(blocks))


def where_it_ran_section(ex: Executor | None) -> Section | None:
    """Where the run's parallel work ran (report.json's ``executor``)."""
    return None if ex is None else Section("executor", "Where it ran", (Text.of(where_it_ran(ex)),))


def problems(report: Report) -> Section | None:
    """report.md's list of problems (the page says them in its status box)."""
    if not report.problems:
        return None
    return Section("problems-list", "Problems", (Bullets(report.problems),), only="md")


# --------------------------------------------------------------------------- the page's own sections
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
        blocks.append(Figure(lambda pts=pts, title=title, xlabel=xlabel: plots.accuracy_latency(pts, title, xlabel),
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
    Column("zero weights %", lambda x: _pct(x.sparsity), html=".2f", numeric=True),
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
        tags = ((f"ver {v.status}", f"verified: {v.status}"),) if v is not None else ()
        tags += (("ver failed", "worse than parent"),) if a.id in flagged else ()
        kids = () if a.id in seen else tuple(node(c, seen | {a.id}) for c in children.get(a.id, []))
        return Node(a.stage or HTML_DASH, a.label, f"{a.precision} · {a.id} · {a.path or ''}", tags, kids)

    roots = tuple(node(a, frozenset()) for a in children.get(None, []))
    return Section("lineage", "Lineage", (Text.of("stage → artifact it produced, nested under its parent.",
                                                  style="note"), Tree(roots, "No artifacts.")), only="html")


BENCH_COLUMNS: tuple[Column, ...] = (
    Column("artifact", lambda c: c[1].label if c[1] else c[0].artifact_id),
    Column("precision", lambda c: c[1].precision if c[1] else None),
    Column("target", lambda c: c[0].target), Column("emulated", lambda c: c[0].emulated),
    Column("batch", lambda c: c[0].batch_size, numeric=True), Column("threads", lambda c: c[0].threads, numeric=True),
    Column("status", lambda c: c[0].status), Column("reason", lambda c: c[0].reason, wrap=True),
    Column("accuracy %", lambda c: _pct(c[0].accuracy), html=".2f", numeric=True),
    Column("agree vs ref. target %",  # vs itself is trivially 100 %
           lambda c: _pct(c[0].target_agreement) if c[0].reference_target not in (None, c[0].target) else None,
           html=".2f", numeric=True),
    Column("ref. target", lambda c: c[0].reference_target if c[0].reference_target != c[0].target else None),
    Column("agree vs parent %", lambda c: _pct(c[0].top1_agreement), html=".2f", numeric=True),
    *(Column(f"{k} ms", lambda c, k=k: getattr(c[0].latency_ms, k) if c[0].latency_ms else None, html=_latency,
             numeric=True) for k in ("p50", "p90", "p99", "std")),
    Column("throughput /s", lambda c: c[0].throughput_per_s, html=",.1f", numeric=True),
    Column("MACs / image", lambda c: c[0].macs_per_image, numeric=True),
    Column("% of peak", lambda c: c[0].percent_of_peak, html=".2f", numeric=True),
    Column("peak GMAC/s", lambda c: _peak(c[0]), wrap=True),
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
        Table(BENCH_COLUMNS, cells, lambda c: _row_class(c[0].emulated, c[0].status))), only="html")


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
    return Section("environment", "Environment", (KeyValues(tuple((k, text(v)) for k, v in items)),), only="html")


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


def sections(report: Report) -> list[Section]:
    """Every section of the report in page order (each renderer keeps those meant for it)."""
    out: list[Section | None] = [status(report), results(report)]
    if report.artifacts:
        out += [regressions(report), latency(report), sizes(report), layers(report), lineage(report)]
    elif report.regressions:  # a report without artifacts: the list in report.md only
        out.append(dataclasses.replace(regressions(report), only="md"))  # type: ignore[arg-type]
    out += [verification(report), not_run(report), search(report), *mcu(report), analysis(report), tune(report),
            budget(report), where_it_ran_section(report.executor), benchmarks(report), environment(report),
            problems(report)]
    return [s for s in out if s is not None]
