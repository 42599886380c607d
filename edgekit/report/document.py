"""The sections of a run's report, each written once for report.md and report.html.

Every function here reads the typed :class:`~edgekit.report.model.Report` and returns a
:class:`~edgekit.report.content.Section` (or None when the report has nothing for it): its title,
notes, lists and tables. A section whose data the report does not carry is left out or says so.
:func:`sections` puts them in page order with those only the page shows (:mod:`edgekit.report.page_sections`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgekit.report import page_sections as page
from edgekit.report import plots
from edgekit.report._fields import pct
from edgekit.report.cells import chosen_mark, kb, md_num, ms_text, percent, row_class, times
from edgekit.report.content import (
    MD_DASH,
    Badge,
    Bullets,
    Column,
    Figure,
    KeyValues,
    Preformatted,
    Section,
    Strong,
    Table,
    Text,
)
from edgekit.report.mcu import NOTE as MCU_NOTE
from edgekit.report.mcu import fit_rows
from edgekit.report.model import ArtifactRecord, BenchRow, Report
from edgekit.report.sections import Budget, Executor, pp_text, where_it_ran
from edgekit.report.table import ResultRow, results_table

FLAG_WORDS = {"larger": "larger", "slower": "slower", "less_accurate": "less accurate"}
"""How a regression kind reads in a table cell."""


def _emu(r: ResultRow) -> str:
    return " (emulated)" if r.emulated else ""


RESULT_COLUMNS: tuple[Column, ...] = (
    Column("artifact", lambda r: r.artifact.label, md=lambda r: chosen_mark(r.artifact.name or r.artifact.id, r.chosen),
           md_row=True),
    Column("format", lambda r: r.artifact.format),
    Column("precision", lambda r: r.artifact.precision),
    Column("size KB", lambda r: r.size_kb, html=",.1f", md=".1f", numeric=True),
    Column("× smaller", lambda r: r.x_smaller, html=times, md=lambda r: f"{md_num(r.x_smaller, '.2f')}×", md_row=True,
           numeric=True),
    Column("accuracy %", lambda r: r.accuracy_pct, html=".2f", md=percent, md_header="accuracy", numeric=True),
    Column("Δ pp vs baseline", lambda r: r.delta_pp, html="+.2f", md="+.2f", md_header="Δ pp", numeric=True),
    Column("p50 ms", lambda r: r.p50, html=ms_text, md=lambda r: f"{md_num(r.p50, '.3f')}{_emu(r)}", md_row=True,
           numeric=True),
    Column("p90 ms", lambda r: r.p90, html=ms_text, md=lambda r: f"{md_num(r.p90, '.3f')}{_emu(r)}", md_row=True,
           numeric=True),
    Column("best throughput /s", lambda r: r.throughput, html=",.1f", md=".0f", md_header="throughput/s",
           numeric=True),
    Column("% of peak", lambda r: r.percent_of_peak, html=".2f",
           md=lambda r: f"{md_num(r.percent_of_peak, '.1f')}{_emu(r)}", md_row=True, numeric=True),
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
        Table(RESULT_COLUMNS, rows, lambda r: row_class(bool(r.emulated and r.target), r.status, r.chosen,
                                                          bool(r.flags)))]
    if any(r.emulated and r.target for r in rows):
        blocks.append(Text.of(Badge("EMULATED", "emu"), " rows (italic) ran under an emulator: their latencies compare "
                              "artifacts with each other on that target only and are not device speed.",
                              style="note", only="html"))
    return Section("results", "Results (batch 1, 1 thread)", tuple(blocks), md_title="")


def regressions(report: Report) -> Section:
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
    """Each artifact against its parent model (``edgekit.rules.parity``)."""
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
        Column("top-1 agreement", lambda a: pct(a.verification.top1_agreement), md=percent),
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
        Column("candidate", lambda c: c.label, md=lambda c: chosen_mark(c.name, c.id == s.chosen_id), md_row=True),
        Column("format", lambda c: c.format),
        Column("precision", lambda c: c.precision),
        Column("size KB", lambda c: c.bytes / 1024, html=",.1f", md=".1f", md_header="KB", numeric=True),
        Column("val accuracy %", lambda c: c.val_accuracy * 100, html=".2f", md=percent, md_header="val accuracy",
               numeric=True),
        Column("val drop pp", lambda c: c.val_drop_pp, html="+.2f", md="+.2f", numeric=True),
        Column("p50 ms", lambda c: c.latency_ms, html=ms_text, md=".3f", numeric=True),
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
        Table(columns, s.candidates, lambda c: row_class(chosen=c.id == s.chosen_id), only="html"),
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
            return chosen_mark((a.name or a.id) if a else b.artifact_id, b.artifact_id == report.chosen_id)

        def precision(b: BenchRow) -> str | None:
            a = report.artifact(b.artifact_id)
            return a.precision if a else None

        def fits(v: bool | None) -> str:
            return MD_DASH if v is None else ("yes" if v else "**no**")

        columns = (
            Column("artifact", lambda b: name(b, False), md=lambda b: name(b, True), md_row=True),
            Column("precision", precision, md=lambda b: precision(b) or "", md_row=True),
            Column("TFLM", lambda b: b.mcu.tflm_status),
            Column("agree with LiteRT %", lambda b: pct(b.mcu.tflm_agreement), html=".2f", md=percent,
                   md_header="agree with LiteRT", numeric=True),
            Column("arena KB", lambda b: kb(b.mcu.arena_bytes), html=".2f", md=".1f", numeric=True),
            Column("RAM need KB", lambda b: kb(b.mcu.ram_needed_bytes), html=".2f", md=".1f", numeric=True),
            Column("RAM margin KB", lambda b: kb(b.mcu.ram_margin_bytes), html=".2f", md="+.1f", numeric=True),
            Column("flash need KB", lambda b: kb(b.mcu.flash_needed_bytes), html=".2f", md=".1f", numeric=True),
            Column("flash margin KB", lambda b: kb(b.mcu.flash_margin_bytes), html=".2f", md="+.1f", numeric=True),
            Column("fits", lambda b: b.mcu.fits, md=lambda b: fits(b.mcu.fits), md_row=True),
            Column("why not", lambda b: b.mcu.reason or (b.reason if not b.ok else ""),
                   md=lambda b: b.mcu.reason or (b.reason if not b.ok else ""), md_row=True, wrap=True))
        budget = f"{sec.ram_kb} KB RAM, {sec.flash_kb} KB flash" if sec.ram_kb is not None else "budgets unknown"
        blocks: list[Any] = [
            Text.of(MCU_NOTE, only="md"), Text.of(MCU_NOTE + " Green row: chosen artifact.", style="note", only="html"),
            Table(columns, fit_rows(report, sec.target), lambda b: row_class(
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
        Column("trial", lambda x: x.id, md=lambda x: chosen_mark(x.id, is_best(x), "best"), md_row=True),
        Column("config", lambda x: ", ".join(f"{k}={v}" for k, v in x.config.items()), wrap=True),
        Column("val accuracy %", lambda x: pct(x.val_accuracy), html=".2f", md=percent, md_header="val accuracy",
               numeric=True),
        Column("epochs run", lambda x: x.epochs_run, numeric=True, md_header="epochs"),
        Column("status", lambda x: x.status))
    blocks.append(Table(columns, t.trials, lambda x: row_class(status=x.status, chosen=is_best(x)))
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
    blocks: list[Any] = [Text.of(b.rule())] + [Text.of(line) for line in b.reference]
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


def sections(report: Report) -> list[Section]:
    """Every section of the report in page order (each renderer keeps those meant for it)."""
    out: list[Section | None] = [page.status(report), results(report)]
    if report.artifacts:
        out += [regressions(report), page.latency(report), page.sizes(report), page.layers(report),
                page.lineage(report)]
    elif report.regressions:  # a report without artifacts: the list in report.md only
        out.append(dataclasses.replace(regressions(report), only="md"))
    out += [verification(report), not_run(report), search(report), *mcu(report), analysis(report), tune(report),
            budget(report), where_it_ran_section(report.executor), page.benchmarks(report), page.environment(report),
            problems(report)]
    return [s for s in out if s is not None]
