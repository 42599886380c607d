"""Accuracy-budget search: measure every candidate, keep the Pareto front, pick one.

Candidates are the deployable artifacts (TFLite/ONNX) of the plan (with ``--search``, of the recipes of
the grid, ``CompressConfig.search_*``). The test set is never used to choose; the drop against the trained fp32
model is judged by its certified upper bound (``metrics["val_drop_bound"]``, :func:`edgekit.rules.certify`: on
images that chose nothing, jointly over every file certified).
Latency is the p50 at batch 1 on the search target, at 1 thread where it ran, else its fewest threads (against
its fp32 baseline: at the thread count both ran, :func:`edgekit.rules.batch1_pair`). What may be
chosen follows the one rule of :mod:`edgekit.rules`; among those, inside the budget (and the latency
target, if any), the smallest file wins, then the fastest. With benchmarking off, or on a microcontroller target,
speed is not checked, and the choice says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from edgekit.artifact import Artifact
from edgekit.formats import deployable_formats
from edgekit.rules import (
    Row,
    SpeedCheck,
    baseline_exclusion,
    batch1_p50,
    batch1_pair,
    checked_pair,
    common_threads,
    recorded_speed_checks,
    slower,
    within_budget,
)

DEPLOYABLE = deployable_formats()  # formats a device runtime executes (edgekit.formats)


def _rows_of(rows: Iterable[dict[str, Any]]) -> dict[str, list[Row]]:
    """Artifact id → the fields of its benchmark rows that the rule reads."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        row = Row.from_dict(r)
        out.setdefault(row.artifact_id, []).append(row)
    return out


def _latency(rows: list[Row], target: str) -> float | None:
    """A file's batch-1 p50 on ``target``: at 1 thread, else its fewest (a microcontroller row has none)."""
    p50 = batch1_p50(rows, target)
    threads = common_threads(p50, p50)
    return p50[threads] if threads is not None else None


def speed_unchecked(bench: bool, target: str, targets: Iterable[Any]) -> str | None:
    """Why speed against the fp32 baseline is not checked (None: it is): no benchmark was run, or ``target`` is a
    microcontroller (TFLM on the host measures no latency)."""
    from edgekit.mcu import is_mcu

    if not bench:
        return "speed not checked (benchmarking was off)"
    if any(is_mcu(t) and t.name == target for t in targets):
        return f"speed not checked ({target} is a microcontroller: no latency is measured)"
    return None


def pareto_front(cands: list[dict[str, Any]]) -> list[str]:
    """Ids of candidates no other candidate beats on all of (val accuracy ↑, bytes ↓, latency ↓)."""

    def key(c: dict[str, Any]) -> tuple[float, float, float]:
        lat = c["latency_ms"] if c["latency_ms"] is not None else float("inf")
        return (-c["val_accuracy"], c["bytes"], lat)

    front = []
    for c in cands:
        kc = key(c)
        dominated = any(
            all(a <= b for a, b in zip(key(o), kc)) and any(a < b for a, b in zip(key(o), kc))
            for o in cands if o is not c
        )
        if not dominated:
            front.append(c["id"])
    return front


def _baselines(artifacts: list[Artifact], train_id: str) -> dict[str, Artifact]:
    """The fp32 baseline file of each format: the plain export of the trained model."""
    return {a.format: a for a in artifacts
            if a.format in DEPLOYABLE and a.parent_id == train_id and a.stage.startswith("export.")
            and a.precision == "fp32"}


