"""Learning-rate schedules for training: constant, cosine decay, each with an optional linear warm-up.

The schedule is per optimizer step, so a one-epoch warm-up on 50 batches rises over
those 50 steps. ``constant`` without warm-up is exactly the plain learning rate.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from edgekit._tf import keras, tf
from edgekit.errors import UsageError

ScheduleKind = Literal["constant", "cosine"]
SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def check_schedule(kind: str, warmup_steps: int, total_steps: int) -> None:
    """Raise UsageError naming the recipe key for a schedule that cannot run."""
    if kind not in SCHEDULES:
        raise UsageError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    if warmup_steps < 0:
        raise UsageError(f"warmup_epochs must not be negative, got {warmup_steps} steps")
    if total_steps < 1:
        raise UsageError(f"a schedule needs at least one step, got {total_steps}")


def lr_at(step: float, base: float, kind: str, warmup_steps: int, total_steps: int) -> float:
    """The learning rate at ``step`` (pure Python; the reference the Keras schedule follows)."""
    if warmup_steps and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if kind == "constant":
        return base
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def learning_rate(base: float, kind: str = "constant", warmup_steps: int = 0, total_steps: int = 1) -> Any:
    """A float (plain constant rate) or a tf_keras LearningRateSchedule for the optimizer."""
    check_schedule(kind, warmup_steps, total_steps)
    if kind == "constant" and not warmup_steps:
        return base
    k = keras()

    class WarmupSchedule(k.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc,name-defined]
        def __call__(self, step: Any) -> Any:
            t = tf()
            s = t.cast(step, t.float32)
            warm = base * (s + 1.0) / float(max(1, warmup_steps))
            if kind == "constant":
                after = t.constant(base, t.float32)
            else:
                prog = t.minimum(1.0, (s - warmup_steps) / float(max(1, total_steps - warmup_steps)))
                after = base * 0.5 * (1.0 + t.cos(math.pi * prog))
            return t.where(s < warmup_steps, warm, after) if warmup_steps else after

        def get_config(self) -> dict[str, Any]:
            return {"base": base, "kind": kind, "warmup_steps": warmup_steps, "total_steps": total_steps}

    return WarmupSchedule()
