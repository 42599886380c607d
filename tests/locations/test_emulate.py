"""Emulated ARM64: the same fp32/int8 ONNX models on x86 and under qemu, accuracy measured on both."""

from __future__ import annotations

import os
import sys

import pytest
from tests.helpers.models import build_models

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing, benchmark
from edgekit.errors import UsageError
from edgekit.locations.qemu import CORES, cpuinfo_text, qemu_unavailable_reason
from edgekit.targets import get_target

ARM = get_target("arm64-qemu")
REASON = qemu_unavailable_reason(ARM)
needs_arm = pytest.mark.skipif(REASON is not None, reason=f"needs the ARM64 sysroot: {REASON}")
FAST = Timing(warmup_runs=2, min_runs=10, min_seconds=0.05, max_seconds=5.0)


def test_cpuinfo_matches_qemu_cpu() -> None:
    text = cpuinfo_text("neoverse-n1", 2)
    assert text.count("processor") == 2 and "CPU part\t: 0xd0c" in text and "CPU implementer\t: 0x41" in text
    assert "CPU part\t: 0xd0b" in cpuinfo_text("cortex-a76", 1)  # Raspberry Pi 5
    assert len({c.part for c in CORES.values()}) == len(CORES)
    with pytest.raises(UsageError, match="no /proc/cpuinfo known"):
        cpuinfo_text("pentium", 1)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return build_models(tmp_path_factory.mktemp("arm-models"))


@pytest.mark.arm64
@needs_arm
@pytest.mark.slow
def test_same_models_on_x86_and_emulated_arm64(models) -> None:  # noqa: ANN001
    arts = [Artifact(id=p.stem, stage="external", format="onnx", precision=prec, path=p, parent_id=None)
            for p, prec in ((models.onnx, "fp32"), (models.onnx_int8, "int8"))]
    x, y = models.x_test, models.y_test
    rows = benchmark(arts, x, y, [get_target("x86-cpu"), ARM], timing=FAST)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(rows), [r["reason"] for r in rows if r["status"] != "ok"]
    arm = [r for r in rows if r["target"] == "arm64-qemu"]
    assert arm and all(r["emulated"] is True and r["reference_target"] == "x86-cpu" for r in arm)
    assert all(r["emulated"] is False for r in rows if r["target"] == "x86-cpu")
    by = {(r["artifact_id"], r["target"]): r for r in rows if r["batch_size"] == 1 and r["threads"] == 1}
    fp32_arm = by[("tiny", "arm64-qemu")]
    assert fp32_arm["target_agreement"] >= 0.999
    assert abs(fp32_arm["accuracy"] - by[("tiny", "x86-cpu")]["accuracy"]) <= 0.002
    int8_arm = by[("tiny_int8", "arm64-qemu")]
    assert int8_arm["accuracy"] > 0.5 and int8_arm["target_agreement"] >= 0.97  # int8 kernels differ; measured, not assumed
    print(f"\nARM vs x86 agreement: fp32 {fp32_arm['target_agreement']:.4f}, int8 {int8_arm['target_agreement']:.4f}; "
          f"p50 batch 1: fp32 {fp32_arm['latency_ms']['p50']:.3f} ms emulated vs "
          f"{by[('tiny', 'x86-cpu')]['latency_ms']['p50']:.3f} ms native")


@pytest.mark.arm64
@needs_arm
def test_guest_env_hides_host_python_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.locations.qemu import guest_env, probe

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # x86 packages must not leak into the guest
    assert "PYTHONPATH" not in guest_env(ARM) and guest_env(ARM)["QEMU_CPU"] == "neoverse-n1"
    info = probe(ARM)
    assert info["machine"] == "aarch64" and info["onnxruntime"]