def speed_suspects(artifacts: list[Artifact], rows: list[dict[str, Any]], target: str,
                   skip: Iterable[str] = ()) -> list[SpeedCheck]:
    """The smaller files the benchmark found slower at batch 1 on ``target`` than the fp32 baseline of their format,
    each paired with it and holding the two first p50s: :mod:`edgekit.bench.retime` times them again in turns
    before :func:`exclusions` judges them (a slow minute of a shared machine is not a slower file). Files in
    ``skip`` (excluded already, e.g. failed verification) are left out."""
    from edgekit.fsutil import file_bytes

    train = next((a for a in artifacts if a.stage == "train"), None)
    if train is None:
        return []
    skip, rows_of = set(skip), _rows_of(rows)
    out = []
    for fmt, b in _baselines(artifacts, train.id).items():
        base_bytes = file_bytes(b.path)
        for a in artifacts:
            if a.format != fmt or a.id == b.id or a.id in skip or file_bytes(a.path) >= base_bytes:
                continue
            mine, theirs, threads = batch1_pair(rows_of.get(a.id, []), rows_of.get(b.id, []), target)
            if threads is not None and mine is not None and theirs is not None and slower(mine, theirs):
                out.append(SpeedCheck(a.id, b.id, target, threads, (mine,), (theirs,)))
    return out


def parent_speed_suspects(artifacts: list[Artifact], rows: list[dict[str, Any]], targets: Iterable[str],
                          skip: Iterable[str] = ()) -> list[SpeedCheck]:
    """The files the benchmark found slower at batch 1 than their parent's file of the same format (the reference of
    :mod:`edgekit.rules.parents`) on one of ``targets``, each paired with it and holding the two first p50s:
    timed again in turns before the report flags them, like :func:`speed_suspects`. Files in ``skip`` are left
    out."""
    from edgekit.rules.parents import file_records, judge

    wanted, skip = set(targets), set(skip)

    def make(artifact_id: str, ref_id: str, kind: str, value: float, ref_value: float, _unit: str, _message: str,
             target: str | None = None, _batch: int | None = None, threads: int | None = None) -> SpeedCheck | None:
        if kind != "slower" or target not in wanted or threads is None or artifact_id in skip:
            return None
        return SpeedCheck(artifact_id, ref_id, target, threads, (value,), (ref_value,))

    flagged, _ = judge(file_records(artifacts), [Row.from_dict(r) for r in rows], make=make)
    return [f for f in flagged if f is not None]


def speed_checks(artifacts: Iterable[Artifact]) -> dict[tuple[str, str], SpeedCheck]:
    """(file id, id of the file it was timed with) → the pair timed again in turns (the ``speed_checks`` metric the
    pipeline records)."""
    return {(c.file_id, c.baseline_id): c for a in artifacts for c in recorded_speed_checks(a.id, a.metrics)}


def choice_target(cfg: Any, targets: list[Any]) -> str:
    """The target the choice is made on: ``cfg.target``, else the first target."""
    return str(cfg.target or (targets[0].name if targets else ""))


def candidates(artifacts: list[Artifact], rows: list[dict[str, Any]], target: str,
               baseline_val: float) -> list[dict[str, Any]]:
    """One record per deployable artifact: size, validation accuracy, drop and its upper bound (pp), latency."""
    from edgekit.fsutil import file_bytes

    rows_of = _rows_of(rows)
    out = []
    for a in artifacts:
        if a.format not in DEPLOYABLE:
            continue
        val = float(a.metrics["val_accuracy"])
        cert = a.metrics.get("val_drop_bound") or {}  # edgekit.pipeline: certified on images that chose nothing
        drop = float(cert["drop_pp"]) if "drop_pp" in cert else (baseline_val - val) * 100.0
        bound = cert.get("bound_pp")
        out.append({"id": a.id, "name": a.name, "format": a.format, "precision": a.precision,
                    "bytes": file_bytes(a.path), "val_accuracy": val, "val_drop_pp": drop,
                    "val_drop_bound_pp": float(bound) if bound is not None else drop,
                    "verdict": str(cert.get("verdict") or ""),
                    "latency_ms": _latency(rows_of.get(a.id, []), target)})
    return out


