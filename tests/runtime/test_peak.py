""""% of peak": the GEMM microbenchmark (edgekit.runtime.peak), its cache, the fields benchmark rows get,
the results table and report.md/html columns, and report.json files written before the fields existed.

Fast tier: the models are the untrained tiny CNN of tests/helpers/mcu_models.py (fp32 and int8 TFLite,
nothing trained) and edgekit.bench.tiny's ONNX convolution; every figure is measured with real ONNX Runtime and LiteRT.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.helpers.mcu_models import McuModels, mcu_models
from tests.helpers.sshd import SSHD_MISSING, running_sshd
from edgekit.artifact import Artifact
from edgekit.audit import audit_model
from edgekit.bench.api import Timing, benchmark
from edgekit.bench.peak import add_percent_of_peak, over_peak_warnings
from edgekit.bench.tiny import tiny_data, write_tiny_onnx
from edgekit.locations.qemu import qemu_unavailable_reason
from edgekit.report.html import render_html
from edgekit.report.markdown import render_table
from edgekit.report.model import BenchRow, Report
from edgekit.report.table import results_table
from edgekit.runtime.peak import (CACHE_FILE, KERNELS, cache_key, cache_path, gemm_model, gemm_peak, kernel_for,
                                  measure_peak, percent_of_peak, row_peak)
from edgekit.targets import SshOptions, Target, get_target

FAST = Timing(warmup_runs=2, min_runs=10, min_seconds=0.0, max_seconds=2.0)


@pytest.fixture(scope="module")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private edgekit cache folder for this test (the runner subprocess inherits it)."""
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / CACHE_FILE


# --------------------------------------------------------------------------- the microbenchmark
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_gemm_model_is_valid_onnx_and_computes_the_product(kernel: str) -> None:
    rng = np.random.default_rng(0)
    if kernel == "fp32":
        a, b = rng.standard_normal((16, 24)).astype(np.float32), rng.standard_normal((24, 8)).astype(np.float32)
        model = gemm_model("MatMul", np.float32, b, np.float32, 16)
    else:
        # activations below 128: on CPUs without VNNI (AVX2) MLAS multiplies u8 x s8 pairs with vpmaddubsw,
        # whose int16 pair sums saturate at 255 * 127 * 2; the peak only times the kernel, so the check stays in
        # the range every x86 kernel computes exactly
        a, b = rng.integers(0, 128, (16, 24), dtype=np.uint8), rng.integers(-127, 128, (24, 8), dtype=np.int8)
        model = gemm_model("MatMulInteger", np.uint8, b, np.int32, 16)
    onnx.checker.check_model(onnx.load_from_string(model), full_check=True)  # written without the onnx package
    y = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    want = a.astype(np.int64) @ b.astype(np.int64) if kernel == "int8" else a @ b
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


def test_kernel_by_precision_and_percent() -> None:
    assert [kernel_for(p) for p in ("fp32", "fp16", "int8", "mixed", None)] == ["fp32", "fp32", "int8", "int8", "fp32"]
    assert percent_of_peak(1_000_000, 500.0, 1e9) == pytest.approx(50.0)


def test_peak_is_measured_once_then_read_from_the_cache(cache: Path) -> None:
    t0 = time.perf_counter()
    first = gemm_peak(1)
    measured_s = time.perf_counter() - t0
    assert first["fp32"] > 1e9 and first["int8"] > 1e9, first  # > 1 GMAC/s on any x86 core of this decade
    assert measured_s < 10, measured_s  # ~1 s on an idle core
    entry = json.loads(cache.read_text())[cache_key(1)]
    assert entry == pytest.approx(first)
    # The cache is what answers next time: a planted figure comes back, nothing is measured again.
    cache.write_text(json.dumps({cache_key(1): {"fp32": 1.5e9, "int8": 2.5e9}}))
    t0 = time.perf_counter()
    assert gemm_peak(1) == {"fp32": 1.5e9, "int8": 2.5e9}
    assert time.perf_counter() - t0 < 0.5
    assert cache_path() == cache
    key = cache_key(2)
    assert "2 threads" in key and f"onnxruntime {ort.__version__}" in key and os.uname().machine in key


