"""Rule 2: a chosen file must be smaller than the fp32 file of its format and not slower than it at batch 1.

Benchmark rows are read by attribute (``ok``, ``batch_size``, ``threads``, ``p50``, ``target``): a report's typed
rows and :class:`Row` (parsed from a row dict here, so the chooser needs no report types) both fit.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tolerance:
    """How much worse counts as worse (measurement noise stays below these)."""

    size_ratio: float = 1.01
    """Larger: more than 1 % more bytes (a few bytes of metadata are not a regression)."""
    latency_ratio: float = 1.05
    """Slower: a p50 more than 5 % above the reference's (timing noise on a shared CPU)."""
    accuracy_pp: float = 0.5
    """Less accurate: more than 0.5 percentage points below (one image in 200)."""


def budget_note(drop_vs_parent_pp: float, budget_pp: float) -> str:
    """A within-budget drop against the parent, e.g. '-0.40 pp vs parent, within the 1 pp budget'."""
    return f"{-drop_vs_parent_pp:+.2f} pp vs parent, within the {budget_pp:g} pp budget"


def baseline_exclusion(fmt: str, size: int, latency_ms: float | None, base_size: int, base_latency_ms: float | None,
                       target: str, tolerance: Tolerance = Tolerance(), *, check_speed: bool = True,
                       retimed: bool = False) -> str | None:
    """Why a file may not be chosen against the fp32 baseline of its format on ``target`` (None: it may):
    not smaller, or slower at batch 1 (beyond :attr:`Tolerance.latency_ratio`).

    ``latency_ms`` and ``base_latency_ms`` are batch-1 p50s at the same thread count (:func:`batch1_pair`), or the
    medians of the two timed again in turns (``retimed``, :func:`checked_pair`). With ``check_speed``
    (benchmarking on), a missing figure excludes the file: a benchmark that failed or was skipped proves nothing.
    Without it only the size decides, and the chooser says that speed was not checked.
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
    if slower(latency_ms, base_latency_ms, tolerance):
        how = "median p50 timed in turns" if retimed else "p50"
        return (f"slower than the fp32 {fmt} baseline on {target} at batch 1 "
                f"({how} {latency_ms:.3f} vs {base_latency_ms:.3f} ms)")
    return None


def common_threads(mine: Iterable[int], theirs: Iterable[int]) -> int | None:
    """The thread count two files are compared at: 1 where both ran it, else the smallest both ran (None: none)."""
    both = set(mine) & set(theirs)
    return None if not both else 1 if 1 in both else min(both)


def batch1_p50(rows: Iterable[Any], target: str) -> dict[int, float]:
    """Thread count → batch-1 p50 (ms) of the ok rows on ``target`` (rows read by attribute)."""
    return {r.threads: r.p50 for r in rows if r.ok and r.batch_size == 1 and r.threads is not None
            and r.p50 is not None and r.target == target}


def batch1_pair(rows: Iterable[Any], ref_rows: Iterable[Any],
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


@dataclass(frozen=True)
class Row:
    """The fields of a benchmark row the rules read, from a report's row dict (no report types needed)."""

    artifact_id: str
    target: str
    ok: bool
    batch_size: int | None
    threads: int | None
    p50: float | None
    emulated: bool = False
    accuracy: float | None = None

    @classmethod
    def from_dict(cls, r: Mapping[str, Any]) -> Row:
        lat = r.get("latency_ms")
        p50 = lat.get("p50") if isinstance(lat, Mapping) else None
        acc = r.get("accuracy")
        return cls(str(r.get("artifact_id", "")), str(r.get("target", "")), r.get("status") == "ok",
                   r.get("batch_size"), r.get("threads"), float(p50) if isinstance(p50, (int, float)) else None,
                   bool(r.get("emulated")), float(acc) if isinstance(acc, (int, float)) else None)


@dataclass(frozen=True)
class SpeedCheck:
    """Batch-1 p50s (ms) of a file and of the file it is judged against (``baseline_id``: the fp32 baseline of its
    format, or its parent's file of the same format) on ``target`` at ``threads``: the benchmark's first, then those
    timed again in turns (:mod:`edgekit.bench.retime`). The rules judge speed on their medians
    (:func:`checked_pair`)."""

    file_id: str
    baseline_id: str
    target: str
    threads: int
    p50_ms: tuple[float, ...]
    baseline_p50_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.p50_ms))

    @property
    def baseline_median_ms(self) -> float:
        return float(statistics.median(self.baseline_p50_ms))

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id, "target": self.target, "threads": self.threads,
                "p50_ms": list(self.p50_ms), "baseline_p50_ms": list(self.baseline_p50_ms)}

    @classmethod
    def from_dict(cls, file_id: str, d: Mapping[str, Any]) -> SpeedCheck:
        return cls(file_id, str(d["baseline_id"]), str(d["target"]), int(d["threads"]),
                   tuple(float(v) for v in d["p50_ms"]), tuple(float(v) for v in d["baseline_p50_ms"]))


SPEED_CHECKS = "speed_checks"
"""The metric a file's speed checks are recorded in: a list of :meth:`SpeedCheck.to_dict` (one per file it was
timed again with in turns: the fp32 baseline of its format, its parent's fp32 file of the same format)."""


def recorded_speed_checks(file_id: str, metrics: Mapping[str, Any]) -> tuple[SpeedCheck, ...]:
    """The speed checks recorded in a file's ``metrics`` (:data:`SPEED_CHECKS`, and the single ``speed_check`` of
    reports written before a file could have several); malformed entries are skipped."""
    entries = metrics.get(SPEED_CHECKS)
    listed = list(entries) if isinstance(entries, list) else []
    if isinstance(metrics.get("speed_check"), Mapping):
        listed.append(metrics["speed_check"])
    out = []
    for d in listed:
        try:
            out.append(SpeedCheck.from_dict(file_id, d))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def checked_pair(check: SpeedCheck | None, mine: float | None, theirs: float | None, target: str,
                 threads: int | None) -> tuple[float | None, float | None, bool]:
    """The batch-1 p50s the speed rule judges a file and its baseline on: the medians of ``check`` where it was
    timed on ``target`` at ``threads`` (and whether they were), else the benchmark's ``mine`` and ``theirs``."""
    if check is not None and check.target == target and check.threads == threads and check.p50_ms \
            and check.baseline_p50_ms:
        return check.median_ms, check.baseline_median_ms, True
    return mine, theirs, False


def slower(latency_ms: float | None, base_latency_ms: float | None, tolerance: Tolerance = Tolerance()) -> bool:
    """A batch-1 p50 beyond :attr:`Tolerance.latency_ratio` of the baseline's (both known)."""
    return latency_ms is not None and base_latency_ms is not None and \
        latency_ms > base_latency_ms * tolerance.latency_ratio
