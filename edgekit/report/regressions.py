"""Never hand out something worse than its parent: the one judging rule, and the flags it raises.

**The rule**, used by the chooser (:mod:`edgekit.search`, via :func:`within_budget` and
:func:`baseline_exclusion`), the budgeted stages (:func:`edgekit.compression.budget.budget_check`) and the
reports' "worse than parent" flags (:func:`judge`):

1. *Accuracy is judged against the budget*, cumulatively against the trained fp32 model. For choosing: the
   one-sided upper confidence bound of the validation drop (:func:`edgekit.compression.budget.paired_drop_bound`,
   so a small validation set gets a wide margin); in reports: the test accuracy as measured. The bound is the
   paired Wald bound (drop + 1.645 standard errors of a paired difference) with a monotone envelope: never below
   the point drop, never worse for a file that gains an image more, and with a margin even when every flipped
   image is a loss. The fp32 baselines (plain exports, verified numerically against the trained model) are judged on their
   point drop when handed out as the fallback. Within the budget, a drop against the parent is a *note* ("-0.40 pp
   vs parent, within the 1 pp budget"), not a flag and not an exclusion; outside the budget it is a
   ``less_accurate`` flag and excludes the file.
2. *Size and speed are judged against the fp32 baseline of the same format* (the plain export of the trained
   model): the chosen file must be smaller than it and not slower than it (batch-1 p50 within
   :attr:`Tolerance.latency_ratio`, at the same thread count: 1 where both ran it, else the fewest both ran) on the
   target it is chosen for. With benchmarking on, a file (or baseline) without an ok batch-1 row there is excluded:
   its speed is unknown. Without benchmarking (``--no-bench``) or on a microcontroller target (no latency is
   measured there) only the size is judged, and the choice says "speed not checked".
3. Larger or slower than its parent (an int8 file larger than the sparse fp32 file of the same pruned model) is
   flagged in every report, honestly, but does not exclude a file that passes 2.

Without a budget (``edgekit bench``: no trained model), accuracy falls back to :attr:`Tolerance.accuracy_pp`
against the reference.

Each artifact is compared with its *reference*: the nearest model up its ``parent_id`` chain in the
same format. A file converted from a Keras model has a Keras parent, so its reference is the fp32
file of its own format made from that parent (an int8 .tflite against the fp32 .tflite of the same
pruned Keras model), or, where there is none, from the parent's own ancestors. Sizes and latencies
are only compared within one format; accuracy falls back to the direct parent when nothing of the
same format exists (an fp32 export against the Keras model it came from).

Latency is the p50 at batch 1 with the same thread count (1 where both have it), per target, on
rows that ran. Accuracy is compared per target where both artifacts ran there (int8 kernels differ
by target), else from the artifacts' own figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

from edgekit.report.model import ArtifactRecord, BenchRow, Regression

if TYPE_CHECKING:
    from edgekit.artifact import Artifact

Metric = Literal["accuracy", "val_accuracy"]


@dataclass(frozen=True)
class Tolerance:
    """How much worse counts as worse (measurement noise stays below these)."""

    size_ratio: float = 1.01
    """Larger: more than 1 % more bytes (a few bytes of metadata are not a regression)."""
    latency_ratio: float = 1.05
    """Slower: a p50 more than 5 % above the reference's (timing noise on a shared CPU)."""
    accuracy_pp: float = 0.5
    """Less accurate: more than 0.5 percentage points below (one image in 200)."""


def within_budget(drop_pp: float, budget_pp: float) -> bool:
    """Rule 1: a drop (pp against the trained model; for choosing, its upper confidence bound) within the budget."""
    return drop_pp <= budget_pp + 1e-9


def budget_note(drop_vs_parent_pp: float, budget_pp: float) -> str:
    """Rule 1's note for a within-budget drop against the parent, e.g. '-0.40 pp vs parent, within the 1 pp budget'."""
    return f"{-drop_vs_parent_pp:+.2f} pp vs parent, within the {budget_pp:g} pp budget"


