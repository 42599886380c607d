"""The closed loop is the default of ``edgekit compress``: budgeted pruning, budget-aware int8, the
chooser's exclusions, explicit values flagged over budget, and failed candidates as warnings, not failed runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgekit.artifact import Artifact
from edgekit.config import CompressConfig

LAYERS = {"stem", "dw1", "pw1", "sep2", "classifier"}
FAST_BENCH = dict(bench_min_runs=3, bench_min_seconds=0.01)


def _art(tmp: Path, name: str, stage: str, fmt: str, precision: str, size: int, val: float, parent: str | None,
         metrics: dict[str, Any] | None = None) -> Artifact:
    path = tmp / f"{name}.{fmt}"
    path.write_bytes(b"x" * size)
    return Artifact(name, stage, fmt, precision, path, parent, {},  # type: ignore[arg-type]
                    {"val_accuracy": val, **(metrics or {})}, None, name)


def _rows(latencies: dict[str, float]) -> list[dict[str, Any]]:
    return [{"artifact_id": a, "target": "x86-cpu", "batch_size": 1, "threads": 1, "status": "ok",
             "latency_ms": {"p50": lat}} for a, lat in latencies.items()]


def test_a_candidate_failing_verification_is_a_warning_not_a_failed_run(tmp_path: Path) -> None:
    from edgekit.pipeline import _choose, _judge

    arts = [_art(tmp_path, "baseline", "train", "keras", "fp32", 1000, 0.90, None),
            _art(tmp_path, "baseline-tflite", "export.tflite", "tflite", "fp32", 400, 0.90, "baseline"),
            _art(tmp_path, "pruned", "prune.budgeted", "keras", "fp32", 1000, 0.899, "baseline"),
            _art(tmp_path, "pruned-tflite", "export.tflite", "tflite", "fp32", 300, 0.899, "pruned"),
            _art(tmp_path, "pruned-int8-tflite", "quantize.ptq_int8", "tflite", "int8", 100, 0.899, "pruned"),
            _art(tmp_path, "broken-int8-tflite", "quantize.ptq_int8", "tflite", "int8", 50, 0.899, "pruned")]
    verification = {"broken-int8-tflite": {"status": "failed", "reason": "top-1 agreement 90.00% < 97.0%"},
                    "pruned-int8-tflite": {"status": "ok"}}
    cfg = CompressConfig(target="x86-cpu")
    rows = _rows({"baseline-tflite": 0.1, "pruned-tflite": 0.1, "pruned-int8-tflite": 0.05, "broken-int8-tflite": 0.04})
    search = _choose(cfg, arts, rows, [], verification)
    assert search["chosen_id"] == "pruned-int8-tflite"
    report: dict[str, Any] = {"status": "failed", "problems": ["broken-int8-tflite: ..."], "warnings": []}
    _judge(report, cfg, arts, verification, search)
    assert report["status"] == "ok" and report["problems"] == []
    assert any(w.startswith("broken-int8-tflite: top-1 agreement") and "left the search" in w for w in report["warnings"])
    assert "verification" in report["budget"]["excluded"]["broken-int8-tflite"]


def test_nothing_eligible_hands_out_the_fp32_baseline_with_a_warning(tmp_path: Path) -> None:
    from edgekit.pipeline import _choose, _judge

    arts = [_art(tmp_path, "baseline", "train", "keras", "fp32", 1000, 0.90, None),
            _art(tmp_path, "baseline-tflite", "export.tflite", "tflite", "fp32", 400, 0.90, "baseline"),
            _art(tmp_path, "baseline-int8-tflite", "quantize.ptq_int8", "tflite", "int8", 100, 0.90, "baseline")]
    cfg = CompressConfig(target="x86-cpu")
    search = _choose(cfg, arts, _rows({"baseline-tflite": 0.1, "baseline-int8-tflite": 0.3}), [], {})
    report: dict[str, Any] = {"status": "ok", "problems": [], "warnings": []}
    _judge(report, cfg, arts, {}, search)
    assert search["chosen_id"] == "baseline-tflite" and report["status"] == "ok"
    assert any("handing out the fp32 baseline" in w for w in report["warnings"])
    assert "slower than the fp32 tflite baseline" in report["budget"]["excluded"]["baseline-int8-tflite"]


def test_an_explicit_value_past_the_budget_makes_the_run_over_budget(tmp_path: Path) -> None:
    from edgekit.pipeline import _choose, _judge

    arts = [_art(tmp_path, "baseline", "train", "keras", "fp32", 1000, 0.90, None),
            _art(tmp_path, "baseline-tflite", "export.tflite", "tflite", "fp32", 400, 0.90, "baseline"),
            _art(tmp_path, "pruned", "prune.magnitude", "keras", "fp32", 1000, 0.80, "baseline")]
    cfg = CompressConfig(sparsity=0.8, target="x86-cpu")
    report: dict[str, Any] = {"status": "ok", "problems": [], "warnings": []}
    _judge(report, cfg, arts, {}, _choose(cfg, arts, [], [], {}))
    assert report["status"] == "over_budget"
    assert any("sparsity 0.8 was set explicitly; validation drop 10.00 pp breaks the 1 pp budget" in w
               for w in report["warnings"])
    within = CompressConfig(sparsity=0.8, max_accuracy_drop=20.0)
    report = {"status": "ok", "problems": [], "warnings": []}
    _judge(report, within, arts, {}, _choose(within, arts, [], [], {}))
    assert report["status"] == "ok" and "is within the 20 pp budget" in report["budget"]["explicit"][0]["note"]


# --------------------------------------------------------------------------- real runs (train)


@pytest.fixture(scope="module")
def compact_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.models import train_compact_cnn

    model, _ = train_compact_cnn()
    path = tmp_path_factory.mktemp("compact") / "compact.keras"
    model.save(path)
    return path


def _check_closed_loop(report: dict[str, Any], layers: set[str] | None = None) -> None:
    """ok within the budget; every budgeted decision and every layer kept out of int8 is named, with why."""
    assert report["status"] == "ok", (report["problems"], report["warnings"])
    arts = {a["name"]: a for a in report["artifacts"]}
    assert {"pruned", "pruned-tflite", "pruned-onnx", "pruned-int8-tflite", "pruned-int8-onnx"} <= set(arts)
    assert arts["pruned"]["stage"] == "prune.budgeted"
    base_val = arts["baseline"]["val_accuracy"]
    chosen = next(a for a in report["artifacts"] if a["id"] == report["chosen_id"])
    assert (base_val - chosen["val_accuracy"]) * 100 <= 1.0 + 1e-9
    decisions = report["budget"]["pruning"]["pruned"]
    assert set(decisions) == {"structured", "magnitude"}
    for kind, d in decisions.items():
        assert d["action"] in ("applied", "backed_off", "dropped"), kind
        assert d["drop_pp"] <= 1.0 + 1e-9 or d["action"] == "dropped"
        if d["action"] != "applied":
            assert any(f"{kind} pruning" in w for w in report["warnings"])
    assert (base_val - arts["pruned"]["val_accuracy"]) * 100 <= 1.0 + 1e-9
    by_layer = {r["name"]: r for r in report["analysis"]["layers"]}
    if layers is not None:
        assert set(by_layer) == layers
    for name in ("pruned-int8-tflite", "pruned-int8-onnx"):
        record = arts[name]["metrics"]["int8"]
        assert {r["name"] for r in record["layers"]} == set(by_layer), name
        assert arts[name]["precision"] == record["precision"]
        for r in record["layers"]:
            if r["precision"] not in ("int8", "unknown"):  # kept out of int8: the analysis names it, with why
                assert by_layer[r["name"]]["protected"] and name in by_layer[r["name"]]["reason"]
        if record["action"] != "dropped":
            assert record["drop_pp"] <= 1.0 + 1e-9, name


@pytest.mark.slow
def test_compact_model_with_defaults_ends_ok_within_the_budget(compact_file: Path, tmp_path: Path) -> None:
    from edgekit.pipeline import compress

    cfg = CompressConfig(model=str(compact_file), dataset="fashion-mnist", train_limit=3000, test_limit=1000,
                         epochs=1, prune_epochs=1, **FAST_BENCH)  # type: ignore[arg-type]
    run = compress(cfg, tmp_path / "run")
    _check_closed_loop(run.report, LAYERS)
    assert "Per-layer sensitivity" in (run.out / "report.html").read_text()
    saved = json.loads((run.out / "report.json").read_text())
    assert saved["budget"]["budget_pp"] == 1.0 and saved["analysis"]["layers"]


@pytest.mark.slow
def test_small_data_run_with_defaults_ends_ok_within_the_budget(tmp_path: Path) -> None:
    from edgekit.pipeline import compress

    cfg = CompressConfig(dataset="fashion-mnist", train_limit=3000, test_limit=1000, epochs=2, prune_epochs=1,
                         **FAST_BENCH)  # type: ignore[arg-type]
    run = compress(cfg, tmp_path / "run")
    _check_closed_loop(run.report)


@pytest.mark.slow
def test_explicit_sparsity_is_honoured_and_flagged_over_budget(compact_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgekit", "--quiet", "compress", "--model", str(compact_file), "--dataset", "fashion-mnist",
           "--train-limit", "3000", "--test-limit", "500", "--epochs", "1", "--prune-epochs", "1", "--sparsity", "0.8",
           "--no-bench", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 1, done.stderr
    report = json.loads((out / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    assert arts["pruned"]["stage"] == "prune.magnitude" and arts["pruned"]["config"]["sparsity"] == 0.8  # honoured
    assert report["status"] == "over_budget" and report["budget"]["explicit"][0]["what"] == "sparsity"
    assert "sparsity 0.8 was set explicitly" in done.stderr and "breaks the 1 pp budget" in done.stderr
    assert "status over_budget" in done.stderr
