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

How much one-shot drop the per-layer levels may spend is searched with real fine-tuning runs, not predicted
(:func:`_run_budgeted`): a safe first attempt, then bisection in log-spend up to :data:`MAX_SPEND`, at most
``max_attempts`` (:data:`DEFAULT_ATTEMPTS`) runs; each attempt records its levels, outcome and seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from edgekit.analyze.decide import DEFAULT_BUDGET_PP, choose_levels, predicted_drop
from edgekit.rules import SELECTION_CONFIDENCE, paired_upper, predicted_bound_pp, verdict, within_budget

log = logging.getLogger(__name__)

Action = Literal["applied", "backed_off", "dropped", "user_value"]

ONE_SHOT_SLACK = 2.0
"""The first (safe) attempt spends this many budgets of *one-shot* (not fine-tuned) drop: fine-tuning
recovers much of it, and verification after fine-tuning backs off whatever it does not."""

MAX_SPEND = 64.0
"""The boldest spend tried, in budgets of one-shot drop (the top of the search bracket)."""

RESOLUTION = 1.25
"""The search stops once the bracket between the boldest spend that held and the smallest that broke is
narrower than this factor: the greedy choices in between differ by a level or two of one layer."""

DEFAULT_ATTEMPTS = 4
"""Fine-tuning runs per pruning kind. After the safe first attempt the bracket [2, 64] budgets is 5 octaves
wide; three more halvings leave 5/8 of an octave (a factor 1.54 of spend), about the step between neighbouring
greedy choices at these spends. Each attempt costs one fine-tuning (``epochs`` over the training split)."""


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
    runner_up: HeldChoice | None = field(default=None, repr=False, compare=False)

    @property
    def drop_pp(self) -> float:
        """Validation drop against the reference (the trained fp32 model), in pp."""
        return round((self.reference_val_accuracy - self.val_accuracy) * 100.0, 3)

    def to_dict(self) -> dict[str, Any]:
        out = {**asdict(replace(self, runner_up=None)), "drop_pp": self.drop_pp}
        out.pop("runner_up")
        if self.runner_up is not None:
            out["runner_up"] = {"per_layer": dict(self.runner_up.per_layer),
                                "val_accuracy": round(self.runner_up.val_accuracy, 6)}
        return out


@dataclass(frozen=True)
class HeldChoice:
    """An attempt of the search that held: its fine-tuned model, per-layer levels and selection accuracy."""

    model: Any
    per_layer: dict[str, float]
    val_accuracy: float


def val_accuracy(model: Any, dataset: Any) -> float:
    """Top-1 accuracy of a Keras model on the validation split."""
    return float(val_correct(model, dataset).mean())


def _drop(reference: float, acc: float) -> float:
    return round((reference - acc) * 100.0, 3)


MARGIN_CONFIDENCE = SELECTION_CONFIDENCE
"""The stages' bar on the selection split (:data:`edgekit.rules.SELECTION_CONFIDENCE`): a prediction of what
certification will accept. The promise itself is certified on other images (:func:`edgekit.rules.certify`)."""


@dataclass(frozen=True)
class DropBound:
    """A drop judged image by image: the point drop and an exact one-sided upper bound of it, in pp.

    ``lost``: images the paired reference gets right and the candidate wrong; ``gained``: the other way round;
    ``n``: images. ``offset_pp`` is a drop already measured before the paired reference, added as it is.
    """

    n: int
    lost: int
    gained: int
    offset_pp: float = 0.0
    confidence: float = MARGIN_CONFIDENCE

    @property
    def drop_pp(self) -> float:
        return round(self.offset_pp + (self.lost - self.gained) / max(self.n, 1) * 100.0, 3)

    @cached_property
    def bound_pp(self) -> float:
        """``offset_pp`` plus the exact paired bound (:func:`edgekit.rules.paired_upper`, each factor at
        1 − ``confidence``): a gained image never raises it, a lost one never lowers it."""
        return round(self.offset_pp + paired_upper(self.lost, self.gained, self.n, 1.0 - self.confidence) * 100.0, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"validation_size": self.n, "drop_pp": self.drop_pp, "bound_pp": self.bound_pp, "lost": self.lost,
                "gained": self.gained, "offset_pp": self.offset_pp, "confidence": self.confidence}