def baseline_exclusion(fmt: str, size: int, latency_ms: float | None, base_size: int, base_latency_ms: float | None,
                       target: str, tolerance: Tolerance = Tolerance(), *, check_speed: bool = True) -> str | None:
    """Rule 2: why a file may not be chosen against the fp32 baseline of its format on ``target`` (None: it may):
    not smaller, or slower at batch 1 (beyond :attr:`Tolerance.latency_ratio`).

    ``latency_ms`` and ``base_latency_ms`` are batch-1 p50s at the same thread count (:func:`batch1_pair`). With
    ``check_speed`` (benchmarking on), a missing figure excludes the file: a benchmark that failed or was skipped
    proves nothing, so the file is not shown to be as fast as the baseline. Without it (no benchmark run) only the
    size decides, and the chooser says that speed was not checked.
    """
    if size >= base_size:
        return f"not smaller than the fp32 {fmt} baseline ({size:,} ≥ {base_size:,} bytes)"
    if not check_speed:
        return None
    if latency_ms is None:
        return (f"speed unknown: no ok batch-1 benchmark on {target} at a thread count the fp32 {fmt} baseline "
                "also ran, so it is not shown to be as fast as the baseline")
    if base_latency_ms is None:
        return f"speed unknown: the fp32 {fmt} baseline has no ok batch-1 benchmark on {target} to compare with"
    if latency_ms > base_latency_ms * tolerance.latency_ratio:
        return (f"slower than the fp32 {fmt} baseline on {target} at batch 1 "
                f"(p50 {latency_ms:.3f} vs {base_latency_ms:.3f} ms)")
    return None


def common_threads(mine: Iterable[int], theirs: Iterable[int]) -> int | None:
    """The thread count two files are compared at: 1 where both ran it, else the smallest both ran (None: none)."""
    both = set(mine) & set(theirs)
    return None if not both else 1 if 1 in both else min(both)


def batch1_p50(rows: Iterable[BenchRow], target: str) -> dict[int, float]:
    """Thread count → batch-1 p50 (ms) of the ok rows on ``target``."""
    return {threads: row.p50 for (t, threads), row in _batch1(rows).items() if t == target and row.p50 is not None}


def batch1_pair(rows: Iterable[BenchRow], ref_rows: Iterable[BenchRow],
                target: str) -> tuple[float | None, float | None, int | None]:
    """Batch-1 p50s of a file and of its reference on ``target`` at the thread count of :func:`common_threads`, and
    that count. Without a common count (count None): a file without an ok row there has None, and where both ran
    but at different counts the file's figure is None (nothing comparable); the others' is their own (1 thread,
    else their fewest)."""
    mine, theirs = batch1_p50(rows, target), batch1_p50(ref_rows, target)
    threads = common_threads(mine, theirs)
    if threads is not None:
        return mine[threads], theirs[threads], threads
    own, ref_own = common_threads(mine, mine), common_threads(theirs, theirs)
    return (mine[own] if own is not None and ref_own is None else None,
            theirs[ref_own] if ref_own is not None else None, None)


def reference_of(artifact: ArtifactRecord, by_id: Mapping[str, ArtifactRecord],
                 children: Mapping[str, Sequence[ArtifactRecord]]) -> ArtifactRecord | None:
    """The artifact ``artifact`` should improve on in its own format, walking up ``parent_id``; None if none."""
    seen = {artifact.id}
    parent = by_id.get(artifact.parent_id or "")
    while parent is not None and parent.id not in seen:
        seen.add(parent.id)
        if parent.format == artifact.format:
            return parent
        siblings = [c for c in children.get(parent.id, ()) if c.id != artifact.id and c.format == artifact.format
                    and c.precision == "fp32" and artifact.id not in _ancestors(c, by_id)]
        if siblings:
            return min(siblings, key=lambda c: (not c.stage.startswith("export."), c.id))
        parent = by_id.get(parent.parent_id or "")
    return None