def exclusions(artifacts: list[Artifact], rows: list[dict[str, Any]], cands: list[dict[str, Any]], target: str,
               verification: dict[str, Any] | None = None, budget_pp: float | None = None,
               check_speed: bool = True) -> dict[str, str]:
    """Candidate id → why it may not be chosen (a candidate absent here is eligible), by the one rule of
    :mod:`edgekit.rules`:

    - it failed its verification against its parent (it leaves the search; the run goes on);
    - it is the fp32 baseline of its format, or not smaller than it, or slower than it at batch 1 on ``target``
      at the same thread count (:func:`~edgekit.rules.baseline_exclusion`; judged on the two timed again in
      turns where the benchmark found it slower, :func:`speed_suspects`); with ``check_speed``
      (benchmarking on), a file or baseline without an ok batch-1 row there leaves too (its speed is unknown);
    - with ``budget_pp``: the certified upper bound of its drop is outside the budget
      (:func:`~edgekit.rules.within_budget`).

    Being larger or slower than its parent is flagged (:func:`flags`), not excluded.
    """
    rows_of = _rows_of(rows)
    train = next(a for a in artifacts if a.stage == "train")
    base = _baselines(artifacts, train.id)
    by_id = {c["id"]: c for c in cands}
    checks = speed_checks(artifacts)
    why: dict[str, str] = {}
    for vid, v in (verification or {}).items():
        if vid in by_id and v.get("status") not in (None, "ok"):
            why[vid] = f"failed verification against its parent: {v.get('reason') or v.get('status')}"
    for c in cands:
        if c["id"] in why:
            continue
        b = base.get(c["format"])
        ref = by_id.get(b.id) if b is not None else None
        if b is not None and c["id"] == b.id:
            why[c["id"]] = f"the fp32 {c['format']} baseline itself"
            continue
        if ref is not None:
            mine, theirs, threads = batch1_pair(rows_of.get(c["id"], []), rows_of.get(ref["id"], []), target)
            mine, theirs, retimed = checked_pair(checks.get((c["id"], ref["id"])), mine, theirs, target, threads)
            if reason := baseline_exclusion(c["format"], c["bytes"], mine, ref["bytes"], theirs, target,
                                            check_speed=check_speed, retimed=retimed):
                why[c["id"]] = reason
                continue
        if budget_pp is not None and not within_budget(c["val_drop_bound_pp"], budget_pp):
            why[c["id"]] = c["verdict"] or (f"drop {c['val_drop_pp']:.2f} pp, upper bound "
                                            f"{c['val_drop_bound_pp']:.2f} pp: outside the {budget_pp:g} pp budget")
    return why


class _Flagged:
    """A flag of :func:`edgekit.rules.parents.judge`, as far as the chooser reads it."""

    def __init__(self, artifact_id: str, _ref: str, _kind: str, _value: float, _ref_value: float, _unit: str,
                 message: str, target: str | None = None, *_: Any) -> None:
        self.artifact_id, self.message, self.target = artifact_id, message, target


def flags(artifacts: list[Artifact], rows: list[dict[str, Any]], target: str, budget_pp: float) -> dict[str, list[str]]:
    """Candidate id → how it is worse than its parent on ``target`` (validation accuracy; rule 3: shown, not
    excluded)."""
    from edgekit.rules.parents import file_records, judge

    out: dict[str, list[str]] = {}
    flagged, _ = judge(file_records(artifacts), [Row.from_dict(r) for r in rows], metric="val_accuracy",
                       budget_pp=budget_pp, make=_Flagged)
    for g in flagged:
        if g.target is None or g.target == target:
            out.setdefault(g.artifact_id, []).append(g.message)
    return out


