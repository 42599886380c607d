"""Accuracy-budget search: measure every candidate, keep the Pareto front, pick one.

Candidates are the deployable artifacts (TFLite/ONNX) of the recipes of the
search grid (``CompressConfig.search_*``). Accuracy is the *validation* accuracy (the
test set is never used to choose); the drop is measured against the trained
fp32 model. Latency is the p50 at batch 1, 1 thread, on the search target.
Inside the budget (and the latency target, if any) the smallest file wins,
then the fastest.
"""

from __future__ import annotations

from typing import Any, Iterable

from edgekit.artifact import Artifact

DEPLOYABLE = ("tflite", "onnx")


def _latency(rows: Iterable[dict[str, Any]], artifact_id: str, target: str) -> float | None:
    for r in rows:
        if (r["artifact_id"], r["target"], r["batch_size"], r["threads"], r["status"]) == (artifact_id, target, 1, 1, "ok"):
            return float(r["latency_ms"]["p50"])
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


def choose(cfg: Any, artifacts: list[Artifact], rows: list[dict[str, Any]], targets: list[Any]) -> dict[str, Any]:
    """The search section of the report: candidates, front, chosen id, and status."""
    target = cfg.target or (targets[0].name if targets else "")
    budget = cfg.max_accuracy_drop if cfg.max_accuracy_drop is not None else 1.0
    baseline = next(a for a in artifacts if a.stage == "train")
    cands = candidates(artifacts, rows, target, float(baseline.metrics["val_accuracy"]))
    front = pareto_front(cands)
    ok = [c for c in cands if c["val_drop_pp"] <= budget + 1e-9
          and (cfg.latency_target_ms is None or (c["latency_ms"] is not None and c["latency_ms"] <= cfg.latency_target_ms))]
    ok.sort(key=lambda c: (c["bytes"], c["latency_ms"] if c["latency_ms"] is not None else float("inf")))
    for c in cands:
        c["on_front"] = c["id"] in front
        c["within_budget"] = c in ok
    goal = f"validation accuracy drop ≤ {budget:g} pp" + (
        f" and p50 ≤ {cfg.latency_target_ms:g} ms on {target}" if cfg.latency_target_ms is not None else "")
    if not ok:
        return {"status": "failed", "chosen_id": None, "target": target, "budget_pp": budget,
                "latency_target_ms": cfg.latency_target_ms, "candidates": cands, "front": front,
                "reason": f"no candidate met {goal} ({len(cands)} measured)",
                "summary": f"No candidate met {goal}; {len(front)} on the Pareto front."}
    best = ok[0]
    return {"status": "ok", "chosen_id": best["id"], "target": target, "budget_pp": budget,
            "latency_target_ms": cfg.latency_target_ms, "candidates": cands, "front": front, "reason": "",
            "summary": (f"Chose **{best['name']}** ({best['bytes'] / 1024:.1f} KB, validation drop {best['val_drop_pp']:+.2f} pp"
                        + (f", p50 {best['latency_ms']:.3f} ms" if best["latency_ms"] is not None else "")
                        + f") among {len(ok)} of {len(cands)} candidates meeting {goal}; {len(front)} on the Pareto front.")}


def default_choice(artifacts: list[Artifact], max_drop_pp: float = 1.0) -> str | None:
    """Without a search: the smallest deployable artifact within ``max_drop_pp`` validation accuracy."""
    baseline = next((a for a in artifacts if a.stage == "train"), None)
    if baseline is None:
        return None
    base_val = float(baseline.metrics["val_accuracy"])
    ok = [a for a in artifacts if a.format in DEPLOYABLE and (base_val - float(a.metrics["val_accuracy"])) * 100 <= max_drop_pp]
    from edgekit.fsutil import file_bytes

    return min(ok, key=lambda a: file_bytes(a.path)).id if ok else None
