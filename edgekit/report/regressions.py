"""Never hand out something worse than its parent: find artifacts that are larger, slower or less accurate.

Each artifact is compared with its *reference*: the nearest model up its ``parent_id`` chain in the
same format. A file converted from a Keras model has a Keras parent, so its reference is the fp32
file of its own format made from that parent (an int8 .tflite against the fp32 .tflite of the same
pruned Keras model), or, where there is none, from the parent's own ancestors. Sizes and latencies
are only compared within one format; accuracy falls back to the direct parent when nothing of the
same format exists (an fp32 export against the Keras model it came from).

Latency is the p50 at batch 1 with the same thread count (1 where both have it), per target, on
rows that ran. Accuracy is compared per target where both artifacts ran there (int8 kernels differ
by target), else from the artifacts' own figures. The chooser (``edgekit.search``) calls
:func:`regressions_for_artifacts` with validation accuracy; reports use test accuracy.
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
        threads = 1 if 1 in counts else min(counts)
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
                   metric: Metric, tol: Tolerance) -> list[Regression]:
    pairs: list[tuple[str | None, float, float]] = []
    if metric == "accuracy":
        mine, theirs = _on_target_accuracy(rows_a), _on_target_accuracy(rows_ref)
        pairs = [(t, mine[t], theirs[t]) for t in mine if t in theirs]
    if not pairs:
        v, r = getattr(a, metric), getattr(ref, metric)
        if v is not None and r is not None:
            pairs = [(None, v, r)]
    what = "test accuracy" if metric == "accuracy" else "validation accuracy"
    out = []
    for target, v, r in pairs:
        if (r - v) * 100.0 > tol.accuracy_pp:
            where = f" on {target}" if target else ""
            out.append(Regression(a.id, ref.id, "less_accurate", v * 100.0, r * 100.0, "%",
                                  f"{_name(a)} less accurate than {_name(ref)}{where}: {what} "
                                  f"{v * 100:.2f} vs {r * 100:.2f} %", target))
    return out


def find_regressions(artifacts: Sequence[ArtifactRecord], rows: Sequence[BenchRow], *,
                     metric: Metric = "accuracy", tolerance: Tolerance = Tolerance()) -> tuple[Regression, ...]:
    """Every way each artifact is worse than its reference: larger, slower (per target) or less accurate.

    ``metric`` is the accuracy compared: ``"accuracy"`` (test, per target where measured) for
    reports, ``"val_accuracy"`` for choosing (the test set never chooses).
    """
    by_id = {a.id: a for a in artifacts}
    children: dict[str, list[ArtifactRecord]] = defaultdict(list)
    for a in artifacts:
        if a.parent_id:
            children[a.parent_id].append(a)
    rows_of: dict[str, list[BenchRow]] = defaultdict(list)
    for row in rows:
        rows_of[row.artifact_id].append(row)
    out: list[Regression] = []
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
            out += _less_accurate(a, acc_ref, rows_of[a.id], rows_of[acc_ref.id], metric, tolerance)
    return tuple(out)


def regressions_for_artifacts(artifacts: Sequence[Artifact], rows: Sequence[Mapping[str, Any]], *,
                              metric: Metric = "val_accuracy",
                              tolerance: Tolerance = Tolerance()) -> tuple[Regression, ...]:
    """:func:`find_regressions` on pipeline objects: ``edgekit.artifact.Artifact`` and benchmark row dicts.

    Accuracies come from each artifact's ``metrics`` (``accuracy`` / ``val_accuracy``); sizes from its file.
    """
    from edgekit.fsutil import file_bytes

    records = [ArtifactRecord(id=a.id, format=a.format, precision=a.precision, name=a.name, stage=a.stage,
                              bytes=file_bytes(a.path) if a.path.exists() else None, parent_id=a.parent_id,
                              accuracy=_float(a.metrics.get("accuracy")),
                              val_accuracy=_float(a.metrics.get("val_accuracy")))
               for a in artifacts]
    return find_regressions(records, [BenchRow.from_dict(r) for r in rows], metric=metric, tolerance=tolerance)


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None
