"""``report.md``: the results table people read, regressions, verification, search and problems."""

from __future__ import annotations

from typing import Any, Mapping

from edgekit.report.mcu import render_markdown as mcu_markdown
from edgekit.report.model import Report
from edgekit.report.sections import budget_markdown
from edgekit.report.sections import where_it_ran_markdown
from edgekit.report.table import results_table

FLAG_WORDS = {"larger": "larger", "slower": "slower", "less_accurate": "less accurate"}
"""How a regression kind reads in a table cell."""


def _fmt(v: float | None, spec: str, none: str = "–") -> str:
    return none if v is None else format(v, spec)


def status_line(report: Report) -> str:
    """``ok``, ``failed``, or ``ok, 1 warning``: the run's status as the title says it."""
    n = len(report.warnings)
    return report.status + (f", {n} warning{'s' if n != 1 else ''}" if n else "")


def render_table(report: Report | Mapping[str, Any]) -> str:
    """The results table in Markdown."""
    report = Report.coerce(report)
    head = ("| artifact | format | precision | size KB | × smaller | accuracy | Δ pp | p50 ms | p90 ms | "
            "throughput/s | % of peak | provider | target | worse than parent |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in results_table(report):
        a = r.artifact
        emu = " (emulated)" if r.emulated else ""
        status = "" if r.status in ("ok", "") else f" ({r.status})"
        chosen = " **(chosen)**" if r.chosen else ""
        acc = f"{_fmt(r.accuracy_pct, '.2f')} %" if r.accuracy_pct is not None else "–"
        lines.append(
            f"| {a.name or a.id}{chosen} | {a.format} | {a.precision} | {_fmt(r.size_kb, '.1f')} | "
            f"{_fmt(r.x_smaller, '.2f')}× | {acc} | {_fmt(r.delta_pp, '+.2f')} | "
            f"{_fmt(r.p50, '.3f')}{emu} | {_fmt(r.p90, '.3f')}{emu} | {_fmt(r.throughput, '.0f')} | "
            f"{_fmt(r.percent_of_peak, '.1f')}{emu} | "
            f"{r.provider or ''}{status} | {r.target or ''} | {', '.join(FLAG_WORDS[f] for f in r.flags)} |")
    return "\n".join(lines)


def _analysis(report: Report) -> list[str]:
    analysis = report.analysis
    if analysis is None or not analysis.layers:
        return []
    budget = f" (budget {analysis.budget_pp:g} pp)" if analysis.budget_pp is not None else ""
    lines = ["## Per-layer sensitivity" + budget, "",
             "Validation-accuracy drop (pp) with only that layer changed; the most sensitive layers first.", "",
             "| layer | op | params | worst drop pp | int8 SNR dB | protected | why |", "|---|---|---|---|---|---|---|"]
    for s in analysis.guilty_first():
        snr = s.quant.snr_db if s.quant else None
        lines.append(f"| {s.name} | {s.op} | {s.params if s.params is not None else '–'} | {s.worst_drop_pp:+.2f} | "
                     f"{_fmt(snr, '.1f')} | {'yes' if s.protected else ''} | {s.reason} |")
    return lines + [""]


def _tune(report: Report) -> list[str]:
    tune = report.tune
    if tune is None or not tune.trials:
        return []
    lines = ["## Tuning trials", ""]
    if tune.executor is not None:
        lines += [f"Executor: {tune.executor.kind}"
                  + (f" at {tune.executor.address}" if tune.executor.address else "")
                  + (f", {tune.executor.nodes} node(s)" if tune.executor.nodes is not None else "")
                  + (f", {tune.executor.workers} worker(s)" if tune.executor.workers is not None else "") + ".", ""]
    best = tune.best
    if best is not None:
        val = f"validation {best.val_accuracy * 100:.2f} %" if best.val_accuracy is not None else "no validation figure"
        test = f", test {best.test_accuracy * 100:.2f} % (measured once, for the winner)" \
            if best.test_accuracy is not None else ""
        lines += [f"Best trial **{best.id}**: {val}{test}.", ""]
    lines += ["| trial | config | val accuracy | epochs | status |", "|---|---|---|---|---|"]
    for t in tune.trials:
        config = ", ".join(f"{k}={v}" for k, v in t.config.items())
        acc = f"{t.val_accuracy * 100:.2f} %" if t.val_accuracy is not None else "–"
        mark = " **(best)**" if best is not None and t.id == best.id else ""
        lines.append(f"| {t.id}{mark} | {config} | {acc} | {t.epochs_run if t.epochs_run is not None else '–'} | {t.status} |")
    return lines + [""]


def render_markdown(report: Report | Mapping[str, Any]) -> str:
    """The whole ``report.md``."""
    report = Report.coerce(report)
    ds = report.dataset
    lines = [
        f"# edgekit report ({status_line(report)})",
        "",
        f"Dataset **{ds.name}** ({ds.train_size} train / {ds.val_size or 0} validation / {ds.test_size} test), "
        f"seed {report.seed}, edgekit {report.edgekit_version}.",
        "",
    ]
    if report.warnings:
        lines += [f"**Warning:** {w}" for w in report.warnings] + [""]
    if report.artifacts:  # a tune-only report has none
        lines += [
            "Latency: p50/p90 at batch 1 with 1 thread; throughput: the best over the batch sizes and thread counts "
            "measured. × smaller: against the fp32 model of the same format. Δ pp: test accuracy (on that target) "
            "against the trained fp32 model. Worse than parent: see below.",
            "",
            render_table(report),
            "",
        ]
    if report.regressions:
        lines += ["## Worse than the model they were made from", ""]
        lines += [f"- {g.message}" for g in report.regressions] + [""]
    verified = [a for a in report.artifacts if a.verification is not None]
    if verified:
        lines += ["## Verification against the parent model", "",
                  "| artifact | parent | max abs diff | top-1 agreement | Δ accuracy pp | status |", "|---|---|---|---|---|---|"]
        for a in verified:
            v = a.verification
            assert v is not None
            parent = report.artifact(v.parent_id)
            agree = f"{v.top1_agreement * 100:.2f} %" if v.top1_agreement is not None else "–"
            lines.append(f"| {a.name} | {parent.name if parent else v.parent_id} | {_fmt(v.max_abs_diff, '.2e')} | "
                         f"{agree} | {_fmt(v.accuracy_delta_pp, '+.2f')} | {v.status} {v.reason} |")
        lines.append("")
    skipped = sorted({(r.target, r.status, r.reason) for r in report.benchmarks if not r.ok})
    if skipped:
        lines += ["## Benchmarks not run", ""] + [f"- {t}: {s} — {why}" for t, s, why in skipped] + [""]
    if report.search is not None:
        s = report.search
        lines += ["## Accuracy-budget search", "", s.summary, "",
                  "Validation accuracy (never the test set) against the trained fp32 model; p50 at batch 1, 1 thread on "
                  f"{s.target}. ★ = Pareto front (accuracy, size, latency), ✓ = within the budget.", "",
                  "| candidate | format | precision | KB | val accuracy | val drop pp | p50 ms | front | budget | "
                  "not eligible because |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in sorted(s.candidates, key=lambda c: c.bytes):
            mark = " **(chosen)**" if c.id == s.chosen_id else ""
            lines.append(f"| {c.name}{mark} | {c.format} | {c.precision} | {c.bytes / 1024:.1f} | "
                         f"{c.val_accuracy * 100:.2f} % | {c.val_drop_pp:+.2f} | {_fmt(c.latency_ms, '.3f')} | "
                         f"{'★' if c.on_front else ''} | {'✓' if c.within_budget else ''} | {c.excluded} |")
        lines.append("")
    lines += _analysis(report) + _tune(report) + mcu_markdown(report)
    lines += budget_markdown(report.extra.get("budget"))
    lines += where_it_ran_markdown(report.executor)
    if report.problems:
        lines += ["## Problems", ""] + [f"- {p}" for p in report.problems] + [""]
    return "\n".join(lines)