def test_a_damaged_cache_is_measured_again(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert gemm_peak(1)["int8"] > 1e9
    assert cache_key(1) in json.loads(cache.read_text())


def test_a_gpu_row_gets_no_cpu_peak(cache: Path) -> None:
    cuda = row_peak("fp32", 1, "CUDAExecutionProvider")
    assert cuda["peak_gmacs"] is None and cuda["peak_reason"].startswith("no GEMM peak for CUDAExecutionProvider")
    assert not cache.exists()  # nothing was measured for it
    assert row_peak("int8", 1, "XNNPACK")["peak_gmacs"] > 1


def test_an_all_threads_peak_is_at_least_threads_times_the_one_thread_peak(cache: Path) -> None:
    """A multi-thread GEMM timed while other processes hold cores measures the load; the floor keeps the peak."""
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({cache_key(1): {"fp32": 400e12, "int8": 900e12}}))  # far above any real core (AMX too)
    two = gemm_peak(2)
    assert two == {"fp32": 800e12, "int8": 1800e12}
    assert json.loads(cache.read_text())[cache_key(2)] == two


def test_a_row_above_the_peak_is_flagged() -> None:
    rows = [{"artifact_id": "a", "status": "ok", "percent_of_peak": 157.6, "peak_kernel": "fp32", "peak_gmacs": 56.0,
             "target": "x86-cpu", "batch_size": 32, "threads": 2},
            {"artifact_id": "b", "status": "ok", "percent_of_peak": 99.0}, {"artifact_id": "c", "status": "failed"}]
    (line,) = over_peak_warnings(rows, {"a": "baseline-tflite"})
    assert line.startswith("baseline-tflite: 157.6 % of the fp32 GEMM peak (56.0 GMAC/s)") and "2 threads" in line


def test_a_reference_cnn_row_at_batch_32_stays_within_the_peak(tmp_path: Path, cache: Path) -> None:
    """The reference CNN (2.53 M MACs, untrained: speed does not depend on the weights) in ONNX Runtime at batch
    32, on one thread and on all: each row set against the peak of its own thread count stays under 100 %."""
    import dataclasses

    from edgekit.export.convert import keras2onnx
    from edgekit.models.reference import build_reference_cnn

    path = tmp_path / "reference.onnx"
    path.write_bytes(keras2onnx(build_reference_cnn(), (28, 28, 1)))
    art = Artifact(id="ref", stage="external", format="onnx", precision="fp32", path=path, parent_id=None)
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    target = dataclasses.replace(get_target("x86-cpu"), batch_sizes=(32,), threads=(1, 0))
    rows = benchmark([art], x, np.zeros(len(x), np.int64), [target], timing=FAST)
    assert {r["status"] for r in rows} == {"ok"}, [r["reason"] for r in rows]
    assert {r["threads"] for r in rows} == {1, os.cpu_count()} or os.cpu_count() == 1
    for r in rows:
        assert r["macs_per_image"] == 2_528_000  # conv1 194,688 + conv2 2,230,272 + dense 102,400 + 640
        assert r["peak_gmacs"] * 1e9 == pytest.approx(gemm_peak(r["threads"])["fp32"])
        assert 0 < r["percent_of_peak"] <= 100, r
    assert not over_peak_warnings(rows)


def test_int8_peak_is_above_fp32_on_this_x86() -> None:
    peak = measure_peak(1, size=128, windows=1, min_seconds=0.02)
    assert peak["int8"] > peak["fp32"] > 0, peak  # MLAS' u8×s8 kernel does more MACs per cycle than SGEMM


