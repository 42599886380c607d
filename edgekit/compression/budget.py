"""Accuracy-budgeted pruning: per-layer levels from the sensitivity, fine-tuning, then verification.

Each function takes the parent model, the dataset, the analysis of
:func:`edgekit.analyze.sensitivity.analyze_model` and a budget in pp of *validation*
accuracy against the trained fp32 model (``reference_val_accuracy``; default: the
parent's). It returns the compressed model and a :class:`BudgetDecision`:

- ``applied``: the chosen per-layer levels held the budget after fine-tuning;
- ``backed_off``: a bolder choice broke the budget, so a smaller one was redone *from the
  parent* and held;
- ``dropped``: nothing held; the parent model is returned unchanged (the pipeline
  never carries on from a ruined model);
- ``user_value``: an explicit value was honoured; ``breach`` says whether it broke the budget.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from edgekit.analyze.decide import DEFAULT_BUDGET_PP, choose_levels, predicted_drop

log = logging.getLogger(__name__)

Action = Literal["applied", "backed_off", "dropped", "user_value"]

ONE_SHOT_SLACK = 2.0
"""The greedy choice may spend this many budgets of *one-shot* (not fine-tuned) drop: fine-tuning
recovers much of it, and verification after fine-tuning backs off whatever it does not."""

MAX_SPEND = 64.0
"""The boldest spend tried, in budgets of one-shot drop."""


@dataclass
class BudgetDecision:
    """What a budgeted stage decided, and why (the report's per-stage record)."""

    stage: str
    action: Action
    budget_pp: float
    reference_val_accuracy: float
    parent_val_accuracy: float
    val_accuracy: float
    per_layer: dict[str, float] = field(default_factory=dict)
    breach: bool = False
    reason: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drop_pp(self) -> float:
        """Validation drop against the reference (the trained fp32 model), in pp."""
        return round((self.reference_val_accuracy - self.val_accuracy) * 100.0, 3)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop_pp": self.drop_pp}


def val_accuracy(model: Any, dataset: Any) -> float:
    """Top-1 accuracy of a Keras model on the validation split."""
    scores = np.asarray(model.predict(dataset.x_val, batch_size=256, verbose=0))
    return float((scores.argmax(axis=1) == dataset.y_val).mean())


def _drop(reference: float, acc: float) -> float:
    return round((reference - acc) * 100.0, 3)


def _run_budgeted(stage: str, kind: str, parent: Any, dataset: Any, analysis: dict[str, Any],
                  apply: Callable[[Any, dict[str, float]], Any], budget_pp: float, reference: float | None,
                  max_attempts: int, slack: float) -> tuple[Any, BudgetDecision]:
    """Bisection on how much *one-shot* drop the greedy choice may spend (``slack`` × the budget left):
    a choice that holds after fine-tuning is kept and a bolder one tried; one that breaks is backed off
    to a smaller spend. Every attempt starts from ``parent``."""
    parent_acc = val_accuracy(parent, dataset)
    ref = parent_acc if reference is None else float(reference)
    left = budget_pp - _drop(ref, parent_acc)
    layers = analysis["layers"]
    decision = BudgetDecision(stage, "dropped", budget_pp, ref, parent_acc, parent_acc)
    if left <= 0:
        decision.reason = f"the parent already uses {_drop(ref, parent_acc):.2f} pp of the {budget_pp:g} pp budget"
        return parent, decision
    best: tuple[Any, dict[str, float], float] | None = None
    lo, hi, spend = 0.0, None, slack
    seen: set[tuple[tuple[str, float], ...]] = set()
    broke_before_best = False
    for _ in range(4 * max_attempts):  # bounded: repeated choices are skipped, not run
        if len(decision.attempts) >= max_attempts:
            break
        choice = choose_levels(layers, left * spend, kind)
        key = tuple(sorted(choice.items()))
        if not choice or key in seen:
            if hi is None:  # nothing new yet: bolder
                spend *= 2
                if spend > MAX_SPEND:
                    break
                continue
            hi, spend = spend, (lo + spend) / 2  # smaller spend: a different, safer choice
            if hi - lo < 0.05:
                break
            continue
        seen.add(key)
        model = apply(parent, choice)
        acc = val_accuracy(model, dataset)
        held = _drop(ref, acc) <= budget_pp + 1e-9
        decision.attempts.append({"per_layer": dict(choice), "spend_pp": round(left * spend, 3),
                                  "predicted_one_shot_pp": round(predicted_drop(layers, choice, kind), 3),
                                  "val_accuracy": round(acc, 6), "drop_pp": _drop(ref, acc), "held": held})
        log.info("%s attempt %d: %s → validation drop %.2f pp (%s)", stage, len(decision.attempts), choice,
                 _drop(ref, acc), "holds" if held else "breaks the budget")
        if held:
            if best is None or _removed(layers, choice, kind) > _removed(layers, best[1], kind):
                best = (model, choice, acc)
            lo = spend
            spend = spend * 2 if hi is None else (spend + hi) / 2
        else:
            broke_before_best = broke_before_best or best is None
            hi = spend
            spend = (lo + spend) / 2
    if best is None:
        last = decision.attempts[-1]["drop_pp"] if decision.attempts else None
        decision.reason = ("no layer can take the smallest measured level within the budget" if last is None else
                           f"every attempt broke the {budget_pp:g} pp budget (last: {last:.2f} pp); "
                           "the stage is dropped and the parent kept")
        return parent, decision
    model, choice, acc = best
    decision.action = "backed_off" if broke_before_best else "applied"
    decision.val_accuracy, decision.per_layer = acc, dict(choice)
    broken = [a for a in decision.attempts if not a["held"]]
    if broken:
        decision.reason = (f"{len(broken)} bolder choice(s) broke the budget after fine-tuning "
                           f"(worst {max(a['drop_pp'] for a in broken):.2f} pp); kept the held choice that removes the most")
    return model, decision


def _removed(layers: list[dict[str, Any]], choice: dict[str, float], kind: str) -> float:
    """What a choice removes: parameters (magnitude) or MACs (structured), summed over its layers."""
    key = "params" if kind == "prune" else "macs"
    rows = {r["name"]: r for r in layers}
    return sum(float(rows[n].get(key) or 0) * level for n, level in choice.items())


def _user_value(stage: str, parent: Any, dataset: Any, model: Any, value: float, what: str, budget_pp: float,
                reference: float | None) -> tuple[Any, BudgetDecision]:
    parent_acc = val_accuracy(parent, dataset)
    ref = parent_acc if reference is None else float(reference)
    acc = val_accuracy(model, dataset)
    d = BudgetDecision(stage, "user_value", budget_pp, ref, parent_acc, acc, {"*": value})
    d.breach = d.drop_pp > budget_pp + 1e-9
    d.reason = explicit_value_note(what, value, d.drop_pp, budget_pp)
    return model, d


def explicit_value_note(what: str, value: float, drop_pp: float, budget_pp: float) -> str:
    """The plain sentence for an explicit user value against the budget (the run's warning when it breaks it),
    e.g. 'sparsity 0.8 was set explicitly; validation drop 19.00 pp breaks the 1 pp budget'."""
    verdict = f"breaks the {budget_pp:g} pp budget" if drop_pp > budget_pp + 1e-9 else f"is within the {budget_pp:g} pp budget"
    return f"{what} {value:g} was set explicitly; validation drop {drop_pp:.2f} pp {verdict}"


def budgeted_magnitude_prune(model: Any, dataset: Any, analysis: dict[str, Any], *, budget_pp: float = DEFAULT_BUDGET_PP,
                             reference_val_accuracy: float | None = None, sparsity: float | None = None,
                             cfg: Any = None, from_logits: bool = False, max_attempts: int = 4,
                             slack: float = ONE_SHOT_SLACK) -> tuple[Any, BudgetDecision]:
    """Magnitude pruning with per-layer sparsities chosen inside ``budget_pp`` (see the module doc).

    ``sparsity`` (an explicit user value) prunes every layer to it and flags a breach instead.
    ``cfg`` is a :class:`edgekit.compression.prune.MagnitudePruneConfig` for the fine-tuning settings.
    """
    import dataclasses

    from edgekit.compression.prune import MagnitudePruneConfig, magnitude_prune

    base = cfg or MagnitudePruneConfig()

    def apply(parent: Any, per_layer: dict[str, float]) -> Any:
        run = dataclasses.replace(base, sparsity=0.0, per_layer=dict(per_layer), pattern="")
        return magnitude_prune(parent, dataset.x_train, dataset.y_train, run,
                               validation=(dataset.x_val, dataset.y_val), from_logits=from_logits)

    if sparsity is not None:
        pruned = magnitude_prune(model, dataset.x_train, dataset.y_train,
                                 dataclasses.replace(base, sparsity=float(sparsity), per_layer={}),
                                 validation=(dataset.x_val, dataset.y_val), from_logits=from_logits)
        return _user_value("prune.magnitude", model, dataset, pruned, float(sparsity), "sparsity", budget_pp,
                           reference_val_accuracy)
    return _run_budgeted("prune.magnitude", "prune", model, dataset, analysis, apply, budget_pp,
                         reference_val_accuracy, max_attempts, slack)


def budgeted_structured(model: Any, dataset: Any, analysis: dict[str, Any], *, budget_pp: float = DEFAULT_BUDGET_PP,
                        reference_val_accuracy: float | None = None, ratio: float | None = None, epochs: int = 2,
                        batch_size: int = 64, learning_rate: float = 5e-4, criterion: str = "l1",
                        from_logits: bool = False, max_attempts: int = 4,
                        slack: float = ONE_SHOT_SLACK) -> tuple[Any, BudgetDecision]:
    """Structured filter removal with per-layer fractions chosen inside ``budget_pp``, then fine-tuning.

    ``ratio`` (an explicit user value) removes that fraction everywhere and flags a breach instead.
    """
    from edgekit.compression.structured import prune_structured
    from edgekit.train.trainer import FitSettings, fit

    def finetune(pruned: Any) -> Any:
        fit(pruned, dataset.x_train, dataset.y_train, FitSettings(epochs, batch_size, learning_rate, False, from_logits),
            validation=(dataset.x_val, dataset.y_val), label="fine-tuning")
        return pruned

    def apply(parent: Any, per_layer: dict[str, float]) -> Any:
        return finetune(prune_structured(parent, per_layer=per_layer, criterion=criterion).model)  # type: ignore[arg-type]

    if ratio is not None:
        pruned = finetune(prune_structured(model, ratio=float(ratio), criterion=criterion).model)  # type: ignore[arg-type]
        return _user_value("prune.structured", model, dataset, pruned, float(ratio), "structured ratio", budget_pp,
                           reference_val_accuracy)
    return _run_budgeted("prune.structured", "structured", model, dataset, analysis, apply, budget_pp,
                         reference_val_accuracy, max_attempts, slack)
