"""Rules 1 and 3 against the parent: a file larger, slower or (outside the budget) less accurate than the model it
should improve on is flagged; a within-budget drop against its parent is a note.

Each file is compared with its *reference*: the nearest model up its ``parent_id`` chain in the same format. A file
converted from a Keras model has a Keras parent, so its reference is the fp32 file of its own format made from that
parent (an int8 .tflite against the fp32 .tflite of the same pruned Keras model), or, where there is none, from the
parent's own ancestors. Sizes and latencies are only compared within one format; accuracy falls back to the direct
parent when nothing of the same format exists. Latency is the p50 at batch 1 with the same thread count (1 where
both have it), per target, on rows that ran; where the pair was timed again in turns (a file's ``speed_checks``,
:mod:`edgekit.bench.retime`), the medians of those, so a slow minute of a shared machine flags nothing. Accuracy
is compared per target where both files ran there (int8 kernels differ by target), else from the files' own
figures.

Records and rows are read by attribute (files: ``id``, ``format``, ``precision``, ``name``, ``stage``, ``bytes``,
``parent_id``, ``accuracy``, ``val_accuracy``, optionally ``speed_checks``; rows: those of
:class:`edgekit.rules.baseline.Row`), so the report's typed records and the chooser's plain ones both fit. Flags
are made by the caller's ``make``, called with (artifact_id, reference_id, kind, value, reference_value, unit,
message, target, batch_size, threads).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgekit.rules.baseline import (
    SpeedCheck,
    Tolerance,
    budget_note,
    checked_pair,
    common_threads,
    recorded_speed_checks,
)
from edgekit.rules.bounds import within_budget

Metric = Literal["accuracy", "val_accuracy"]


@dataclass(frozen=True)
class FileRecord:
    """The fields of a pipeline artifact the rules read."""

    id: str
    format: str
    precision: str
    name: str
    stage: str
    bytes: int | None
    parent_id: str | None
    accuracy: float | None
    val_accuracy: float | None
    speed_checks: tuple[SpeedCheck, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name or self.stage or self.id}.{self.format}"


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def file_records(artifacts: Iterable[Any]) -> list[FileRecord]:
    """:class:`FileRecord` of pipeline artifacts: accuracies from ``metrics``, sizes from their files."""
    from edgekit.fsutil import file_bytes

    return [FileRecord(a.id, a.format, a.precision, a.name, a.stage, file_bytes(a.path) if a.path.exists() else None,
                       a.parent_id, _float(a.metrics.get("accuracy")), _float(a.metrics.get("val_accuracy")),
                       recorded_speed_checks(a.id, a.metrics))
            for a in artifacts]


def reference_of(artifact: Any, by_id: Mapping[str, Any],
                 children: Mapping[str, Sequence[Any]]) -> Any | None:
    """The artifact ``artifact`` should improve on in its own format, walking up ``parent_id``; None if none."""
    seen = {artifact.id}
    parent = by_id.get(artifact.parent_id or "")
    while parent is not None and parent.id not in seen:
        seen.add(parent.id)
        if parent.format == artifact.format:
            return parent
        siblings = [c for c in children.get(parent.id, ()) if c.id != artifact.id and c.format == artifact.format
                    and c.precision == "fp32" and artifact.id not in ancestors(c, by_id)]
        if siblings:
            return min(siblings, key=lambda c: (not c.stage.startswith("export."), c.id))
        parent = by_id.get(parent.parent_id or "")
    return None


def ancestors(a: Any, by_id: Mapping[str, Any]) -> set[str]:
    """Ids up ``a``'s ``parent_id`` chain (its parent, its parent's parent, …) among ``by_id``."""
    out: set[str] = set()
    p = by_id.get(a.parent_id or "")
    while p is not None and p.id not in out:
        out.add(p.id)
        p = by_id.get(p.parent_id or "")
    return out


def _name(a: Any) -> str:
    return f"{a.name or a.label} ({a.precision} {a.format})"


def _batch1(rows: Iterable[Any]) -> dict[tuple[str, int], Any]:
    return {(r.target, r.threads): r for r in rows if r.ok and r.batch_size == 1 and r.threads is not None
            and r.p50 is not None}


def _check_with(a: Any, ref: Any) -> SpeedCheck | None:
    """``a``'s speed check against ``ref`` (timed again in turns), if one was recorded."""
    return next((c for c in getattr(a, "speed_checks", ()) if c.baseline_id == ref.id), None)