def paired_drop_bound(reference_correct: Any, candidate_correct: Any, *, offset_pp: float = 0.0,
                      confidence: float = MARGIN_CONFIDENCE) -> DropBound:
    """The drop of a candidate against a reference on the same images (per-image correctness, booleans), with its
    exact one-sided upper bound (:class:`DropBound`): the margin grows as the split shrinks."""
    ref = np.asarray(reference_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if ref.shape != cand.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError(f"paired correctness must be two equal, non-empty 1-D arrays, "
                         f"got {ref.shape} and {cand.shape}")
    return DropBound(int(ref.size), int((ref & ~cand).sum()), int((~ref & cand).sum()), float(offset_pp), confidence)


def stage_drop_bound(reference: float, parent_correct: Any, candidate_correct: Any) -> DropBound:
    """A stage's output judged against the reference's ``reference`` selection accuracy: paired image by image
    with the stage's parent (:func:`paired_drop_bound`), plus the parent's own measured drop as ``offset_pp``."""
    parent_ok = np.asarray(parent_correct, dtype=bool)
    return paired_drop_bound(parent_ok, candidate_correct, offset_pp=_drop(reference, float(parent_ok.mean())))


def budget_check(reference: float, accuracy: float, budget_pp: float, parent: Any = None, model: Any = None,
                 dataset: Any = None, candidate_correct: Any = None, reference_correct: Any = None,
                 predict_certificate: bool = False) -> dict[str, Any]:
    """A budgeted stage's check on the selection split (``dataset.x_val``), by :func:`edgekit.rules.within_budget`:
    ``{"held": ..., "bound_pp", "validation_size", "verdict"}``, judged on the bound of :class:`DropBound` at the
    selection bar. Paired with the reference itself when ``reference_correct`` (its per-image correctness) is
    given; else with the Keras ``parent``, plus the parent's point drop. The candidate is the Keras ``model``, or
    its per-image correctness ``candidate_correct`` (an exported file).

    One rule when nothing can be paired: an empty selection split is judged on the point drop of ``accuracy``,
    with a logged warning; it never raises here.

    ``predict_certificate`` (a trained candidate paired with the reference): it also holds only when the
    certificate the selection images predict for it (:func:`edgekit.rules.predicted_bound_pp`, its lost and gained
    images scaled to the certification split) is inside the budget. A fine-tuned model that changes the
    correctness of many images cannot be certified near the budget's edge even when it loses nothing on average,
    so the search backs off to one certification will accept."""
    paired = (hasattr(parent, "predict") or reference_correct is not None) and dataset is not None
    if paired and len(getattr(dataset, "y_val", ())) == 0:
        log.warning("empty selection split: the budget is judged on the point drop, without a statistical margin")
        paired = False
    if paired and candidate_correct is None and hasattr(model, "predict"):
        candidate_correct = val_correct(model, dataset)
    if not paired or candidate_correct is None:
        return {"held": within_budget(_drop(reference, accuracy), budget_pp)}
    bound = (paired_drop_bound(reference_correct, candidate_correct) if reference_correct is not None else
             stage_drop_bound(reference, val_correct(parent, dataset), candidate_correct))
    held = within_budget(bound.bound_pp, budget_pp)
    sentence = "selection " + verdict(bound.drop_pp, bound.bound_pp, budget_pp, bound.n, bound.confidence)
    out: dict[str, Any] = {"validation_size": bound.n}
    n_cert = len(getattr(dataset, "y_cert", ()))
    if predict_certificate and reference_correct is not None and n_cert:
        predicted = predicted_bound_pp(bound.lost, bound.gained, 0, bound.n, n_cert)
        out["predicted_certificate_pp"] = predicted
        if held and not within_budget(predicted, budget_pp):
            held = False
            sentence += (f"; but {bound.lost} lost and {bound.gained} gained images predict a certified bound of "
                         f"{predicted:.2f} pp on {n_cert} certification images, outside the budget")
    log.info("%s (%d lost, %d gained)", sentence, bound.lost, bound.gained)
    return {"held": held, "bound_pp": bound.bound_pp, **out, "verdict": sentence}


def _last_drop(attempt: dict[str, Any]) -> str:
    """An attempt's drop for a reason: the verdict it was judged by, else its point drop."""
    return attempt.get("verdict") or f"selection drop {attempt['drop_pp']:.2f} pp"


def val_correct(model: Any, dataset: Any) -> np.ndarray:
    """Per validation image: whether a Keras model's top-1 is right (scored by :func:`edgekit.train.trainer.predict`,
    eagerly on the few hundred images of small data)."""
    from edgekit.train.trainer import predict

    return np.asarray(predict(model, dataset.x_val).argmax(axis=1) == dataset.y_val)


def _next_spend(lo: float, hi: float | None) -> float | None:
    """The next spend of the search (in budgets of one-shot drop), or None when the bracket is resolved.

    ``lo``: the boldest spend that held (0: none yet); ``hi``: the smallest that broke (None: none yet).
    Nothing held yet: halve towards zero (the parent may be sensitive). Something held: the geometric middle
    of ``lo`` and ``hi`` — or of ``lo`` and :data:`MAX_SPEND` while nothing has broken, so an attempt that holds
    is followed by one that is bolder by half the remaining bracket (in octaves), not by a fixed small factor.
    """
    if lo <= 0:
        return None if hi is None or hi < 0.05 else hi / 2
    top = MAX_SPEND if hi is None else hi
    return None if top / lo < RESOLUTION else math.sqrt(lo * top)


def _run_budgeted(stage: str, kind: str, parent: Any, dataset: Any, analysis: dict[str, Any],
                  apply: Callable[[Any, dict[str, float]], Any], budget_pp: float, reference: float | None,
                  max_attempts: int, slack: float,
                  evaluate: Callable[[Any, Any], float] | None = None,
                  reference_correct: Any = None) -> tuple[Any, BudgetDecision]:
    """Search how much *one-shot* drop the greedy choice may spend (× the budget left), verified after fine-tuning.

    The one-shot prediction (per-layer drops without fine-tuning, added up) overestimates what is left after
    fine-tuning by a model-dependent factor (on the reference CNN a 20 pp one-shot choice costs < 1 pp once
    fine-tuned; on a compact BatchNorm model far less is recovered), so the spend is searched, not predicted:

    1. the first attempt spends ``slack`` budgets (safe: a sensitive model still gets a choice that holds);
    2. then bisection in log-spend over the bracket [boldest that held, smallest that broke], where an open top
       is :data:`MAX_SPEND` (:func:`_next_spend`): a choice that holds is followed by a *bolder* one half-way (in
       octaves) to the top, one that breaks by a smaller one; while nothing holds, the spend halves;
    3. a spend whose greedy choice was already measured reuses that outcome (no fine-tuning run);
    4. it ends after ``max_attempts`` fine-tuning runs or when the bracket is narrower than :data:`RESOLUTION`.

    Every attempt starts from ``parent``; of those that held, the one removing the most is kept, and the one
    removing the next most is the decision's ``runner_up`` (what certification can fall back to when the kept one,
    the winner of several looks at the same selection images, fails on images that chose nothing). ``evaluate``
    (model, dataset) → validation accuracy defaults to :func:`val_accuracy`. ``reference_correct``: the trained
    model's per-image validation correctness, which each attempt is paired with (:func:`budget_check`).
    """
    measure = evaluate or val_accuracy
    parent_acc = measure(parent, dataset)
    ref = parent_acc if reference is None else float(reference)
    left = budget_pp - _drop(ref, parent_acc)
    layers = analysis["layers"]
    decision = BudgetDecision(stage, "dropped", budget_pp, ref, parent_acc, parent_acc)
    if left <= 0:
        decision.reason = f"the parent already uses {_drop(ref, parent_acc):.2f} pp of the {budget_pp:g} pp budget"
        return parent, decision
    held_choices: list[HeldChoice] = []
    lo, hi = 0.0, None  # spends: boldest that held, smallest that broke
    spend: float | None = slack
    outcome: dict[tuple[tuple[str, float], ...], bool] = {}  # greedy choice -> held
    broke_before_best = False
    for _ in range(200):  # bounded: a repeated choice costs no fine-tuning, only a step of the bracket
        if spend is None or len(decision.attempts) >= max_attempts:
            break
        choice = choose_levels(layers, left * spend, kind)
        key = tuple(sorted(choice.items()))
        if not choice:  # even the smallest level of every layer is predicted past this spend
            if hi is None and lo <= 0:
                spend = spend * 2 if spend * 2 <= MAX_SPEND else None
            else:
                lo = spend
                spend = _next_spend(lo, hi)
            continue
        if key in outcome:
            lo, hi = (spend, hi) if outcome[key] else (lo, spend)
            spend = _next_spend(lo, hi)
            continue
        started = time.perf_counter()
        model = apply(parent, choice)
        acc = measure(model, dataset)
        check = budget_check(ref, acc, budget_pp, parent, model, dataset, reference_correct=reference_correct,
                             predict_certificate=True)
        held = check["held"]
        outcome[key] = held
        decision.attempts.append({"per_layer": dict(choice), "spend_pp": round(left * spend, 3),
                                  "predicted_one_shot_pp": round(predicted_drop(layers, choice, kind), 3),
                                  "val_accuracy": round(acc, 6), "drop_pp": _drop(ref, acc), **check,
                                  "seconds": round(time.perf_counter() - started, 1)})
        log.info("%s attempt %d: %s → %s", stage, len(decision.attempts), choice,
                 check.get("verdict") or f"selection drop {_drop(ref, acc):.2f} pp")
        if held:
            held_choices.append(HeldChoice(model, dict(choice), acc))
            lo = spend
        else:
            broke_before_best = broke_before_best or not held_choices
            hi = spend
        spend = _next_spend(lo, hi)
    if not held_choices:
        last = decision.attempts[-1] if decision.attempts else None
        decision.reason = ("no layer can take the smallest measured level within the budget" if last is None else
                           f"every attempt broke the {budget_pp:g} pp budget (last: {_last_drop(last)}); "
                           "the stage is dropped and the parent kept")
        return parent, decision
    ranked = sorted(held_choices, key=lambda h: _removed(layers, h.per_layer, kind), reverse=True)
    best = ranked[0]
    decision.action = "backed_off" if broke_before_best else "applied"
    decision.val_accuracy, decision.per_layer = best.val_accuracy, dict(best.per_layer)
    decision.runner_up = ranked[1] if len(ranked) > 1 else None
    decision.reason = _search_reason(decision, budget_pp, spend, max_attempts)
    return best.model, decision


def _search_reason(decision: BudgetDecision, budget_pp: float, spend: float | None, max_attempts: int) -> str:
    """Why the search stopped where it did, and what it kept, for the report."""
    n = len(decision.attempts)
    seconds = sum(float(a.get("seconds", 0.0)) for a in decision.attempts)
    broken = [a for a in decision.attempts if not a["held"]]
    kept = next(a for a in decision.attempts if a["held"] and a["per_layer"] == decision.per_layer)
    why = ("the bracket between what held and what broke is resolved" if spend is None and broken else
           "no bolder choice is left to try" if spend is None else
           f"the {max_attempts} fine-tuning runs allowed are spent")
    head = f"{n} attempt(s), {seconds:.0f} s of fine-tuning; {why}"
    if broken:
        worst = max(broken, key=lambda a: a["drop_pp"])
        head += f"; {len(broken)} bolder choice(s) broke the budget after fine-tuning (worst {_last_drop(worst)})"
    return f"{head}; kept the held choice that removes the most ({_last_drop(kept)})"


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
    d.breach = not within_budget(d.drop_pp, budget_pp)
    d.reason = explicit_value_note(what, value, d.drop_pp, budget_pp)
    return model, d


def explicit_value_note(what: str, value: float, drop_pp: float, budget_pp: float) -> str:
    """The plain sentence for an explicit user value against the budget (the run's warning when it breaks it),
    e.g. 'sparsity 0.8 was set explicitly; validation drop 19.00 pp breaks the 1 pp budget'."""
    verdict = (f"is within the {budget_pp:g} pp budget" if within_budget(drop_pp, budget_pp)
               else f"breaks the {budget_pp:g} pp budget")
    return f"{what} {value:g} was set explicitly; validation drop {drop_pp:.2f} pp {verdict}"


def budgeted_magnitude_prune(model: Any, dataset: Any, analysis: dict[str, Any], *,
                             budget_pp: float = DEFAULT_BUDGET_PP, reference_val_accuracy: float | None = None,
                             sparsity: float | None = None, cfg: Any = None, from_logits: bool = False,
                             max_attempts: int = DEFAULT_ATTEMPTS, slack: float = ONE_SHOT_SLACK,
                             reference_correct: Any = None) -> tuple[Any, BudgetDecision]:
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
                         reference_val_accuracy, max_attempts, slack, reference_correct=reference_correct)


