"""Parity: does an exported or quantized model follow its parent closely enough to ship?

Tolerances live in one table, by the child's precision: fp32 exports must
match to 1e-4 and agree on ≥ 99.9 % of top-1 answers; quantized models are
held to a top-1 agreement floor and their accuracy delta is recorded. A format
may override an entry (``parity`` in :data:`edgekit.formats.FORMATS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TOLERANCES: dict[str, dict[str, float | None]] = {
    # precision: max |child - parent| over all outputs (None: not checked), minimum top-1 agreement
    "fp32": {"max_abs_diff": 1e-4, "min_agreement": 0.999},
    "fp16": {"max_abs_diff": None, "min_agreement": 0.99},
    "mixed": {"max_abs_diff": None, "min_agreement": 0.97},
    "int8": {"max_abs_diff": None, "min_agreement": 0.97},
}


def tolerance(precision: str, fmt: str | None = None) -> dict[str, float | None]:
    """The parity limits for a child of ``precision`` (and format ``fmt``: its overrides apply)."""
    tol = dict(TOLERANCES[precision])
    if fmt is not None:
        from edgekit.formats import spec

        tol.update(spec(fmt).parity.get(precision, {}))
    return tol


@dataclass(frozen=True)
class Parity:
    """How closely a child model follows its parent on the same inputs."""

    parent_id: str
    samples: int
    max_abs_diff: float
    top1_agreement: float
    accuracy: float
    parent_accuracy: float
    accuracy_delta_pp: float
    status: str  # ok | failed
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_parity(child: np.ndarray, parent: np.ndarray, y: np.ndarray, precision: str, parent_id: str,
                 fmt: str | None = None) -> Parity:
    """Compare child and parent scores (N × classes) on labelled inputs ``y`` (``fmt``: the child's format)."""
    tol = tolerance(precision, fmt)
    child_top1, parent_top1 = child.argmax(axis=1), parent.argmax(axis=1)
    max_abs = float(np.abs(child.astype(np.float64) - parent.astype(np.float64)).max()) if child.size else 0.0
    agreement = float((child_top1 == parent_top1).mean())
    acc, parent_acc = float((child_top1 == y).mean()), float((parent_top1 == y).mean())
    problems = []
    limit = tol["max_abs_diff"]
    if limit is not None and max_abs > limit:
        problems.append(f"max abs difference {max_abs:.2e} > {limit:.0e}")
    if agreement < float(tol["min_agreement"] or 0):
        problems.append(f"top-1 agreement {agreement:.2%} < {float(tol['min_agreement'] or 0):.1%}")
    return Parity(parent_id, int(len(y)), max_abs, agreement, acc, parent_acc, (acc - parent_acc) * 100.0,
                  "failed" if problems else "ok", "; ".join(problems))
