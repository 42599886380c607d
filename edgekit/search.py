"""Accuracy-budget search: measure every candidate, keep the Pareto front, pick one.

Candidates are the deployable artifacts (TFLite/ONNX) of the recipes of the
search grid (``CompressConfig.search_*``). Accuracy is the *validation* accuracy (the
test set is never used to choose); the drop is measured against the trained
fp32 model. Latency is the p50 at batch 1, 1 thread, on the search target.
Inside the budget (and the latency target, if any) the smallest file wins,
then the fastest; a candidate that failed verification, is not smaller and not
slower than the fp32 baseline of its format, or is worse than its parent
(:mod:`edgekit.report.regressions`) is excluded, with the reason recorded.
"""

from __future__ import annotations

from typing import Any, Iterable

from edgekit.artifact import Artifact
from edgekit.formats import deployable_formats

DEPLOYABLE = deployable_formats()  # formats a device runtime executes (edgekit.formats)


def _latency(rows: Iterable[dict[str, Any]], artifact_id: str, target: str) -> float | None:
    for r in rows:
        if (r["artifact_id"], r["target"], r["batch_size"], r["threads"], r["status"]) == (artifact_id, target, 1, 1, "ok"):
            lat = r.get("latency_ms")  # a microcontroller row (TFLM on the host) has none
            return float(lat["p50"]) if lat and lat.get("p50") is not None else None
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


LATENCY_TOLERANCE = 1.05
"""'Not slower' than the fp32 baseline: a batch-1 p50 at most 5 % above it (timing noise on a shared CPU),
the same tolerance as :class:`edgekit.report.regressions.Tolerance`."""


def _baselines(artifacts: list[Artifact], train_id: str) -> dict[str, Artifact]:
    """The fp32 baseline file of each format: the plain export of the trained model."""
    return {a.format: a for a in artifacts
            if a.format in DEPLOYABLE and a.parent_id == train_id and a.stage.startswith("export.") and a.precision == "fp32"}


def candidates(artifacts: list[Artifact], rows: list[dict[str, Any]], target: str, baseline_val: float) -> list[dict[str, Any]]:
    from edgekit.fsutil import file_bytes

    out = []
    for a in artifacts:
        if a.format not in DEPLOYABLE:
            continue
        val = float(a.metrics["val_accuracy"])
        out.append({"id": a.id, "name": a.name, "format": a.format, "precision": a.precision, "bytes": file_bytes(a.path),
                    "val_accuracy": val, "val_drop_pp": (baseline_val - val) * 100.0,
                    "latency_ms": _latency(rows, a.id, target)})
    return out


def exclusions(artifacts: list[Artifact], rows: list[dict[str, Any]], cands: list[dict[str, Any]], target: str,
               verification: dict[str, Any] | None = None, off_device: Iterable[str] = ()) -> dict[str, str]:
    """Candidate id → why it may not be chosen (a candidate absent here is eligible).

    - it failed its verification against its parent (it leaves the search; the run goes on);
    - it is the fp32 baseline of its format, or not smaller than it, or slower than it at batch 1 on ``target``;
    - it is larger, slower (on ``target``) or less accurate (validation) than its parent
      (:func:`edgekit.report.regressions.regressions_for_artifacts`), unless that parent is in ``off_device``
      (it cannot go on the run's microcontroller targets, e.g. a sparse fp32 file: no comparison there).
    """
    from edgekit.report.regressions import regressions_for_artifacts

    train = next(a for a in artifacts if a.stage == "train")
    base = _baselines(artifacts, train.id)
    by_id = {c["id"]: c for c in cands}
    why: dict[str, str] = {}
    for vid, v in (verification or {}).items():
        if vid in by_id and v.get("status") not in (None, "ok"):
            why[vid] = f"failed verification against its parent: {v.get('reason') or v.get('status')}"
    for c in cands:
        if c["id"] in why:
            continue
        b = base.get(c["format"])
        if b is None:
            continue
        if c["id"] == b.id:
            why[c["id"]] = f"the fp32 {c['format']} baseline itself"
            continue
        ref = by_id.get(b.id)
        if ref is None:
            continue
        if c["bytes"] >= ref["bytes"]:
            why[c["id"]] = f"not smaller than the fp32 {c['format']} baseline ({c['bytes']:,} ≥ {ref['bytes']:,} bytes)"
        elif c["latency_ms"] is not None and ref["latency_ms"] is not None and \
                c["latency_ms"] > ref["latency_ms"] * LATENCY_TOLERANCE:
            why[c["id"]] = (f"slower than the fp32 {c['format']} baseline on {target} at batch 1 "
                            f"(p50 {c['latency_ms']:.3f} vs {ref['latency_ms']:.3f} ms)")
    skip = set(off_device)
    for g in regressions_for_artifacts(artifacts, rows, metric="val_accuracy"):
        if g.reference_id in skip:
            continue
        if g.artifact_id in by_id and g.artifact_id not in why and (g.target is None or g.target == target):
            why[g.artifact_id] = g.message
    return why


