"""`edgekit compress --targets x86-cpu,arm64-qemu` end to end: a tiny real run benchmarked natively and on emulated ARM64."""

from __future__ import annotations

import pytest

from edgekit.locations.qemu import qemu_unavailable_reason
from edgekit.config import CompressConfig
from edgekit.pipeline import compress
from edgekit.targets import get_target

ARM = get_target("arm64-qemu")
REASON = qemu_unavailable_reason(ARM)

pytestmark = [
    pytest.mark.arm64,
    pytest.mark.slow,  # compress trains
    pytest.mark.skipif(REASON is not None, reason=f"needs the ARM64 sysroot (`edgekit devices setup arm64-qemu`): {REASON}"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    # 3 epochs: at 1 the reference CNN scores 0.51-0.81 on digits over seeds 0-7, no margin above the 0.5 asserted below.
    cfg = CompressConfig(dataset="digits", epochs=3, prune_epochs=1, sparsity=0.5, targets=("x86-cpu", "arm64-qemu"),
                         bench_min_runs=3, bench_min_seconds=0.01)
    return compress(cfg, tmp_path_factory.mktemp("targets") / "run")


def test_arm_rows_for_every_onnx_artifact(run) -> None:  # noqa: ANN001
    arts = {a["id"]: a for a in run.report["artifacts"]}
    rows = run.report["benchmarks"]
    onnx_ids = {i for i, a in arts.items() if a["format"] == "onnx"}
    arm = [r for r in rows if r["target"] == "arm64-qemu"]
    assert {r["artifact_id"] for r in arm} == onnx_ids
    for r in arm:
        assert r["status"] == "ok", r["reason"]
        assert r["emulated"] is True and r["runtime"] == "onnxruntime"
        assert r["provider"] == "CPUExecutionProvider" and r["latency_ms"]["p50"] > 0
        assert 0.5 < r["accuracy"] <= 1.0  # digits: chance is 0.1
        assert r["reference_target"] == "x86-cpu" and r["target_agreement"] is not None
    assert all(r["emulated"] is False for r in rows if r["target"] == "x86-cpu")


def test_fp32_agrees_across_targets_and_int8_is_measured(run) -> None:  # noqa: ANN001
    arts = {a["id"]: a for a in run.report["artifacts"]}
    for r in run.report["benchmarks"]:
        if r["target"] != "arm64-qemu":
            continue
        floor = 0.999 if arts[r["artifact_id"]]["precision"] == "fp32" else 0.97
        assert r["target_agreement"] >= floor, (arts[r["artifact_id"]]["name"], r["target_agreement"])


def test_no_litert_rows_on_arm64_qemu(run) -> None:  # noqa: ANN001
    rows = run.report["benchmarks"]
    assert not [r for r in rows if r["target"] == "arm64-qemu" and r["runtime"] == "litert"]
    assert any(r["target"] == "x86-cpu" and r["runtime"] == "litert" for r in rows)  # x86 still runs the .tflite files


def test_report_labels_arm_latency_as_emulated(run) -> None:  # noqa: ANN001
    page = (run.out / "report.html").read_text()
    assert "EMULATED" in page and "arm64-qemu" in page
    assert "arm64-qemu" in (run.out / "report.md").read_text()