# --------------------------------------------------------------------------- benchmark rows
def test_rows_carry_macs_peak_and_percent(mcu: McuModels, tmp_path: Path, cache: Path) -> None:
    onnx_path = write_tiny_onnx(tmp_path / "conv.onnx")
    arts = [Artifact(id="fp32", stage="external", format="tflite", precision="fp32", path=mcu.fp32, parent_id=None),
            Artifact(id="int8", stage="external", format="tflite", precision="int8", path=mcu.int8, parent_id=None),
            Artifact(id="conv", stage="external", format="onnx", precision="fp32", path=onnx_path, parent_id=None)]
    y = np.zeros(len(mcu.x), np.int64)
    rows = benchmark(arts, mcu.x, y, [get_target("x86-cpu")], timing=FAST)
    assert rows and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    peaks = json.loads(cache.read_text())  # measured by the runner subprocess, one entry per thread count
    assert {cache_key(t) for t in {r["threads"] for r in rows}} <= set(peaks)
    for r in rows:
        art = next(a for a in arts if a.id == r["artifact_id"])
        assert r["macs_per_image"] == audit_model(art.path)["macs"] > 0
        assert r["peak_kernel"] == kernel_for(art.precision)
        assert r["peak_gmacs"] == pytest.approx(peaks[cache_key(r["threads"])][r["peak_kernel"]] / 1e9)
        want = percent_of_peak(r["macs_per_image"], r["throughput_per_s"], r["peak_gmacs"] * 1e9)
        assert r["percent_of_peak"] == pytest.approx(want)
        assert 0 < r["percent_of_peak"] <= 100, r  # a native x86 row never beats the GEMM peak of its own cores
        assert "peak_reason" not in r  # measured: no reason, and the row writes back as it was read
        typed = BenchRow.from_dict(r)
        assert (typed.macs_per_image, typed.peak_kernel, typed.percent_of_peak) == (
            r["macs_per_image"], r["peak_kernel"], r["percent_of_peak"])
        assert BenchRow.from_dict(typed.to_dict()) == typed


def test_a_row_without_a_peak_says_why(mcu: McuModels) -> None:
    art = Artifact(id="fp32", stage="external", format="tflite", precision="fp32", path=mcu.fp32, parent_id=None)
    rows = [{"artifact_id": "fp32", "target": "board", "status": "ok", "throughput_per_s": 100.0, "threads": 1,
             "peak_kernel": "fp32", "peak_gmacs": None, "peak_reason": "no GEMM peak: onnxruntime is not installed"},
            {"artifact_id": "fp32", "target": "old-runner", "status": "ok", "throughput_per_s": 100.0, "threads": 1},
            {"artifact_id": "fp32", "target": "off", "status": "skipped", "reason": "no board"}]
    add_percent_of_peak(rows, [art])
    assert "percent_of_peak" not in rows[0] and rows[0]["peak_reason"].startswith("no GEMM peak: onnxruntime")
    assert rows[1]["peak_reason"] == "no GEMM peak was measured where this row ran"
    assert rows[0]["macs_per_image"] == audit_model(mcu.fp32)["macs"]
    assert "macs_per_image" not in rows[2] and "peak_reason" not in rows[2]


# --------------------------------------------------------------------------- report records and renderers
def _report(rows: list[dict], **artifact: str) -> Report:
    arts = [{"id": "m", "name": "m", "stage": "external", "format": "tflite", "precision": "int8", **artifact}]
    return Report.from_dict({"artifacts": arts, "benchmarks": rows, "status": "ok"})


OLD_ROW = {"artifact_id": "m", "runtime": "litert", "target": "x86-cpu", "emulated": False, "provider": "XNNPACK",
           "providers": ["XNNPACK", "CPU"], "node_share": {"XNNPACK": 1.0}, "status": "ok", "reason": "",
           "batch_size": 1, "threads": 1, "latency_ms": {"p50": 0.05, "p90": 0.06}, "throughput_per_s": 20000.0,
           "runs": 200, "seconds": 1.0, "session_create_ms": 1.0, "first_inference_ms": 0.1, "peak_rss_mb": 80.0,
           "accuracy": 0.9, "top1_agreement": None, "reference_target": "x86-cpu", "target_agreement": 1.0}


def test_a_report_from_before_the_fields_loads_and_writes_back_unchanged() -> None:
    report = _report([OLD_ROW])
    row = report.benchmarks[0]
    assert (row.macs_per_image, row.peak_gmacs, row.peak_kernel, row.percent_of_peak, row.peak_reason) == (
        None, None, None, None, "")
    assert row.to_dict() == OLD_ROW  # no new keys appear in an old report.json
    assert results_table(report)[0].percent_of_peak is None
    line = render_table(report).splitlines()[2]
    assert "| 20000 | – |" in line  # the % of peak cell is empty, not invented