def choose(cfg: Any, artifacts: list[Artifact], rows: list[dict[str, Any]], targets: list[Any],
           verification: dict[str, Any] | None = None) -> dict[str, Any]:
    """The search section of the report: candidates, front, chosen id, and status.

    Only eligible candidates (see :func:`exclusions`) inside the budget (and the latency
    target, if any) are chosen from; the smallest wins, then the fastest. When none is
    eligible, the fp32 baseline of the smallest format is handed out (``fallback``), so
    compression never makes the deliverable worse; with a latency target, nothing met
    is a failure.
    """
    target = cfg.target or (targets[0].name if targets else "")
    budget = cfg.max_accuracy_drop if cfg.max_accuracy_drop is not None else 1.0
    baseline = next(a for a in artifacts if a.stage == "train")
    cands = candidates(artifacts, rows, target, float(baseline.metrics["val_accuracy"]))
    front = pareto_front(cands)
    unfit = _mcu_filter(artifacts, rows, targets)
    excluded = exclusions(artifacts, rows, cands, target, verification, off_device=unfit)
    for aid, why in unfit.items():
        excluded.setdefault(aid, why)

    def meets(c: dict[str, Any]) -> bool:
        return c["val_drop_pp"] <= budget + 1e-9 and (
            cfg.latency_target_ms is None or (c["latency_ms"] is not None and c["latency_ms"] <= cfg.latency_target_ms))

    def order(c: dict[str, Any]) -> tuple[float, float]:
        return (c["bytes"], c["latency_ms"] if c["latency_ms"] is not None else float("inf"))

    ok = sorted((c for c in cands if meets(c) and c["id"] not in excluded), key=order)
    for c in cands:
        c["on_front"] = c["id"] in front
        c["within_budget"] = c in ok
        if c["id"] in excluded:
            c["excluded"] = excluded[c["id"]]
    goal = f"validation accuracy drop ≤ {budget:g} pp" + (
        f" and p50 ≤ {cfg.latency_target_ms:g} ms on {target}" if cfg.latency_target_ms is not None else "")
    common = {"target": target, "budget_pp": budget, "latency_target_ms": cfg.latency_target_ms, "candidates": cands,
              "front": front, "excluded": excluded}
    if not ok:
        base_ids = {a.id for a in _baselines(artifacts, baseline.id).values()}
        fallback = sorted((c for c in cands if c["id"] in base_ids and c["id"] not in unfit and meets(c)), key=order)
        if fallback:
            best = fallback[0]
            reason = (f"no compressed candidate was eligible and met {goal} ({len(cands)} measured, "
                      f"{len(excluded)} excluded); handing out the fp32 baseline")
            return {"status": "ok", "chosen_id": best["id"], "fallback": True, **common, "reason": reason,
                    "summary": f"{reason}: **{best['name']}** ({best['bytes'] / 1024:.1f} KB)."}
        return {"status": "failed", "chosen_id": None, **common,
                "reason": f"no candidate met {goal} ({len(cands)} measured, {len(excluded)} excluded)",
                "summary": f"No candidate met {goal}; {len(front)} on the Pareto front."}
    best = ok[0]
    return {"status": "ok", "chosen_id": best["id"], "fallback": False, **common, "reason": "",
            "summary": (f"Chose **{best['name']}** ({best['bytes'] / 1024:.1f} KB, validation drop {best['val_drop_pp']:+.2f} pp"
                        + (f", p50 {best['latency_ms']:.3f} ms" if best["latency_ms"] is not None else "")
                        + f") among {len(ok)} of {len(cands)} candidates meeting {goal} and beating the fp32 baseline "
                        f"of their format; {len(excluded)} excluded, {len(front)} on the Pareto front.")}


def sensitivity_grid(analysis: dict[str, Any], budget_pp: float | None = None) -> list[dict[str, Any]]:
    """Search recipes from a sensitivity analysis (``edgekit.analyze``) instead of the fixed grid: per-layer
    sparsities and filter fractions at several shares of the budget (:func:`edgekit.analyze.decide.recipe_grid`)."""
    from edgekit.analyze.decide import recipe_grid

    return recipe_grid(analysis["layers"], float(budget_pp if budget_pp is not None else analysis["budget_pp"]))


def default_choice(artifacts: list[Artifact], max_drop_pp: float = 1.0, rows: list[dict[str, Any]] | None = None,
                   target: str = "", verification: dict[str, Any] | None = None, targets: Iterable[Any] = ()) -> str | None:
    """Without a search: the smallest deployable artifact within ``max_drop_pp`` validation accuracy.

    With benchmark ``rows`` (and the ``target`` they were measured on) or ``verification``, the same
    exclusions as the search apply (:func:`exclusions`), falling back to the fp32 baseline. With
    microcontroller ``targets``, only artifacts that fit them all qualify (:func:`_mcu_filter`).
    """
    baseline = next((a for a in artifacts if a.stage == "train"), None)
    if baseline is None:
        return None
    base_val = float(baseline.metrics["val_accuracy"])
    from edgekit.fsutil import file_bytes

    excluded: dict[str, str] = {}
    unfit = _mcu_filter(artifacts, rows or [], targets)
    if rows is not None or verification is not None:
        cands = candidates(artifacts, rows or [], target, base_val)
        excluded = exclusions(artifacts, rows or [], cands, target, verification, off_device=unfit)
        excluded = {k: v for k, v in excluded.items() if "baseline itself" not in v}
    excluded = {**unfit, **excluded}
    ok = [a for a in artifacts if a.format in DEPLOYABLE and a.id not in excluded
          and (base_val - float(a.metrics["val_accuracy"])) * 100 <= max_drop_pp]
    return min(ok, key=lambda a: file_bytes(a.path)).id if ok else None


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
