"""TensorFlow Lite Micro on the host: real TFLM kernels, measured arena, unsupported ops, MCU budgets.

Fast tier: tiny *untrained* models converted with edgekit's own ``keras2tflite``; the
trained-model check is marked slow.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.mcu_models import McuModels, mcu_models
from edgekit.errors import TargetError
from edgekit.export.c_array import write_c_array
from edgekit.mcu import fit_table, fits
from edgekit.runtime.tflm import measure_arena, run_tflm, verify_on_tflm
from edgekit.targets import get_target, load_profile

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tflite_micro") is None,
                                reason="needs the tflite-micro package (pip install --pre tflite-micro, or edgekit[mcu])")


@pytest.fixture(scope="session")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


def _litert_top1(path: Path, x: np.ndarray) -> list[int]:
    """LiteRT's top-1 for each image, through edgekit's own inference path."""
    from edgekit.evaluate import predict_file

    return [int(p) for p in predict_file(str(path), "tflite", x).argmax(1)]


def test_int8_model_runs_on_tflm_and_agrees_with_litert(mcu: McuModels) -> None:
    result = verify_on_tflm(mcu.int8, mcu.x, _litert_top1(mcu.int8, mcu.x))
    assert result["status"] == "ok", result["reason"]
    assert result["runtime"] == "tflite-micro" and result["version"]
    assert result["images"] == len(mcu.x) and len(result["predictions"]) == len(mcu.x)
    assert result["agreement"] >= 0.99
    assert result["unsupported_ops"] == [] and result["arena_bytes"] > 0


def test_measured_arena_is_exactly_what_tflm_needs(mcu: McuModels) -> None:
    arena = measure_arena(mcu.int8).arena_bytes
    assert arena and arena % 16 == 0
    assert run_tflm(mcu.int8, mcu.x[:1], arena_size=arena).ok  # the figure suffices...
    short = run_tflm(mcu.int8, mcu.x[:1], arena_size=arena - 16)  # ...and 16 bytes less does not
    assert not short.ok and short.reason


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    from edgekit._tf import keras, tf
    from edgekit.export.convert import keras2tflite

    k = keras()
    inp = k.layers.Input((8,), name="input")
    out = k.layers.Lambda(lambda t: tf().math.top_k(t, k=3).values)(k.layers.Dense(8)(inp))
    path = tmp_path / "topk.tflite"
    path.write_bytes(keras2tflite(k.Model(inp, out)))
    result = verify_on_tflm(path, np.zeros((2, 8), np.float32), [0, 0])
    assert result["status"] == "unsupported"
    assert result["unsupported_ops"] == ["TOPK_V2"] and "TOPK_V2" in result["reason"]
    fit = fits(path, get_target("cortex-m4-256k"))
    assert fit["fits"] is False and fit["unsupported_ops"] == ["TOPK_V2"]


def test_int8_fits_cortex_m4_with_margins(mcu: McuModels) -> None:
    target = get_target("cortex-m4-256k")
    row = fits(mcu.int8, target)
    assert row["fits"] is True and row["reason"] == "" and row["runtime"] == "tflite-micro"
    assert row["ram_bytes"] == 256 * 1024 and row["flash_bytes"] == 1024 * 1024
    assert row["model_bytes"] == mcu.int8.stat().st_size
    assert row["ram_needed_bytes"] == row["arena_bytes"] + target.mcu.runtime_ram_kb * 1024
    assert row["flash_needed_bytes"] == row["model_bytes"] + target.mcu.runtime_flash_kb * 1024
    assert row["ram_margin_bytes"] == row["ram_bytes"] - row["ram_needed_bytes"] > 0
    assert row["flash_margin_bytes"] == row["flash_bytes"] - row["flash_needed_bytes"] > 0
    assert fits(mcu.int8, target, arena_bytes=row["arena_bytes"]) == row  # a known arena skips the TFLM run


def test_over_budget_is_reported_with_the_reason(mcu: McuModels, tmp_path: Path) -> None:
    profile = tmp_path / "tiny-mcu.toml"
    profile.write_text('name = "tiny-mcu"\narch = "armv7e-m"\nruntimes = []\n\n'
                       "[mcu]\nram_kb = 16\nflash_kb = 100\nruntime_ram_kb = 8\nruntime_flash_kb = 96\n")
    row = fits(mcu.int8, load_profile(profile))
    assert row["fits"] is False and row["fits_ram"] is False and row["fits_flash"] is False
    assert row["ram_margin_bytes"] < 0 and row["flash_margin_bytes"] < 0
    assert re.search(r"RAM: arena [\d.]+ KB \+ runtime 8 KB > 16 KB; flash: model [\d.]+ KB \+ runtime 96 KB > 100 KB",
                     row["reason"])


def test_fits_needs_an_mcu_profile(mcu: McuModels) -> None:
    with pytest.raises(TargetError, match="x86-cpu: not a microcontroller profile"):
        fits(mcu.int8, get_target("x86-cpu"))
    assert fits(mcu.folder / "model.onnx", get_target("cortex-m4-256k"))["fits"] is False


def test_mcu_profiles_load() -> None:
    for name, ram, flash in (("cortex-m4-256k", 256, 1024), ("cortex-m7-512k", 512, 2048), ("esp32-s3", 512, 8192),
                             ("cortex-m4-64k", 64, 512)):
        target = get_target(name)
        assert target.mcu is not None and (target.mcu.ram_kb, target.mcu.flash_kb) == (ram, flash)
        assert target.mcu.runtime == "tflite-micro" and target.mcu.runtime_ram_kb > 0 and target.mcu.runtime_flash_kb > 0
        assert target.runtimes == ()  # nothing times an MCU on this host


def test_seed_cnn_fp32_does_not_fit_a_small_mcu_but_int8_does(tmp_path: Path) -> None:
    """The seed CNN (untrained: the arena and file size do not depend on the weights' values)."""
    from edgekit.export.convert import keras2tflite
    from edgekit.models.reference import build_reference_cnn

    model = build_reference_cnn()
    fp32, int8 = tmp_path / "seed_fp32.tflite", tmp_path / "seed_int8.tflite"
    fp32.write_bytes(keras2tflite(model))
    int8.write_bytes(keras2tflite(model, quantization="int8",
                                  representative=np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)))
    small = get_target("cortex-m4-64k")
    row = fits(fp32, small)
    assert row["fits"] is False and row["fits_ram"] is False and row["fits_flash"] is False, row
    assert "RAM: arena" in row["reason"] and "flash: model" in row["reason"]
    assert fits(int8, small)["fits"] is True


