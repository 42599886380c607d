"""Time a file and the fp32 baseline of its format again, in turns, before calling it slower.

The benchmark times every file once, one after another. On a shared machine whose speed drifts over minutes, a
file timed in a slow minute can look slower than a baseline timed in a fast one: a float16 file of the reference
CNN measured 0.034 ms against its parent's 0.024 ms in a run's benchmark, and equal when the two were timed
interleaved in one process. Before the chooser excludes a smaller file as slower than its baseline
(:func:`edgekit.search.speed_suspects` names the pairs), and before the report flags a file slower than its
parent (:func:`edgekit.search.parent_speed_suspects`), both files are timed again at batch 1 on that target and
thread count, in turns (file, other, other, file, …), so that a drift slows each about equally; the chooser and
the report then judge on the median of each one's batch-1 p50s, the benchmark's own included
(:class:`edgekit.rules.SpeedCheck`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing, benchmark
from edgekit.rules import SpeedCheck
from edgekit.targets import Target

log = logging.getLogger(__name__)

TURNS = 2
"""Times each file of a pair is timed again: file, baseline, then baseline, file."""

IMAGES = 64
"""Images sent with each timing (accuracy is not measured again; the batch-1 input is the first image)."""


def retime(pairs: Iterable[SpeedCheck], artifacts: Sequence[Artifact], x: np.ndarray, y: np.ndarray,
           targets: Iterable[Target], timing: Timing, turns: int = TURNS) -> list[SpeedCheck]:
    """Each pair (holding the benchmark's first p50s) timed again ``turns`` times each, in turns: the checks with
    every p50, in the pairs' order. A timing that fails adds nothing (the first figures still stand)."""
    by_id = {a.id: a for a in artifacts}
    by_name = {t.name: t for t in targets}
    out: list[SpeedCheck] = []
    for pair in pairs:
        one = dataclasses.replace(by_name[pair.target], batch_sizes=(1,), threads=(pair.threads,))
        p50: dict[str, list[float]] = {pair.file_id: list(pair.p50_ms), pair.baseline_id: list(pair.baseline_p50_ms)}
        for turn in range(turns):
            for aid in (pair.file_id, pair.baseline_id) if turn % 2 == 0 else (pair.baseline_id, pair.file_id):
                rows = benchmark([by_id[aid]], x[:IMAGES], y[:IMAGES], [one], timing=timing)
                p50[aid] += [float(r["latency_ms"]["p50"]) for r in rows
                             if r.get("status") == "ok" and r.get("batch_size") == 1 and r.get("latency_ms")]
        check = dataclasses.replace(pair, p50_ms=tuple(p50[pair.file_id]),
                                    baseline_p50_ms=tuple(p50[pair.baseline_id]))
        log.info("%s timed again in turns with %s on %s: median p50 %.3f vs %.3f ms", by_id[pair.file_id].name,
                 by_id[pair.baseline_id].name, pair.target, check.median_ms, check.baseline_median_ms)
        out.append(check)
    return out