def _slower(a: Any, ref: Any, rows_a: list[Any], rows_ref: list[Any],
            tol: Tolerance, make: Callable[..., Any]) -> list[Any]:
    mine, theirs = _batch1(rows_a), _batch1(rows_ref)
    by_target: dict[str, list[int]] = defaultdict(list)
    for target, threads in mine:
        if (target, threads) in theirs:
            by_target[target].append(threads)
    out = []
    for target, counts in by_target.items():
        shared = common_threads(counts, counts)
        assert shared is not None
        row, ref_row = mine[(target, shared)], theirs[(target, shared)]
        v, r, retimed = checked_pair(_check_with(a, ref), row.p50, ref_row.p50, target, shared)
        assert v is not None and r is not None
        if v > r * tol.latency_ratio:
            emu = " (emulated)" if row.emulated else ""
            how = "median p50 timed in turns" if retimed else "p50"
            out.append(make(
                a.id, ref.id, "slower", v, r, "ms",
                f"{_name(a)} slower than {_name(ref)} on {target}{emu}: {how} {v:.3f} vs {r:.3f} ms "
                f"(batch 1, {shared} thread{'s' if shared != 1 else ''})", target, 1, shared))
    return out


def _on_target_accuracy(rows: Iterable[Any]) -> dict[str, float]:
    return {r.target: r.accuracy for r in rows if r.ok and r.accuracy is not None}


def _less_accurate(a: Any, ref: Any, rows_a: list[Any], rows_ref: list[Any],
                   metric: Metric, tol: Tolerance, trained: Any | None = None,
                   budget_pp: float | None = None, *,
                   make: Callable[..., Any]) -> tuple[list[Any], list[tuple[str, str]]]:
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
    out: list[Any] = []
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
        out.append(make(a.id, ref.id, "less_accurate", v * 100.0, r * 100.0, "%", message, target))
    return out, notes


def judge(artifacts: Sequence[Any], rows: Sequence[Any], *, metric: Metric = "accuracy",
          tolerance: Tolerance = Tolerance(),
          budget_pp: float | None = None,
          make: Callable[..., Any]) -> tuple[tuple[Any, ...], tuple[tuple[str, str], ...]]:
    """The rule (module doc) on every artifact: its flags (larger, slower per target, less accurate) and its notes
    (``(artifact id, sentence)``: a drop against its parent within ``budget_pp``).

    ``metric`` is the accuracy compared: ``"accuracy"`` (test, per target where measured) for reports,
    ``"val_accuracy"`` (the test set never chooses). ``budget_pp`` (pp against the artifact with stage ``train``)
    turns on rule 1; without it, less accurate means more than ``tolerance.accuracy_pp`` below the reference.
    """
    by_id = {a.id: a for a in artifacts}
    trained = next((a for a in artifacts if a.stage == "train"), None)
    children: dict[str, list[Any]] = defaultdict(list)
    for a in artifacts:
        if a.parent_id:
            children[a.parent_id].append(a)
    rows_of: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        rows_of[row.artifact_id].append(row)
    out: list[Any] = []
    notes: list[tuple[str, str]] = []
    for a in artifacts:
        ref = reference_of(a, by_id, children)
        if ref is not None:
            if a.bytes is not None and ref.bytes is not None and a.bytes > ref.bytes * tolerance.size_ratio:
                out.append(make(a.id, ref.id, "larger", a.bytes / 1024, ref.bytes / 1024, "KB",
                                f"{_name(a)} larger than {_name(ref)}: {a.bytes / 1024:.1f} vs "
                                f"{ref.bytes / 1024:.1f} KB"))
            out += _slower(a, ref, rows_of[a.id], rows_of[ref.id], tolerance, make)
        acc_ref = ref or by_id.get(a.parent_id or "")
        if acc_ref is not None:
            flags, noted = _less_accurate(a, acc_ref, rows_of[a.id], rows_of[acc_ref.id], metric, tolerance, trained,
                                          budget_pp, make=make)
            out += flags
            notes += noted
    return tuple(out), tuple(notes)
