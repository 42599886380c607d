"""The self-contained runner and provider truth, on the real ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing, benchmark
from edgekit.runtime.measure import percentile
from edgekit.runtime.runner import run_request
from edgekit.bench.tiny import tiny_data, write_tiny_onnx
from edgekit.targets import OrtOptions, Target

FAST = {"warmup_runs": 2, "min_runs": 20, "min_seconds": 0.05, "max_seconds": 2.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    model = write_tiny_onnx(folder / "tiny.onnx")
    x, y = tiny_data(40)
    np.savez(folder / "data.npz", x=x, y=y, ref=y)
    return model, folder / "data.npz"


def _req(model: Path, data: Path, **kw: object) -> dict:
    return {"model": str(model), "data": str(data), "runtime": "onnxruntime", "providers": ["CPUExecutionProvider"],
            "batch_sizes": [1, 8], "threads": [1, 0], "timing": FAST, "return_predictions": True, **kw}


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([5.0], 99) == 5.0


def test_runner_reports_every_statistic(tiny: tuple[Path, Path]) -> None:
    result = run_request(_req(*tiny))
    rows = result["rows"]
    assert {(r["batch_size"], r["threads"]) for r in rows} >= {(1, 1), (8, 1)}
    for r in rows:
        assert r["status"] == "ok" and r["provider"] == "CPUExecutionProvider"
        assert r["node_share"] == {"CPUExecutionProvider": 1.0}
        lat = r["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"] and lat["std"] >= 0
        assert r["runs"] >= FAST["min_runs"] and r["throughput_per_s"] > 0
        assert r["session_create_ms"] > 0 and r["first_inference_ms"] > 0 and r["peak_rss_mb"] > 10
        assert r["top1_agreement"] == pytest.approx(r["accuracy"])  # ref = y here
    assert len(result["predictions"]) == 40


def test_strict_mode_fails_when_provider_missing(tiny: tuple[Path, Path]) -> None:
    rows = run_request(_req(*tiny, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], strict=True))["rows"]
    assert rows and all(r["status"] == "failed" and "CUDAExecutionProvider" in r["reason"] for r in rows)
    assert all(r.get("latency_ms") is None for r in rows)


def test_accelerator_that_ran_nothing_is_failed_not_a_cpu_figure(tiny: tuple[Path, Path]) -> None:
    """The Azure provider is in the stock build but executes no nodes: the CPU ran the graph."""
    model, _ = tiny
    x, y = tiny_data(16)
    art = Artifact(id="tiny", stage="external", format="onnx", precision="fp32", path=model, parent_id=None)
    fake_gpu = Target(name="azure-ep", runtimes=("onnxruntime",), threads=(1,), batch_sizes=(1,),
                      onnxruntime=OrtOptions(providers=("AzureExecutionProvider", "CPUExecutionProvider")))
    rows = benchmark([art], x, y, [fake_gpu], timing=Timing(**FAST))
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "failed" and "asked for AzureExecutionProvider" in row["reason"]
    assert row["latency_ms"] is None and row["throughput_per_s"] is None and row["accuracy"] is None
    assert row["node_share"] == {"CPUExecutionProvider": 1.0}  # the truth stays visible


def test_gpu_profile_here_is_skipped_with_reason(tiny: tuple[Path, Path]) -> None:
    import onnxruntime as ort

    from edgekit.targets import get_target

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    model, _ = tiny
    x, y = tiny_data(16)
    art = Artifact(id="tiny", stage="external", format="onnx", precision="fp32", path=model, parent_id=None)
    rows = benchmark([art], x, y, [get_target("nvidia-cuda")], timing=Timing(**FAST))
    assert rows and all(r["status"] == "skipped" and "CUDAExecutionProvider" in r["reason"] for r in rows)
    assert all(r["latency_ms"] is None and r["accuracy"] is None for r in rows)
