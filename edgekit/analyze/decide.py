"""Per-layer decisions from a sensitivity table, inside an accuracy budget (pure functions, no TensorFlow).

A sensitivity table is the ``layers`` list of :func:`edgekit.analyze.sensitivity.analyze_model`:
each row holds, for one layer, the validation-accuracy drop (pp) at several magnitude
sparsities (``prune``), structured filter fractions (``structured``) and with only that layer
in int8 (``quant``). Drops are treated as additive, which is a prediction only: every
decision made here is verified on validation data afterwards (:mod:`edgekit.compression.budget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_BUDGET_PP = 1.0
"""Default validation-accuracy budget of compression, in percentage points against the trained fp32 model."""


def _levels(drops: Mapping[str, float]) -> list[tuple[float, float]]:
    return sorted((float(k), float(v)) for k, v in drops.items())


def largest_level_within(drops: Mapping[str, float], limit_pp: float) -> float:
    """The largest level (sparsity or fraction) whose drop, and every lower level's drop, is ≤ ``limit_pp``;
    0.0 if none."""
    best = 0.0
    for level, drop in _levels(drops):
        if drop > limit_pp:
            break
        best = level
    return best


def _drop_at(drops: Mapping[str, float], level: float) -> float:
    if level <= 0:
        return 0.0
    for lv, d in _levels(drops):
        if abs(lv - level) < 1e-9:
            return max(0.0, d)
    raise KeyError(f"level {level:g} was not measured")


def predicted_drop(layers: Sequence[Mapping[str, Any]], choice: Mapping[str, float], kind: str) -> float:
    """Sum of the measured per-layer drops (≥ 0) at the chosen levels: the additive prediction."""
    rows = {r["name"]: r for r in layers}
    return sum(_drop_at(rows[n][kind], lv) for n, lv in choice.items() if lv > 0)


def choose_levels(layers: Sequence[Mapping[str, Any]], budget_pp: float, kind: str = "prune",
                  exclude: Sequence[str] = ()) -> dict[str, float]:
    """Per-layer levels (``kind`` = ``prune`` sparsities or ``structured`` fractions) within ``budget_pp``.

    Greedy: repeatedly raise the layer whose next measured level removes the most
    weights (``prune``: parameters; ``structured``: MACs) per pp of predicted drop,
    while the predicted total stays within the budget. Layers never go past a level
    whose drop alone exceeds the budget. Layers in ``exclude`` stay at 0.
    """
    gain_key = "params" if kind == "prune" else "macs"
    rows = [r for r in layers if r.get(kind) and r["name"] not in exclude]
    choice = {r["name"]: 0.0 for r in rows}
    total = 0.0
    while True:
        best: tuple[float, str, float, float] | None = None
        for r in rows:
            current = choice[r["name"]]
            higher = [(lv, d) for lv, d in _levels(r[kind]) if lv > current + 1e-9]
            if not higher:
                continue
            level, drop = higher[0]
            delta = max(0.0, drop) - _drop_at(r[kind], current)
            if drop > budget_pp or total + max(delta, 0.0) > budget_pp + 1e-9:
                continue
            gain = float(r.get(gain_key) or 1) * (level - current)
            score = gain / max(delta, 1e-3)
            if best is None or score > best[0]:
                best = (score, r["name"], level, max(delta, 0.0))
        if best is None:
            return {n: lv for n, lv in choice.items() if lv > 0}
        _, name, level, delta = best
        choice[name] = level
        total += delta


def back_off(layers: Sequence[Mapping[str, Any]], choice: Mapping[str, float],
             kind: str = "prune") -> tuple[dict[str, float], str]:
    """Lower the guiltiest layer (largest predicted drop at its level; ties: highest level) by one measured level.

    Returns the new choice and a sentence saying what changed ('' when nothing is left to lower).
    """
    rows = {r["name"]: r for r in layers}
    live = [(n, lv) for n, lv in choice.items() if lv > 0]
    if not live:
        return dict(choice), ""
    name, level = max(live, key=lambda item: (_drop_at(rows[item[0]][kind], item[1]), item[1]))
    lower = [lv for lv, _ in _levels(rows[name][kind]) if lv < level - 1e-9]
    new = dict(choice)
    new[name] = lower[-1] if lower else 0.0
    if new[name] <= 0:
        del new[name]
    what = "sparsity" if kind == "prune" else "filter fraction"
    return new, (f"{name}: {what} {level:g} → {new.get(name, 0.0):g} "
                 f"(predicted {_drop_at(rows[name][kind], level):.2f} pp)")


def quant_guilt(row: Mapping[str, Any]) -> tuple[float, float]:
    """Sort key of int8 guilt: the drop with only this layer in int8, then the lowest SNR."""
    q = row.get("quant") or {}
    snr = q.get("snr_db")
    return (float(q.get("drop_pp", 0.0)), -float(snr) if snr is not None else 0.0)


def choose_int8_protection(layers: Sequence[Mapping[str, Any]], budget_pp: float, share: float = 0.5,
                           additive: bool = True) -> dict[str, str]:
    """Layers to keep out of int8, with the reason, from the per-layer int8 drops.

    A layer whose int8 alone costs more than ``share`` × budget is protected; then, with
    ``additive``, the guiltiest remaining layers are protected until the predicted total of
    the rest fits the budget. (Where the whole model can be checked in simulated int8, use
    ``share=1, additive=False`` and let that check protect more: single-layer drops on a
    small validation set are mostly noise, and they do not add up.)
    """
    rows = sorted((r for r in layers if r.get("quant")), key=quant_guilt, reverse=True)
    protected: dict[str, str] = {}
    for r in rows:
        drop = float(r["quant"].get("drop_pp", 0.0))
        if drop > budget_pp * share:
            protected[r["name"]] = (f"int8 on this layer alone costs {drop:.2f} pp of validation accuracy "
                                    f"(more than {share:g} × the {budget_pp:g} pp budget)")
    rest = [r for r in rows if r["name"] not in protected]
    while additive and rest and sum(max(0.0, float(r["quant"].get("drop_pp", 0.0))) for r in rest) > budget_pp:
        r = rest.pop(0)
        protected[r["name"]] = (f"int8 costs {float(r['quant']['drop_pp']):.2f} pp here; the other layers' int8 costs "
                                f"add up past the {budget_pp:g} pp budget")
    return protected


def next_int8_protection(layers: Sequence[Mapping[str, Any]], protected: Mapping[str, str]) -> str | None:
    """The guiltiest layer not yet protected (None when every layer is)."""
    rest = sorted((r for r in layers if r.get("quant") and r["name"] not in protected), key=quant_guilt, reverse=True)
    return rest[0]["name"] if rest else None


def guilt(row: Mapping[str, Any]) -> float:
    """How much a layer costs, for ordering a report: int8 drop + drop at 50 % sparsity + drop at 25 % filters."""
    prune = row.get("prune") or {}
    structured = row.get("structured") or {}
    return (max(0.0, float((row.get("quant") or {}).get("drop_pp", 0.0)))
            + max(0.0, float(prune.get("0.5", 0.0)))
            + max(0.0, float(structured.get("0.25", 0.0))))


def recipe_grid(layers: Sequence[Mapping[str, Any]], budget_pp: float,
                shares: Sequence[float] = (0.5, 1.0, 2.0)) -> list[dict[str, Any]]:
    """Search recipes driven by the sensitivity instead of a fixed 0/0.8 × 0/0.25/0.5 grid.

    For each share of the budget, per-layer sparsities and filter fractions chosen by
    :func:`choose_levels` (structured takes a third of the share, magnitude the rest);
    shares above 1 are deliberately aggressive (fine-tuning recovers part of the one-shot drop).
    Recipes that repeat an earlier one are left out; the first is always no pruning.
    """
    out: list[dict[str, Any]] = [{"label": "none", "per_layer_sparsity": {}, "per_layer_structured": {}}]
    seen: set[tuple[Any, Any]] = {((), ())}
    for share in shares:
        structured = choose_levels(layers, budget_pp * share / 3, "structured")
        prune = choose_levels(layers, budget_pp * share * 2 / 3, "prune")
        key = (tuple(sorted(prune.items())), tuple(sorted(structured.items())))
        if key in seen:
            continue
        seen.add(key)
        out.append({"label": f"budget×{share:g}", "per_layer_sparsity": prune, "per_layer_structured": structured})
    return out