def _ancestors(a: ArtifactRecord, by_id: Mapping[str, ArtifactRecord]) -> set[str]:
    out: set[str] = set()
    p = by_id.get(a.parent_id or "")
    while p is not None and p.id not in out:
        out.add(p.id)
        p = by_id.get(p.parent_id or "")
    return out


def _name(a: ArtifactRecord) -> str:
    return f"{a.name or a.label} ({a.precision} {a.format})"


def _batch1(rows: Iterable[BenchRow]) -> dict[tuple[str, int], BenchRow]:
    return {(r.target, r.threads): r for r in rows if r.ok and r.batch_size == 1 and r.threads is not None
            and r.p50 is not None}


def _slower(a: ArtifactRecord, ref: ArtifactRecord, rows_a: list[BenchRow], rows_ref: list[BenchRow],
            tol: Tolerance) -> list[Regression]:
    mine, theirs = _batch1(rows_a), _batch1(rows_ref)
    by_target: dict[str, list[int]] = defaultdict(list)
    for target, threads in mine:
        if (target, threads) in theirs:
            by_target[target].append(threads)
    out = []
    for target, counts in by_target.items():
        threads = common_threads(counts, counts)
        assert threads is not None
        row, ref_row = mine[(target, threads)], theirs[(target, threads)]
        v, r = row.p50, ref_row.p50
        assert v is not None and r is not None
        if v > r * tol.latency_ratio:
            emu = " (emulated)" if row.emulated else ""
            out.append(Regression(
                a.id, ref.id, "slower", v, r, "ms",
                f"{_name(a)} slower than {_name(ref)} on {target}{emu}: p50 {v:.3f} vs {r:.3f} ms "
                f"(batch 1, {threads} thread{'s' if threads != 1 else ''})", target, 1, threads))
    return out


def _on_target_accuracy(rows: Iterable[BenchRow]) -> dict[str, float]:
    return {r.target: r.accuracy for r in rows if r.ok and r.accuracy is not None}


def _less_accurate(a: ArtifactRecord, ref: ArtifactRecord, rows_a: list[BenchRow], rows_ref: list[BenchRow],
                   metric: Metric, tol: Tolerance, trained: ArtifactRecord | None = None,
                   budget_pp: float | None = None) -> tuple[list[Regression], list[tuple[str, str]]]:
    """Rule 1: with a budget and the ``trained`` model, a drop against ``ref`` is flagged only when the drop against
    the trained model is outside the budget, else noted; without them, flagged past ``tol.accuracy_pp``."""
    pairs: list[tuple[str | None, float, float]] = []
    if metric == "accuracy":
        mine, theirs = _on_target_accuracy(rows_a), _on_target_accuracy(rows_ref)
        pairs = [(t, mine[t], theirs[t]) for t in mine if t in theirs]
    if not pairs:
        v, r = getattr(a, metric), getattr(ref, metric)
        if v is not None and r is not None:
            pairs = [(None, v, r)]
    what = "test accuracy" if metric == "accuracy" else "validation accuracy"
    top = getattr(trained, metric) if trained is not None and budget_pp is not None else None
    out: list[Regression] = []
    notes: list[tuple[str, str]] = []
    for target, v, r in pairs:
        where = f" on {target}" if target else ""
        drop = (r - v) * 100.0
        message = f"{_name(a)} less accurate than {_name(ref)}{where}: {what} {v * 100:.2f} vs {r * 100:.2f} %"
        if top is not None and budget_pp is not None:
            total = (top - v) * 100.0
            if drop <= 1e-9:
                continue
            if within_budget(total, budget_pp):
                notes.append((a.id, f"{_name(a)}{where}: {budget_note(drop, budget_pp)}"))
                continue
            message += f" ({total:.2f} pp below the trained model: outside the {budget_pp:g} pp budget)"
        elif drop <= tol.accuracy_pp:
            continue
        out.append(Regression(a.id, ref.id, "less_accurate", v * 100.0, r * 100.0, "%", message, target))
    return out, notes


