"""examples/mcu cross-compiled for a Cortex-M4 with Debian's gcc-arm-none-eabi; arm-none-eabi-size reads the footprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.mcu_models import McuModels, mcu_models
from edgekit.export.mcu_build import cross_compile_example, parse_size, toolchain_unavailable_reason

_WHY = toolchain_unavailable_reason()
needs_arm_gcc = pytest.mark.skipif(_WHY is not None, reason=f"needs the Arm cross toolchain: {_WHY}")


@pytest.fixture(scope="session")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


def test_parse_size_berkeley_output() -> None:
    text = ("   text\t   data\t    bss\t    dec\t    hex\tfilename\n"
            "   7566\t      0\t      0\t   7566\t   1d8e\tmodel_data-cortex-m4.o\n"
            "  38125\t   2488\t  12536\t  53149\t   cf9d\t/tmp/x/firmware-cortex-m4.elf\n")
    rows = parse_size(text)
    assert rows["model_data-cortex-m4.o"] == {"text": 7566, "data": 0, "bss": 0, "flash": 7566, "ram": 0}
    assert rows["firmware-cortex-m4.elf"]["flash"] == 38125 + 2488
    assert rows["firmware-cortex-m4.elf"]["ram"] == 2488 + 12536


@needs_arm_gcc
def test_mcu_example_cross_compiles_for_cortex_m4(mcu: McuModels, tmp_path: Path) -> None:
    out = cross_compile_example(mcu.int8, cpu="cortex-m4", work_dir=tmp_path / "mcu")
    model_bytes = mcu.int8.stat().st_size
    assert out["cpu"] == "cortex-m4" and out["toolchain"].startswith("arm-none-eabi-gcc")
    # The model's object file: the 16-byte aligned flatbuffer plus the labels, all in flash (text).
    assert model_bytes <= out["model"]["text"] < model_bytes + 1024
    assert out["model"]["data"] == 0 and out["model"]["bss"] == 0
    # The image: the model is in flash; the static arena (MODEL_ARENA_BYTES, measured on TFLM) is in bss.
    assert out["firmware"]["flash"] > out["model"]["text"]
    if out["arena_bytes"] is not None:
        assert out["firmware"]["bss"] >= out["arena_bytes"]
    assert "filename" in out["size_output"] and "firmware-cortex-m4.elf" in out["size_output"]
    elf = Path(out["elf"])
    assert elf.read_bytes()[:4] == b"\x7fELF" and elf.read_bytes()[18] == 40  # e_machine EM_ARM
