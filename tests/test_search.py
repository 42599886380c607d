"""Accuracy-budget search: Pareto front, choice inside the budget, and a clear failure outside it."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.config import CompressConfig
from edgekit.pipeline import compress
from edgekit.search import choose, pareto_front


def cand(i: str, acc: float, size: int, lat: float | None) -> dict:
    return {"id": i, "val_accuracy": acc, "bytes": size, "latency_ms": lat}


def test_pareto_front_drops_dominated_candidates() -> None:
    cands = [cand("a", 0.90, 100, 1.0), cand("b", 0.89, 50, 1.0), cand("c", 0.88, 60, 1.2), cand("d", 0.90, 100, 0.5)]
    assert set(pareto_front(cands)) == {"b", "d"}


def _artifact(tmp: Path, name: str, stage: str, fmt: str, size: int, val: float) -> Artifact:
    path = tmp / f"{name}.{fmt}"
    path.write_bytes(b"x" * size)
    return Artifact(name, stage, fmt, "fp32" if stage == "train" else "int8", path, None, {},  # type: ignore[arg-type]
                    {"val_accuracy": val}, None, name)


def test_choose_smallest_within_budget_and_latency(tmp_path: Path) -> None:
    arts = [_artifact(tmp_path, "base", "train", "keras", 1000, 0.90),
            _artifact(tmp_path, "big", "quantize.ptq_int8", "onnx", 500, 0.899),
            _artifact(tmp_path, "small", "quantize.ptq_int8", "tflite", 100, 0.890),
            _artifact(tmp_path, "tiny", "quantize.ptq_int8", "tflite", 50, 0.850)]
    rows = [{"artifact_id": a, "target": "x86-cpu", "batch_size": 1, "threads": 1, "status": "ok", "latency_ms": {"p50": lat}}
            for a, lat in (("big", 0.1), ("small", 0.3), ("tiny", 0.05))]
    picked = choose(CompressConfig(max_accuracy_drop=1.0), arts, rows, [])
    assert picked["status"] == "ok" and picked["chosen_id"] == "small"
    faster = choose(CompressConfig(max_accuracy_drop=1.0, latency_target_ms=0.2, target="x86-cpu"), arts, rows, [])
    assert faster["chosen_id"] == "big"
    none = choose(CompressConfig(max_accuracy_drop=0.05), arts, rows, [])
    assert none["status"] == "failed" and none["chosen_id"] is None and "no candidate" in none["reason"]
    assert none["front"]


SMALL_GRID = dict(dataset="digits", epochs=3, prune_epochs=1, search_structured=(0.0, 0.5), search_sparsity=(0.0,),
                  search_quantization=("ptq-int8",), bench_min_runs=3, bench_min_seconds=0.01)


def test_search_end_to_end_within_and_outside_budget(tmp_path: Path) -> None:
    ok = compress(CompressConfig(max_accuracy_drop=10.0, **SMALL_GRID), tmp_path / "ok")
    s = ok.report["search"]
    assert ok.ok and s["status"] == "ok" and ok.report["chosen_id"] == s["chosen_id"]
    names = {c["name"] for c in s["candidates"]}
    assert {"baseline-int8-onnx", "structured50-int8-tflite", "structured50-int8-onnx"} <= names
    chosen = next(c for c in s["candidates"] if c["id"] == s["chosen_id"])
    assert chosen["val_drop_pp"] <= 10.0 and chosen["bytes"] == min(c["bytes"] for c in s["candidates"] if c["within_budget"])
    assert all(c["latency_ms"] is not None for c in s["candidates"])
    assert "Accuracy-budget search" in (ok.out / "report.md").read_text()

    # an impossible latency target: no candidate, the run fails, the front is still reported
    bad = compress(CompressConfig(max_accuracy_drop=10.0, latency_target_ms=1e-6, **SMALL_GRID), tmp_path / "bad")
    assert not bad.ok and bad.report["search"]["status"] == "failed"
    assert bad.report["search"]["front"] and (tmp_path / "bad" / "report.json").is_file()
    assert any("no candidate met" in p for p in bad.report["problems"])