def judge(artifacts: Sequence[ArtifactRecord], rows: Sequence[BenchRow], *, metric: Metric = "accuracy",
          tolerance: Tolerance = Tolerance(),
          budget_pp: float | None = None) -> tuple[tuple[Regression, ...], tuple[tuple[str, str], ...]]:
    """The rule (module doc) on every artifact: its flags (larger, slower per target, less accurate) and its notes
    (``(artifact id, sentence)``: a drop against its parent within ``budget_pp``).

    ``metric`` is the accuracy compared: ``"accuracy"`` (test, per target where measured) for reports,
    ``"val_accuracy"`` (the test set never chooses). ``budget_pp`` (pp against the artifact with stage ``train``)
    turns on rule 1; without it, less accurate means more than ``tolerance.accuracy_pp`` below the reference.
    """
    by_id = {a.id: a for a in artifacts}
    trained = next((a for a in artifacts if a.stage == "train"), None)
    children: dict[str, list[ArtifactRecord]] = defaultdict(list)
    for a in artifacts:
        if a.parent_id:
            children[a.parent_id].append(a)
    rows_of: dict[str, list[BenchRow]] = defaultdict(list)
    for row in rows:
        rows_of[row.artifact_id].append(row)
    out: list[Regression] = []
    notes: list[tuple[str, str]] = []
    for a in artifacts:
        ref = reference_of(a, by_id, children)
        if ref is not None:
            if a.bytes is not None and ref.bytes is not None and a.bytes > ref.bytes * tolerance.size_ratio:
                out.append(Regression(a.id, ref.id, "larger", a.bytes / 1024, ref.bytes / 1024, "KB",
                                      f"{_name(a)} larger than {_name(ref)}: {a.bytes / 1024:.1f} vs "
                                      f"{ref.bytes / 1024:.1f} KB"))
            out += _slower(a, ref, rows_of[a.id], rows_of[ref.id], tolerance)
        acc_ref = ref or by_id.get(a.parent_id or "")
        if acc_ref is not None:
            flags, noted = _less_accurate(a, acc_ref, rows_of[a.id], rows_of[acc_ref.id], metric, tolerance, trained,
                                          budget_pp)
            out += flags
            notes += noted
    return tuple(out), tuple(notes)


def find_regressions(artifacts: Sequence[ArtifactRecord], rows: Sequence[BenchRow], *,
                     metric: Metric = "accuracy", tolerance: Tolerance = Tolerance(),
                     budget_pp: float | None = None) -> tuple[Regression, ...]:
    """Every way each artifact is worse than its reference (the flags of :func:`judge`)."""
    return judge(artifacts, rows, metric=metric, tolerance=tolerance, budget_pp=budget_pp)[0]


def regressions_for_artifacts(artifacts: Sequence[Artifact], rows: Sequence[Mapping[str, Any]], *,
                              metric: Metric = "val_accuracy", tolerance: Tolerance = Tolerance(),
                              budget_pp: float | None = None) -> tuple[Regression, ...]:
    """:func:`find_regressions` on pipeline objects: ``edgekit.artifact.Artifact`` and benchmark row dicts.

    Accuracies come from each artifact's ``metrics`` (``accuracy`` / ``val_accuracy``); sizes from its file.
    """
    from edgekit.fsutil import file_bytes

    records = [ArtifactRecord(id=a.id, format=a.format, precision=a.precision, name=a.name, stage=a.stage,
                              bytes=file_bytes(a.path) if a.path.exists() else None, parent_id=a.parent_id,
                              accuracy=_float(a.metrics.get("accuracy")),
                              val_accuracy=_float(a.metrics.get("val_accuracy")))
               for a in artifacts]
    return find_regressions(records, [BenchRow.from_dict(r) for r in rows], metric=metric, tolerance=tolerance,
                            budget_pp=budget_pp)


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None