def certification_order(cfg: Any, artifacts: list[Artifact], rows: list[dict[str, Any]], targets: list[Any],
                        verification: dict[str, Any] | None = None,
                        predicted: Mapping[str, float] | None = None) -> list[str]:
    """The files :func:`choose` would prefer, best first, decided before any file is certified: eligible on
    everything but the certificate (verified, smaller and not slower than the fp32 baseline of its format, fitting
    every microcontroller target) with a selection-split drop inside the budget; those whose ``predicted``
    certificate (:func:`edgekit.rules.predicted_bound_pp`, from the selection images) is inside the budget first,
    each group in the chooser's order (:func:`_order`). :func:`edgekit.rules.certify` spends the larger
    shares of the error on them."""
    target, budget, cands = _measured(cfg, artifacts, rows, targets)
    unchecked = speed_unchecked(bool(getattr(cfg, "bench", True)), target, targets)
    excluded = exclusions(artifacts, rows, cands, target, verification, check_speed=unchecked is None)
    excluded.update(_mcu_filter(artifacts, rows, targets))
    ok = [c for c in cands if c["id"] not in excluded and _meets(cfg, c, budget, "val_drop_pp")]
    predicted = predicted or {}
    order = _order(_steps(artifacts))
    ok.sort(key=lambda c: (not within_budget(predicted.get(c["id"], 0.0), budget), *order(c)))
    return [c["id"] for c in ok]


def _measured(cfg: Any, artifacts: list[Artifact], rows: list[dict[str, Any]],
              targets: list[Any]) -> tuple[str, float, list[dict[str, Any]]]:
    """The target the choice is made on, the budget (pp) and the :func:`candidates`."""
    target = choice_target(cfg, targets)
    budget = cfg.max_accuracy_drop if cfg.max_accuracy_drop is not None else 1.0
    baseline = next(a for a in artifacts if a.stage == "train")
    return target, budget, candidates(artifacts, rows, target, float(baseline.metrics["val_accuracy"]))


def _meets(cfg: Any, c: dict[str, Any], budget: float, drop: str = "val_drop_bound_pp") -> bool:
    """A candidate's ``drop`` inside the budget, and its batch-1 p50 inside the latency target if there is one."""
    return within_budget(c[drop], budget) and (
        cfg.latency_target_ms is None or (c["latency_ms"] is not None and c["latency_ms"] <= cfg.latency_target_ms))


def _steps(artifacts: list[Artifact]) -> dict[str, int]:
    """Artifact id → how many stages made it from the trained model (its ``parent_id`` chain's length)."""
    from edgekit.rules.parents import ancestors

    by_id = {a.id: a for a in artifacts}
    return {a.id: len(ancestors(a, by_id)) for a in artifacts}


def _order(steps: dict[str, int]) -> Callable[[dict[str, Any]], tuple[float, int, float]]:
    """The chooser's preference: smallest, then made by the fewest stages (a stage that changed nothing, such as a
    pruning the budget dropped, copies its parent, and its files are the same bytes as their siblings'), then
    fastest."""
    def key(c: dict[str, Any]) -> tuple[float, int, float]:
        return (c["bytes"], steps.get(c["id"], 0), c["latency_ms"] if c["latency_ms"] is not None else float("inf"))
    return key


