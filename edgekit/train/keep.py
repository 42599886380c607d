"""Whether fine-tuning a user's model is kept: the model as brought is the reference, fine-tuning a stage that must
earn its place on validation (measured like any other stage, dropped when it does not help)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Action = Literal["kept", "dropped", "skipped"]


@dataclass(frozen=True)
class FineTuneDecision:
    """What became of fine-tuning a user's model: ``kept`` (better on validation: it is the reference from then
    on), ``dropped`` (not better: the model as brought is kept, its weights untouched) or ``skipped`` (no epochs).
    Accuracies are fractions of the validation split; ``lost``/``gained``: images it got wrong/right that the
    model as brought got right/wrong."""

    action: Action
    val_before: float
    val_after: float | None = None
    lost: int = 0
    gained: int = 0
    reason: str = ""

    @property
    def change_pp(self) -> float | None:
        return None if self.val_after is None else round((self.val_after - self.val_before) * 100.0, 3)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change_pp": self.change_pp}

    def sentence(self) -> str:
        """One line for the log and the report."""
        if self.val_after is None:
            return f"fine-tuning {self.action}: {self.reason}"
        return (f"fine-tuning {self.action} (validation {self.val_before * 100:.2f} % as brought, "
                f"{self.val_after * 100:.2f} % fine-tuned): {self.reason}")


def skipped(val_before: float) -> FineTuneDecision:
    """No fine-tuning epochs: the model is used as it is."""
    return FineTuneDecision("skipped", float(val_before), reason="no fine-tuning epochs: the model is used as it is")


def decide(before_correct: Any, after_correct: Any) -> FineTuneDecision:
    """Keep the fine-tuned model only when it gets more validation images right than the model as brought (per-image
    correctness of each, booleans on the same images); a tie or a loss drops it. The kept model is then the
    reference of the budget, so the reference is never below the model as brought on validation."""
    before = np.asarray(before_correct, dtype=bool)
    after = np.asarray(after_correct, dtype=bool)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError(f"paired correctness must be two equal 1-D arrays, got {before.shape} and {after.shape}")
    n = max(int(before.size), 1)
    lost, gained = int((before & ~after).sum()), int((~before & after).sum())
    val_before, val_after = float(before.sum()) / n, float(after.sum()) / n
    if before.size == 0:
        return FineTuneDecision("dropped", val_before, val_after, lost, gained,
                                "no validation images to show it helps; the model as brought is kept")
    if gained > lost:
        why = f"better on validation ({gained} images gained, {lost} lost); the fine-tuned model is the reference"
        return FineTuneDecision("kept", val_before, val_after, lost, gained, why)
    verdict = "no better" if gained == lost else "worse"
    why = (f"{verdict} on validation ({gained} images gained, {lost} lost); the model as brought is kept, "
           "weights unchanged")
    return FineTuneDecision("dropped", val_before, val_after, lost, gained, why)
