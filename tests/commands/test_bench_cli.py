"""`edgekit bench` and `edgekit devices` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.models import build_models

from edgekit.cli import main

FAST = ["--min-runs", "5", "--min-seconds", "0.02", "--warmup-runs", "1"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return build_models(tmp_path_factory.mktemp("cli-models"))


def test_devices_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--no-probe"]) == 0
    out = capsys.readouterr().out
    for name in ("x86-cpu", "x86-avx512-vnni", "nvidia-cuda", "nvidia-tensorrt", "arm64-qemu", "raspberry-pi-5",
                 "jetson-orin", "arm64-cpu"):
        assert name in out


def test_devices_check_runs_a_tiny_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "check", "x86-cpu"]) == 0
    assert "x86-cpu: ok" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_reports_rows_and_gpu_skip(models, tmp_path: Path) -> None:  # noqa: ANN001
    import onnxruntime as ort

    out = tmp_path / "run"
    rc = main(["bench", str(models.onnx), str(models.onnx_int8), "--target", "x86-cpu", "--target", "nvidia-cuda",
               "--out", str(out), *FAST])
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").is_file()
    assert report["dataset"]["name"] == "digits"  # from the models' embedded metadata
    precisions = sorted(a["precision"] for a in report["artifacts"])
    assert precisions == ["fp32", "int8"]
    cpu = [r for r in report["benchmarks"] if r["target"] == "x86-cpu"]
    assert cpu and all(r["status"] == "ok" and r["accuracy"] > 0.5 and r["emulated"] is False for r in cpu)
    gpu = [r for r in report["benchmarks"] if r["target"] == "nvidia-cuda"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert rc == 0 and gpu and all(r["status"] == "skipped" and r["reason"] for r in gpu)
        assert all(r["latency_ms"] is None and r["accuracy"] is None for r in gpu)
    for key in ("artifact_id", "runtime", "provider", "providers", "node_share", "batch_size", "threads",
                "session_create_ms", "first_inference_ms", "peak_rss_mb", "top1_agreement", "emulated"):
        assert key in cpu[0]


@pytest.mark.parametrize("argv, needle", [
    (["bench", "missing.onnx"], "no such model file"),
    (["bench", "{keras}"], "runs .onnx and .tflite"),
    (["bench", "{onnx}", "--target", "nope"], "unknown device profile"),
    (["bench", "{onnx}", "--dataset", "nope"], "nope"),
    (["bench", "{onnx}", "--test-limit", "0"], "--test-limit"),
    (["bench", "{onnx}", "--out", "{existing}"], "already exists"),
])
@pytest.mark.slow
def test_bench_bad_input_is_one_line_exit_2(models, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: ANN001
                                            argv: list[str], needle: str) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "report.json").write_text("{}")
    argv = [a.format(keras=models.keras, onnx=models.onnx, existing=existing) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert (existing / "report.json").read_text() == "{}"


def test_bench_fails_when_every_target_was_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run in which nothing was benchmarked is not a success."""
    from edgekit.bench.tiny import write_tiny_onnx

    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "far-board.toml").write_text('name = "far-board"\narch = "aarch64"\n')  # never this x86 machine
    model = write_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "run"
    rc = main(["bench", str(model), "--dataset", "digits", "--test-limit", "20", "--target", "far-board",
               "--devices-dir", str(devices), "--out", str(out), *FAST])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "nothing was benchmarked" in err and "far-board: needs an aarch64 CPU" in err
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and all(r["status"] == "skipped" for r in report["benchmarks"])