def choose(cfg: Any, artifacts: list[Artifact], rows: list[dict[str, Any]], targets: list[Any],
           verification: dict[str, Any] | None = None) -> dict[str, Any]:
    """The search section of the report: candidates, front, chosen id, and status.

    Only eligible candidates (see :func:`exclusions`) inside the budget (and the latency
    target, if any) are chosen from; the smallest wins, then the one made by fewer stages,
    then the fastest (:func:`_order`). When none is eligible, the fp32 baseline of the
    smallest format is handed out (``fallback``), so compression never makes the deliverable
    worse: only a baseline that is not excluded for another reason than being the baseline (a
    failed verification, a microcontroller it does not fit), judged on its point drop (a plain
    export, verified numerically against the trained model); with a latency target, nothing
    met is a failure. Speed against the baselines is checked only with benchmarking on
    (:func:`speed_unchecked`); otherwise the reason and summary say "speed not checked".
    """
    target, budget, cands = _measured(cfg, artifacts, rows, targets)
    front = pareto_front(cands)
    unfit = _mcu_filter(artifacts, rows, targets)
    unchecked = speed_unchecked(bool(getattr(cfg, "bench", True)), target, targets)
    excluded = exclusions(artifacts, rows, cands, target, verification, budget_pp=budget, check_speed=unchecked is None)
    for aid, why in unfit.items():
        excluded.setdefault(aid, why)
    worse = flags(artifacts, rows, target, budget)

    def meets(c: dict[str, Any], drop: str = "val_drop_bound_pp") -> bool:
        return _meets(cfg, c, budget, drop)

    order = _order(_steps(artifacts))
    ok = sorted((c for c in cands if meets(c) and c["id"] not in excluded), key=order)
    for c in cands:
        c["on_front"] = c["id"] in front
        c["within_budget"] = c in ok
        if c["id"] in excluded:
            c["excluded"] = excluded[c["id"]]
        if c["id"] in worse:
            c["worse_than_parent"] = worse[c["id"]]
    goal = f"certified accuracy drop (upper bound) ≤ {budget:g} pp" + (
        f" and p50 ≤ {cfg.latency_target_ms:g} ms on {target}" if cfg.latency_target_ms is not None else "")
    common = {"target": target, "budget_pp": budget, "latency_target_ms": cfg.latency_target_ms, "candidates": cands,
              "front": front, "excluded": excluded}
    if not ok:
        train = next(a for a in artifacts if a.stage == "train")
        base_ids = {a.id for a in _baselines(artifacts, train.id).values()}
        fallback = sorted((c for c in cands if c["id"] in base_ids and c["id"] not in unfit
                           and excluded.get(c["id"], "").endswith("baseline itself") and meets(c, "val_drop_pp")),
                          key=order)
        if fallback:
            best = fallback[0]
            reason = (f"no compressed candidate was eligible and met {goal} ({len(cands)} measured, "
                      f"{len(excluded)} excluded); handing out the fp32 baseline"
                      + (f"; {unchecked}" if unchecked else ""))
            return {"status": "ok", "chosen_id": best["id"], "fallback": True, **common, "reason": reason,
                    "summary": f"{reason}: **{best['name']}** ({best['bytes'] / 1024:.1f} KB)."}
        return {"status": "failed", "chosen_id": None, **common,
                "reason": f"no candidate met {goal}{_unfit_note(cands, unfit, meets)} ({len(cands)} measured, "
                          f"{len(excluded)} excluded)",
                "summary": f"No candidate met {goal}; {len(front)} on the Pareto front."}
    best = ok[0]
    beating = (f"smaller than the fp32 baseline of their format ({unchecked})" if unchecked else
               f"smaller and not slower than the fp32 baseline of their format on {target}")
    return {"status": "ok", "chosen_id": best["id"], "fallback": False, **common, "reason": unchecked or "",
            "summary": (f"Chose **{best['name']}** ({best['bytes'] / 1024:.1f} KB, "
                        f"validation drop {best['val_drop_pp']:+.2f} pp"
                        f" (upper bound {best['val_drop_bound_pp']:+.2f} pp)"
                        + (f", p50 {best['latency_ms']:.3f} ms" if best["latency_ms"] is not None else "")
                        + f") among {len(ok)} of {len(cands)} candidates meeting {goal}, {beating}; "
                        f"{len(excluded)} excluded, {len(front)} on the Pareto front.")}


def _unfit_note(cands: list[dict[str, Any]], unfit: dict[str, str], meets: Any) -> str:
    """' and fits the microcontroller: NAME not for TARGET: RAM …' when a file within the budget was excluded
    only for a microcontroller target (it needs more RAM or flash, or TFLM cannot run it); '' otherwise."""
    fitting_budget = [c for c in cands if c["id"] in unfit and meets(c)] or [c for c in cands if c["id"] in unfit]
    if not fitting_budget:
        return ""
    first = min(fitting_budget, key=lambda c: c["bytes"])
    return f" and fits the microcontroller: {first.get('name') or first['id']} {unfit[first['id']]}"


