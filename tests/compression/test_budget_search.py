"""The budgeted pruning search (edgekit.compression.budget._run_budgeted): it spends the budget when fine-tuning
recovers most of the one-shot drop, backs off when it recovers little, and never keeps a choice that broke it.

The fine-tuning is replaced by a seeded response curve (validation accuracy as a function of the choice's
predicted one-shot drop) so the rule itself is checked on many curves in milliseconds; the real fine-tuning
runs in tests/analyze/test_analyze.py and tests/e2e/test_closed_loop.py (slow)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from edgekit.analyze.decide import choose_levels, predicted_drop
from edgekit.compression.budget import MAX_SPEND, ONE_SHOT_SLACK, _removed, _run_budgeted

# the sensitivity of the reference CNN on Fashion-MNIST after structured pruning (runs/wire-fm-a5), rounded
LAYERS: list[dict[str, Any]] = [
    {"name": "conv1", "params": 160, "prune": {"0.3": 5.1, "0.5": 5.3, "0.7": 26.4, "0.8": 26.1, "0.9": 35.4}},
    {"name": "output", "params": 330, "prune": {"0.3": 0.47, "0.5": 4.65, "0.7": 11.4, "0.8": 16.5, "0.9": 56.9}},
    {"name": "conv2", "params": 4640, "prune": {"0.3": 0.48, "0.5": 0.85, "0.7": 1.47, "0.8": 4.17, "0.9": 10.2}},
    {"name": "dense1", "params": 25632, "prune": {"0.3": -0.05, "0.5": 0.58, "0.7": 1.13, "0.8": 3.7, "0.9": 11.5}},
]
ANALYSIS = {"layers": LAYERS}
REF = 0.90


def _search(fine_tuned_drop: Callable[[float], float], max_attempts: int, budget_pp: float = 1.0) -> tuple[Any, Any]:
    """Run the search with validation drop (pp) = fine_tuned_drop(predicted one-shot drop of the choice)."""
    def apply(parent: Any, choice: dict[str, float]) -> dict[str, float]:
        return dict(choice)

    def evaluate(model: Any, dataset: Any) -> float:
        if model == "parent":
            return REF
        return REF - fine_tuned_drop(predicted_drop(LAYERS, model, "prune")) / 100

    return _run_budgeted("prune.magnitude", "prune", "parent", None, ANALYSIS, apply, budget_pp, REF,
                         max_attempts, ONE_SHOT_SLACK, evaluate=evaluate)


def _boldest_within(fine_tuned_drop: Callable[[float], float], budget_pp: float = 1.0) -> dict[str, float]:
    """Of all greedy choices that hold, the one removing the most parameters (the search's ideal answer)."""
    spends = np.geomspace(0.01, MAX_SPEND * budget_pp, 400)
    held = [c for c in (choose_levels(LAYERS, s, "prune") for s in spends)
            if c and fine_tuned_drop(predicted_drop(LAYERS, c, "prune")) <= budget_pp]
    return max(held, key=lambda c: _removed(LAYERS, c, "prune"))


def test_when_fine_tuning_recovers_most_the_search_spends_the_budget() -> None:
    # the reference CNN measured: one-shot 2.6 → -0.63, 8.3 → -0.08, 20.3 → +0.80, 43.5 → +2.18 pp after fine-tuning
    curve = lambda p: float(np.interp(p, [0, 2.6, 8.33, 20.33, 43.48, 120], [-0.6, -0.63, -0.08, 0.8, 2.18, 9.0]))
    model, d = _search(curve, max_attempts=4)
    assert d.action in ("applied", "backed_off") and len(d.attempts) <= 4
    assert 0.4 <= d.drop_pp <= 1.0 and model == d.per_layer  # budget used, never more
    # a ×2-per-held-attempt rule (from 2 budgets, 3 attempts) would stop at 8 budgets: dense1 0.8, -0.08 pp
    assert d.per_layer["dense1"] == 0.9
    assert _removed(LAYERS, d.per_layer, "prune") >= 0.97 * _removed(LAYERS, _boldest_within(curve), "prune")


def test_every_attempt_after_a_held_one_is_bolder_by_a_real_step() -> None:
    _, d = _search(lambda p: -0.5, max_attempts=4)  # nothing ever breaks
    spends = [a["spend_pp"] for a in d.attempts]
    # each one half-way (in octaves) from the last held spend to the top of the bracket
    assert all(b == pytest.approx(np.sqrt(a * MAX_SPEND), rel=1e-3) for a, b in zip(spends, spends[1:]))
    assert spends[1] > 5 * spends[0]
    assert d.action == "applied" and ("no bolder choice" in d.reason or "runs allowed are spent" in d.reason)


@pytest.mark.parametrize("recovery", [0.02, 0.05, 0.1, 0.3, 1.0, 2.0])
def test_the_budget_holds_whatever_fine_tuning_recovers(recovery: float) -> None:
    rng = np.random.default_rng(int(recovery * 100))
    noise = {}

    def curve(p: float) -> float:  # drop grows with the one-shot prediction; seeded noise of ±0.2 pp per choice
        return recovery * p - 0.2 + noise.setdefault(round(p, 3), float(rng.uniform(-0.2, 0.2)))

    model, d = _search(curve, max_attempts=4)
    assert len(d.attempts) <= 4
    assert all(a["held"] == (a["drop_pp"] <= 1.0 + 1e-9) for a in d.attempts)
    if d.action == "dropped":
        assert model == "parent" and all(not a["held"] for a in d.attempts) and d.reason
    else:
        assert d.drop_pp <= 1.0 + 1e-9 and any(a["held"] and a["per_layer"] == d.per_layer for a in d.attempts)


def test_a_sensitive_model_halves_the_spend_until_something_holds() -> None:
    _, d = _search(lambda p: 3.0 * p, max_attempts=4)  # fine-tuning recovers nothing; one-shot drops triple
    spends = [a["spend_pp"] for a in d.attempts]
    assert spends[0] == pytest.approx(2.0) and spends == sorted(spends, reverse=True)
    assert d.action in ("backed_off", "dropped") and d.drop_pp <= 1.0 + 1e-9


def test_the_runner_up_is_the_held_choice_that_removes_the_next_most() -> None:
    """What certification falls back to (prune.lighter): the second of the held choices by what they remove."""
    def curve(p: float) -> float:  # the reference CNN's, as in the first test
        return float(np.interp(p, [0, 2.6, 8.33, 20.33, 43.48, 120], [-0.6, -0.63, -0.08, 0.8, 2.18, 9.0]))

    _, d = _search(curve, max_attempts=4)
    held = [a["per_layer"] for a in d.attempts if a["held"]]
    assert len(held) >= 2 and d.runner_up is not None
    by_removed = sorted(held, key=lambda c: _removed(LAYERS, c, "prune"), reverse=True)
    assert d.per_layer == by_removed[0] and d.runner_up.per_layer == by_removed[1]
    assert d.runner_up.model == by_removed[1]  # the fine-tuned model of that attempt, not a redo
    assert d.to_dict()["runner_up"]["per_layer"] == by_removed[1]  # the report names it; no model in the record
    _, once = _search(curve, max_attempts=1)
    assert once.runner_up is None and "runner_up" not in once.to_dict()
