"""Microcontroller targets wired in: location ``tflm`` rows, the chooser's fit filter, the report's MCU section.

Fast tier: tiny *untrained* tf_keras models converted with edgekit's own ``keras2tflite``
(tests/helpers/mcu_models.py); the chooser is fed synthetic artifacts and rows. The real
``edgekit compress --targets cortex-m4-256k`` on a Fashion-MNIST slice is marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.helpers.mcu_models import McuModels, mcu_models
from edgekit.artifact import Artifact
from edgekit.bench.api import benchmark
from edgekit.locations import location_for
from edgekit.mcu import mcu_exclusions, report_section
from edgekit.report.markdown import render_markdown
from edgekit.report.model import BenchRow, Report
from edgekit.search import choose, default_choice
from edgekit.targets import get_target, load_profile

HAVE_TFLM = importlib.util.find_spec("tflite_micro") is not None
needs_tflm = pytest.mark.skipif(not HAVE_TFLM, reason="needs the tflite-micro package (pip install 'edgekit[mcu]')")
M4 = get_target("cortex-m4-256k")


@pytest.fixture(scope="session")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


def _art(aid: str, path: Path, precision: str = "int8", fmt: str = "tflite", **metrics: Any) -> Artifact:
    return Artifact(id=aid, stage="external", format=fmt, precision=precision, path=path,  # type: ignore[arg-type]
                    parent_id=None, metrics=metrics, name=aid)


def _tiny_profile(folder: Path, ram_kb: int = 16) -> Any:
    path = folder / "tiny-mcu.toml"
    path.write_text('name = "tiny-mcu"\narch = "armv7e-m"\nlocation = "tflm"\nruntimes = []\nthreads = [1]\n'
                    f"batch_sizes = [1]\n\n[mcu]\nram_kb = {ram_kb}\nflash_kb = 1024\nruntime_ram_kb = 8\n"
                    'runtime_flash_kb = 96\ncpu = "cortex-m4"\n')
    return load_profile(path)


# --------------------------------------------------------------------------- the location
@needs_tflm
def test_mcu_profiles_run_here_on_tflm() -> None:
    for name in ("cortex-m4-256k", "cortex-m4-64k", "cortex-m7-512k", "esp32-s3"):
        target = get_target(name)
        assert target.location == "tflm"
        assert location_for(target).unavailable_reason() is None
    out = subprocess.run([sys.executable, "-m", "edgekit", "devices", "--no-probe"], capture_output=True, text=True,
                         check=True).stdout
    line = next(ln for ln in out.splitlines() if "cortex-m4-256k" in ln)
    assert "tflite-micro" in line and "yes" in line and "TFLM" in line and "armv7e-m CPU" not in line


@needs_tflm
def test_int8_row_has_accuracy_agreement_arena_and_fit_but_no_latency(mcu: McuModels) -> None:
    y = np.arange(len(mcu.x)) % 10
    ref = np.zeros(len(mcu.x), np.int64)
    rows = benchmark([_art("i8", mcu.int8), _art("f32", mcu.fp32, "fp32")], mcu.x, y, [M4], references={"i8": ref})
    by_id = {r["artifact_id"]: r for r in rows}
    assert set(by_id) == {"i8", "f32"} and len(rows) == 2  # one row per .tflite file
    row = BenchRow.from_dict(json.loads(json.dumps(by_id["i8"])))  # through JSON, typed
    assert row.status == "ok", row.reason
    assert row.runtime == "tflite-micro" and row.batch_size == 1
    assert row.latency_ms is None and row.throughput_per_s is None  # host TFLM speed is not the MCU's
    assert row.accuracy is not None and row.top1_agreement is not None
    m = row.mcu
    assert m is not None and m.fits is True and m.tflm_status == "ok" and m.tflm_images == len(mcu.x), m
    assert m.tflm_agreement is not None and m.tflm_agreement >= 0.99
    assert m.arena_bytes and m.ram_needed_bytes == m.arena_bytes + M4.mcu.runtime_ram_kb * 1024
    assert m.ram_margin_bytes == 256 * 1024 - m.ram_needed_bytes and m.flash_margin_bytes > 0
    assert m.latency and "not" in m.latency
    assert BenchRow.from_dict(row.to_dict()) == row
    float_row = by_id["f32"]
    assert float_row["status"] == "skipped" and "fp32" in float_row["reason"]
    assert float_row["accuracy"] is None and float_row["mcu"]["arena_bytes"] > 0  # the fit is still measured


@needs_tflm
def test_a_file_that_does_not_fit_is_skipped_with_the_reason(mcu: McuModels, tmp_path: Path) -> None:
    tiny = _tiny_profile(tmp_path)
    rows = benchmark([_art("i8", mcu.int8)], mcu.x, np.zeros(len(mcu.x), np.int64), [tiny])
    (row,) = rows
    assert row["status"] == "skipped" and row["reason"].startswith("does not fit tiny-mcu: RAM: arena")
    assert row["mcu"]["fits"] is False and row["mcu"]["fits_ram"] is False and row["mcu"]["ram_margin_bytes"] < 0
    assert row["mcu"]["tflm_agreement"] >= 0.99  # it ran; it just does not fit


# --------------------------------------------------------------------------- the chooser's filter
def _mcu_row(aid: str, status: str, fits: bool | None, agreement: float | None = 1.0, reason: str = "") -> dict[str, Any]:
    return {"artifact_id": aid, "target": M4.name, "runtime": "tflite-micro", "status": status, "reason": reason,
            "batch_size": 1, "threads": 1, "latency_ms": None,
            "mcu": {"fits": fits, "reason": reason, "tflm_agreement": agreement}}


def _synthetic(tmp_path: Path) -> tuple[list[Artifact], list[dict[str, Any]]]:
    """A trained model and five files; the smallest do not fit or disagree, so the largest int8 must win."""
    def f(name: str, size: int) -> Path:
        p = tmp_path / name
        p.write_bytes(b"\0" * size)
        return p

    arts = [Artifact(id="train", stage="train", format="keras", precision="fp32", path=f("m.keras", 9000),
                     parent_id=None, metrics={"val_accuracy": 0.90}, name="baseline"),
            _art("onnx8", f("a.onnx", 500), fmt="onnx", val_accuracy=0.90),
            _art("small", f("small.tflite", 600), val_accuracy=0.90),
            _art("wrong", f("wrong.tflite", 700), val_accuracy=0.90),
            _art("fit", f("fit.tflite", 800), val_accuracy=0.895),
            _art("f32", f("f32.tflite", 3000), "fp32", val_accuracy=0.90)]
    rows = [_mcu_row("small", "skipped", False, reason="does not fit cortex-m4-256k: RAM: arena 300.0 KB + runtime 12 KB > 256 KB"),
            _mcu_row("wrong", "ok", True, agreement=0.95), _mcu_row("fit", "ok", True),
            _mcu_row("f32", "skipped", False, None, "fp32 file: a microcontroller runs int8 models")]
    return arts, rows


def test_mcu_filter_keeps_only_files_that_run_and_fit(tmp_path: Path) -> None:
    arts, rows = _synthetic(tmp_path)
    why = mcu_exclusions(arts, rows, [M4, get_target("x86-cpu")])
    assert set(why) == {"onnx8", "small", "wrong", "f32"}  # the Keras model is no candidate
    assert "only .tflite" in why["onnx8"] and "RAM: arena" in why["small"] and "95.00%" in why["wrong"]
    assert all(w.startswith("not for cortex-m4-256k: ") for w in why.values())
    assert mcu_exclusions(arts, rows, [get_target("x86-cpu")]) == {}  # no MCU target: no filter


def test_chooser_picks_the_smallest_file_that_fits(tmp_path: Path) -> None:
    arts, rows = _synthetic(tmp_path)
    cfg = SimpleNamespace(target="", max_accuracy_drop=1.0, latency_target_ms=None)
    search = choose(cfg, arts, rows, [M4])
    assert search["status"] == "ok" and search["chosen_id"] == "fit" and not search["fallback"]
    assert "RAM: arena" in search["excluded"]["small"]
    assert default_choice(arts, 1.0, targets=[M4], rows=rows) == "fit"
    assert default_choice(arts, 1.0) == "onnx8"  # without MCU targets the smallest file wins
    nothing = [r if r["artifact_id"] != "fit" else _mcu_row("fit", "skipped", False, reason="too big") for r in rows]
    failed = choose(cfg, arts, nothing, [M4])
    assert failed["chosen_id"] is None and failed["status"] == "failed"  # no fallback to an fp32 file that does not fit


def test_being_larger_than_a_parent_that_cannot_go_on_the_mcu_excludes_nothing(tmp_path: Path) -> None:
    """A pruned fp32 .tflite is sparse-encoded (smaller than its dense int8 child), but TFLM runs int8 only."""
    arts, rows = _synthetic(tmp_path)
    sparse = tmp_path / "sparse.tflite"
    sparse.write_bytes(b"\0" * 400)
    arts = [a for a in arts if a.id != "fit"] + [
        _art("sparse", sparse, "fp32", val_accuracy=0.90),
        Artifact(id="fit", stage="quantize.ptq_int8", format="tflite", precision="int8", path=tmp_path / "fit.tflite",
                 parent_id="sparse", metrics={"val_accuracy": 0.90}, name="fit")]
    rows = rows + [_mcu_row("sparse", "skipped", True, None, "fp32 file: a microcontroller runs int8 models")]
    cfg = SimpleNamespace(target="", max_accuracy_drop=1.0, latency_target_ms=None)
    on_x86 = {c["id"]: c for c in choose(cfg, arts, rows, [get_target("x86-cpu")])["candidates"]}
    assert "larger than" in on_x86["fit"]["worse_than_parent"][0] and "excluded" not in on_x86["fit"]  # flagged only
    search = choose(cfg, arts, rows, [M4])
    assert search["chosen_id"] == "fit" and "fp32 file" in search["excluded"]["sparse"]


# --------------------------------------------------------------------------- the report
@needs_tflm
def test_report_has_an_mcu_section_with_the_fit_table_and_the_size_output(mcu: McuModels, tmp_path: Path) -> None:
    from edgekit.export.mcu_build import toolchain_unavailable_reason
    from edgekit.report.html import render_html

    arts = [_art("i8", mcu.int8), _art("f32", mcu.fp32, "fp32")]
    small = get_target("cortex-m4-64k")
    rows = benchmark(arts, mcu.x, np.arange(len(mcu.x)) % 10, [M4, small])
    section = report_section([M4, small, get_target("x86-cpu")], arts, "i8")
    assert [s["target"] for s in section] == ["cortex-m4-256k", "cortex-m4-64k"]
    cc = section[0]["cross_compile"]
    assert section[1]["cross_compile"] is cc  # one build per CPU
    if toolchain_unavailable_reason() is None:
        assert cc["status"] == "ok" and cc["artifact_id"] == "i8" and "firmware-cortex-m4.elf" in cc["size_output"]
        assert cc["arena_bytes"] == rows[0]["mcu"]["arena_bytes"] and cc["model"]["flash"] > 0
    else:
        assert cc["status"] == "skipped" and cc["reason"]
    report = Report.from_dict({"artifacts": [{"id": a.id, "name": a.name, "format": "tflite", "precision": a.precision}
                                             for a in arts],
                               "benchmarks": rows, "chosen_id": "i8", "mcu": section})
    assert Report.from_dict(report.to_dict()) == report
    md = render_markdown(report)
    assert "## Microcontroller: cortex-m4-256k (256 KB RAM, 1024 KB flash, tflite-micro)" in md
    assert "## Microcontroller: cortex-m4-64k" in md and "No latency" in md
    table = md.split("## Microcontroller: cortex-m4-256k")[1].split("##")[0]
    assert "| i8 **(chosen)** | int8 | ok |" in table and "| f32 | fp32 | skipped |" in table
    if cc["status"] == "ok":
        assert "firmware-cortex-m4.elf" in table
    html = render_html(report)
    assert 'id="mcu-cortex-m4-256k"' in html and "agree with LiteRT %" in html


def test_reports_without_mcu_keep_their_keys() -> None:
    data = {"artifacts": [{"id": "a", "format": "onnx", "precision": "fp32"}],
            "benchmarks": [{"artifact_id": "a", "target": "x86-cpu", "status": "ok"}]}
    report = Report.from_dict(data)
    assert report.mcu == () and report.benchmarks[0].mcu is None
    assert "mcu" not in report.to_dict() and "mcu" not in report.benchmarks[0].to_dict()
    assert "Microcontroller" not in render_markdown(report)


# --------------------------------------------------------------------------- slow: a real run
@pytest.mark.slow
@needs_tflm
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)")
def test_compress_for_cortex_m4_picks_a_file_that_runs_on_tflm_and_fits(tmp_path: Path) -> None:
    out = tmp_path / "m4"
    cmd = [sys.executable, "-m", "edgekit", "compress", "--dataset", "fashion-mnist", "--train-limit", "3000",
           "--test-limit", "500", "--targets", "cortex-m4-256k", "--max-accuracy-drop", "2.0", "--out", str(out)]
    # 2 pp: this test is about the microcontroller fit. On 3,000 images the certified bound of the trained model's
    # int8 file (a drop of -0.83 pp) is 1.21 pp on 10,600 unlabelled images, so at 1 pp nothing compressed is
    # certified and no float file fits the board (the budget's behaviour is tested in tests/test_rules.py).
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = Report.from_dict(json.loads((out / "report.json").read_text()))
    chosen = report.chosen
    assert chosen is not None and chosen.format == "tflite"
    (row,) = [b for b in report.benchmarks if b.artifact_id == chosen.id and b.target == "cortex-m4-256k"]
    m = row.mcu
    assert row.ok and m is not None and m.tflm_status == "ok" and m.tflm_images == 500
    assert m.tflm_agreement is not None and m.tflm_agreement >= 0.99
    assert m.fits is True and m.arena_bytes and m.ram_margin_bytes >= 0 and m.flash_margin_bytes >= 0
    (sec,) = report.mcu
    assert sec.target == "cortex-m4-256k" and sec.cross_compile is not None
    assert "Microcontroller: cortex-m4-256k" in (out / "report.md").read_text()
    fp32 = [b for b in report.benchmarks if b.mcu is not None and b.status == "skipped" and "fp32" in b.reason]
    assert fp32, "the fp32 .tflite file is in the fit table, skipped as a float file"
