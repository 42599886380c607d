"""The one results table of a report: one row per artifact and target, read by report.md and report.html alike."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.report.model import ArtifactRecord, BenchRow, Report


@dataclass(frozen=True)
class ResultRow:
    """One artifact on one target (``target`` None: never benchmarked, e.g. a Keras model).

    Latency is the p50/p90 at batch 1 with 1 thread (the fewest threads measured where 1 was not).
    ``percent_of_peak`` is the best over the cells that ran: the model's MACs × images/s ÷ the GEMM
    peak measured there (empty, with ``peak_reason``, when it could not be measured).
    Accuracy is the one measured on that target (int8 kernels differ by target), the artifact's own
    where it was not benchmarked, and none under a target that did not run it. ``x_smaller`` is
    against the fp32 model of the same format; ``delta_pp`` against the trained fp32 model.
    """

    artifact: ArtifactRecord
    target: str | None
    status: str  # ok | skipped | failed; "" when not benchmarked
    reason: str
    emulated: bool
    provider: str | None
    threads: int | None
    size_kb: float | None
    x_smaller: float | None
    accuracy_pct: float | None
    delta_pp: float | None
    p50: float | None
    p90: float | None
    throughput: float | None
    chosen: bool
    baseline: bool
    flags: tuple[str, ...]  # regression kinds for this artifact here: larger, slower, less_accurate
    percent_of_peak: float | None = None  # the best over the cells that ran (see best_percent_of_peak)
    peak_reason: str = ""  # why there is none, when cells ran

    @property
    def label(self) -> str:
        return self.artifact.label


def reference_ids(report: Report) -> dict[str, str]:
    """Format → id of the fp32 reference: the trained model and its direct fp32 exports."""
    refs: dict[str, str] = {}
    for a in report.artifacts:
        if a.id == report.baseline_id:
            refs[a.format] = a.id
        elif a.parent_id == report.baseline_id and a.precision == "fp32" and a.stage.startswith("export."):
            refs.setdefault(a.format, a.id)
    return refs


def best_throughput(rows: list[BenchRow]) -> float | None:
    """The highest throughput over the batch sizes and thread counts that ran."""
    vals = [r.throughput_per_s for r in rows if r.ok and r.throughput_per_s]
    return max(vals) if vals else None


def best_percent_of_peak(rows: list[BenchRow]) -> tuple[float | None, str]:
    """The highest % of peak over the cells that ran (each against its own thread count's peak), else why none."""
    vals = [r.percent_of_peak for r in rows if r.ok and r.percent_of_peak is not None]
    if vals:
        return max(vals), ""
    return None, next((r.peak_reason for r in rows if r.ok and r.peak_reason), "")


def _headline_row(rows: list[BenchRow]) -> BenchRow:
    """The batch-1 row with 1 thread (else the fewest threads); any row where batch 1 was not measured."""
    batch1 = [r for r in rows if r.batch_size == 1]
    pool = batch1 or rows
    return min(pool, key=lambda r: (r.threads != 1, r.threads if r.threads is not None else 1 << 30))


def results_table(report: Report) -> list[ResultRow]:
    """The results table: artifacts in report order, each once per target it has benchmark rows on."""
    refs = reference_ids(report)
    by_id = {a.id: a for a in report.artifacts}
    base = report.baseline
    base_acc = base.accuracy if base else None
    order = {t: i for i, t in enumerate(report.target_names())}
    out: list[ResultRow] = []
    for a in report.artifacts:
        ref = by_id.get(refs.get(a.format, ""))
        size_kb = a.bytes / 1024 if a.bytes is not None else None
        x_smaller = ref.bytes / a.bytes if ref is not None and ref.bytes and a.bytes else None
        regressions = report.regressions_of(a.id)
        rows = report.rows_for(a.id)
        targets = sorted(dict.fromkeys(r.target for r in rows), key=lambda t: order.get(t, len(order)))
        shown: list[str | None] = list(targets) if targets else [None]
        for target in shown:
            here = [r for r in rows if r.target == target]
            head = _headline_row(here) if here else None
            if head is None:
                acc = a.accuracy
            elif head.ok:
                acc = head.accuracy if head.accuracy is not None else a.accuracy
            else:
                acc = None  # no CPU-measured figure under a target that did not run
            flags = tuple(dict.fromkeys(g.kind for g in regressions if g.target in (None, target)))
            peak_pct, peak_reason = best_percent_of_peak(here)
            out.append(ResultRow(
                artifact=a, target=target, status=head.status if head else "", reason=head.reason if head else "",
                emulated=head.emulated if head else False, provider=head.provider if head else None,
                threads=head.threads if head else None, size_kb=size_kb, x_smaller=x_smaller,
                accuracy_pct=acc * 100 if acc is not None else None,
                delta_pp=(acc - base_acc) * 100 if acc is not None and base_acc is not None else None,
                p50=head.p50 if head and head.ok else None,
                p90=head.latency_ms.p90 if head and head.ok and head.latency_ms else None,
                throughput=best_throughput(here), chosen=a.id == report.chosen_id, baseline=a.id == report.baseline_id,
                flags=flags, percent_of_peak=peak_pct, peak_reason=peak_reason))
    return out