def sensitivity_grid(analysis: dict[str, Any], budget_pp: float | None = None) -> list[dict[str, Any]]:
    """Search recipes from a sensitivity analysis (``edgekit.analyze``) instead of the fixed grid: per-layer
    sparsities and filter fractions at several shares of the budget (:func:`edgekit.analyze.decide.recipe_grid`)."""
    from edgekit.analyze.decide import recipe_grid

    return recipe_grid(analysis["layers"], float(budget_pp if budget_pp is not None else analysis["budget_pp"]))


def default_choice(artifacts: list[Artifact], max_drop_pp: float = 1.0, rows: list[dict[str, Any]] | None = None,
                   target: str = "", verification: dict[str, Any] | None = None,
                   targets: Iterable[Any] = ()) -> str | None:
    """Without a search: the smallest deployable artifact within ``max_drop_pp`` validation accuracy (its upper
    bound, as in :func:`choose`).

    With benchmark ``rows`` (and the ``target`` they were measured on) or ``verification``, the same
    exclusions as the search apply (:func:`exclusions`; speed only with ``rows``), falling back to the fp32
    baseline. With microcontroller ``targets``, only artifacts that fit them all qualify (:func:`_mcu_filter`).
    """
    baseline = next((a for a in artifacts if a.stage == "train"), None)
    if baseline is None:
        return None
    base_val = float(baseline.metrics["val_accuracy"])
    targets = list(targets)
    excluded: dict[str, str] = {}
    unfit = _mcu_filter(artifacts, rows or [], targets)
    if rows is not None or verification is not None:
        cands = candidates(artifacts, rows or [], target, base_val)
        excluded = exclusions(artifacts, rows or [], cands, target, verification, budget_pp=max_drop_pp,
                              check_speed=speed_unchecked(rows is not None, target, targets) is None)
        excluded = {k: v for k, v in excluded.items() if "baseline itself" not in v}
    excluded = {**unfit, **excluded}
    base_ids = {a.id for a in _baselines(artifacts, baseline.id).values()}  # plain exports: judged on the point drop
    ok = [c for c in candidates(artifacts, [], target, base_val) if c["id"] not in excluded
          and within_budget(c["val_drop_pp" if c["id"] in base_ids else "val_drop_bound_pp"], max_drop_pp)]
    return min(ok, key=lambda c: c["bytes"])["id"] if ok else None


def _mcu_filter(artifacts: list[Artifact], rows: list[dict[str, Any]], targets: Iterable[Any]) -> dict[str, str]:
    """Artifact id → why it cannot go on a microcontroller target of the run (:func:`edgekit.mcu.mcu_exclusions`)."""
    from edgekit.mcu import is_mcu, mcu_exclusions

    targets = list(targets)
    return mcu_exclusions(artifacts, rows, targets) if any(is_mcu(t) for t in targets) else {}


def verification_outcome(verification: dict[str, Any], names: dict[str, str], search: dict[str, Any] | None,
                         chosen_id: str | None) -> tuple[list[str], list[str]]:
    """Split failed verifications into run problems and warnings.

    In a search, a candidate that failed verification only leaves the search: its failure is a
    warning, unless it is the chosen artifact (never, by :func:`choose`). Without a search every
    failure stays a problem (the run fails), as before. ``names``: artifact id → name.
    Returns (problems, warnings), each a list of 'name: reason' lines.
    """
    problems: list[str] = []
    warnings: list[str] = []
    excluded = (search or {}).get("excluded", {})
    for aid, v in verification.items():
        if v.get("status") in (None, "ok"):
            continue
        line = f"{names.get(aid, aid)}: {v.get('reason') or v.get('status')}"
        if search is not None and aid != chosen_id and aid in excluded:
            warnings.append(line + " (left the search)")
        else:
            problems.append(line)
    return problems, warnings