def test_c_array_records_the_measured_arena(mcu: McuModels, tmp_path: Path) -> None:
    files = write_c_array(mcu.int8, tmp_path, name="model_data")
    assert files.arena_bytes == measure_arena(mcu.int8).arena_bytes
    header = files.header.read_text()
    assert f"#define MODEL_DATA_ARENA_BYTES {files.arena_bytes}u" in header
    assert "#define MODEL_ARENA_BYTES MODEL_DATA_ARENA_BYTES" in header
    plain = write_c_array(mcu.int8, tmp_path / "off", name="m", measure_arena=False)
    assert plain.arena_bytes is None and "ARENA_BYTES" not in plain.header.read_text().replace("No measured", "")


@pytest.mark.slow
def test_trained_int8_model_agrees_on_tflm(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.helpers.models import tiny_models

    tiny = tiny_models(tmp_path_factory.getbasetemp())
    x = tiny.x_test[:300]
    result = verify_on_tflm(tiny.tflite_int8, x, _litert_top1(tiny.tflite_int8, x))
    assert result["status"] == "ok" and result["agreement"] >= 0.99, result
    assert fits(tiny.tflite_int8, get_target("cortex-m4-256k"))["fits"] is True


def test_fit_table_measures_once_for_every_mcu_target(mcu: McuModels) -> None:
    targets = [get_target(n) for n in ("x86-cpu", "cortex-m4-256k", "cortex-m4-64k", "esp32-s3")]
    rows = fit_table(mcu.int8, targets)
    assert [r["target"] for r in rows] == ["cortex-m4-256k", "cortex-m4-64k", "esp32-s3"]
    assert len({r["arena_bytes"] for r in rows}) == 1 and all(r["fits"] for r in rows)
    assert fit_table(mcu.int8, [get_target("x86-cpu")]) == []
    assert [r["fits"] for r in fit_table(mcu.folder / "absent.tflite", targets)] == [False] * 3