def test_results_table_and_renderers_show_the_best_percent_of_peak() -> None:
    peak = {"macs_per_image": 300_000, "peak_kernel": "int8", "peak_gmacs": 200.0, "peak_reason": ""}
    b1 = {**OLD_ROW, **peak, "percent_of_peak": 3.0}
    b32 = {**OLD_ROW, **peak, "batch_size": 32, "throughput_per_s": 40000.0, "percent_of_peak": 6.0}
    report = _report([b1, b32])
    (row,) = results_table(report)
    assert row.percent_of_peak == 6.0 and row.peak_reason == ""
    md = render_table(report)
    assert "| % of peak |" in md.splitlines()[0] and "| 40000 | 6.0 |" in md
    page = render_html(report)
    assert "% of peak" in page and "200.0 (int8)" in page and ">6.00<" in page
    missing = {**OLD_ROW, "macs_per_image": 300_000, "peak_kernel": "int8", "peak_reason": "no GEMM peak: boom"}
    (row,) = results_table(_report([missing]))
    assert row.percent_of_peak is None and row.peak_reason == "no GEMM peak: boom"
    assert "no GEMM peak: boom" in render_html(_report([missing]))


# --------------------------------------------------------------------------- emulated ARM64
ARM = get_target("arm64-qemu")
ARM_REASON = qemu_unavailable_reason(ARM)


@pytest.mark.arm64
@pytest.mark.slow  # a benchmark under qemu, and the emulator's own GEMM peak (~5 s once): ~20 s
@pytest.mark.skipif(ARM_REASON is not None, reason=f"needs the ARM64 sysroot: {ARM_REASON}")
def test_an_emulated_row_carries_the_emulated_machines_peak(tmp_path: Path, cache: Path) -> None:
    path = write_tiny_onnx(tmp_path / "conv.onnx")
    art = Artifact(id="conv", stage="external", format="onnx", precision="fp32", path=path, parent_id=None)
    x, y = tiny_data(8)
    timing = Timing(warmup_runs=1, min_runs=3, min_seconds=0.0, max_seconds=5.0)
    rows = benchmark([art], x, y, [get_target("x86-cpu"), ARM], timing=timing)
    assert all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    arm = [r for r in rows if r["target"] == "arm64-qemu"]
    x86 = [r for r in rows if r["target"] == "x86-cpu" and r["threads"] == 1]
    assert arm and x86
    keys = [k for k in json.loads(cache.read_text()) if "|aarch64|" in k]
    assert len(keys) == 1 and "1 threads" in keys[0] and "0x41 0xd0c" in keys[0], keys  # neoverse-n1's cpuinfo
    for r in arm:
        assert r["emulated"] and r["peak_kernel"] == "fp32" and r["percent_of_peak"] > 0
        assert r["peak_gmacs"] < 0.5 * x86[0]["peak_gmacs"]  # the emulator's own peak, not the host's


# --------------------------------------------------------------------------- an SSH board
@pytest.mark.skipif(SSHD_MISSING is not None, reason=SSHD_MISSING or "")
def test_an_ssh_row_carries_the_peak_measured_on_the_board(tmp_path: Path, cache: Path) -> None:
    """The board (this machine's python behind a real sshd on 127.0.0.1) measures and caches its own peak."""
    import getpass
    import sys

    board_cache = tmp_path / "board-cache"
    python = tmp_path / "board-python"  # the board's python, with the board's own edgekit cache folder
    python.write_text(f"#!/bin/sh\nEDGEKIT_CACHE_DIR='{board_cache}' exec '{sys.executable}' \"$@\"\n")
    python.chmod(0o755)
    path = write_tiny_onnx(tmp_path / "conv.onnx")
    art = Artifact(id="conv", stage="external", format="onnx", precision="fp32", path=path, parent_id=None)
    x, y = tiny_data(8)
    with running_sshd(tmp_path / "sshd") as sshd:
        board = Target(name="x86-board", arch=os.uname().machine, location="ssh", runtimes=("onnxruntime",),
                       threads=(1,), batch_sizes=(1,),
                       ssh=SshOptions(host="127.0.0.1", user=getpass.getuser(), port=sshd.port, key=str(sshd.key),
                                      known_hosts=str(sshd.known_hosts), python=str(python), timeout_s=300,
                                      connect_timeout_s=10))
        rows = benchmark([art], x, y, [board], timing=FAST)
    assert rows and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    board_peaks = json.loads((board_cache / CACHE_FILE).read_text())
    assert not cache.exists()  # measured on the board, not here
    for r in rows:
        assert r["peak_gmacs"] == pytest.approx(board_peaks[cache_key(1)]["fp32"] / 1e9)
        assert 0 < r["percent_of_peak"] <= 100