def budgeted_structured(model: Any, dataset: Any, analysis: dict[str, Any], *, budget_pp: float = DEFAULT_BUDGET_PP,
                        reference_val_accuracy: float | None = None, ratio: float | None = None, epochs: int = 2,
                        batch_size: int = 64, learning_rate: float = 5e-4, criterion: str = "l1",
                        from_logits: bool = False, max_attempts: int = DEFAULT_ATTEMPTS,
                        slack: float = ONE_SHOT_SLACK, reference_correct: Any = None) -> tuple[Any, BudgetDecision]:
    """Structured filter removal with per-layer fractions chosen inside ``budget_pp``, then fine-tuning.

    ``ratio`` (an explicit user value) removes that fraction everywhere and flags a breach instead.
    """
    from edgekit.compression.structured import prune_structured
    from edgekit.train.trainer import STRUCTURED_FINE_TUNE, FitSettings, fine_tune

    def finetune(pruned: Any) -> Any:
        fine_tune(pruned, dataset.x_train, dataset.y_train,
                  FitSettings(epochs, batch_size, learning_rate, False, from_logits), STRUCTURED_FINE_TUNE,
                  teacher=model, validation=(dataset.x_val, dataset.y_val))
        return pruned

    def apply(parent: Any, per_layer: dict[str, float]) -> Any:
        return finetune(prune_structured(parent, per_layer=per_layer, criterion=criterion).model)  # type: ignore[arg-type]

    if ratio is not None:
        pruned = finetune(prune_structured(model, ratio=float(ratio), criterion=criterion).model)  # type: ignore[arg-type]
        return _user_value("prune.structured", model, dataset, pruned, float(ratio), "structured ratio", budget_pp,
                           reference_val_accuracy)
    return _run_budgeted("prune.structured", "structured", model, dataset, analysis, apply, budget_pp,
                         reference_val_accuracy, max_attempts, slack, reference_correct=reference_correct)
