"""Nothing handed to the examples/mcu build reaches make or the shell as code (real arm-none-eabi-gcc and make)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.errors import UsageError
from edgekit.export.mcu_build import cross_compile_example, toolchain_unavailable_reason
from tests.helpers.mcu_models import McuModels, mcu_models

_WHY = toolchain_unavailable_reason()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"needs the Arm cross toolchain: {_WHY}")


@pytest.fixture(scope="session")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("cpu", ["cortex-m4 $(shell touch {marker})", "cortex-m4`touch {marker}`",
                                 "$(eval $(shell touch {marker}))", "-n"])
def test_cpu_that_make_or_the_shell_would_expand_is_refused(mcu: McuModels, tmp_path: Path, cpu: str) -> None:
    marker = tmp_path / "MARKER"
    with pytest.raises(UsageError, match="mcu.cpu must match"):
        cross_compile_example(mcu.int8, cpu=cpu.format(marker=marker), work_dir=tmp_path / "mcu")
    assert not marker.exists()


def test_model_path_with_make_syntax_builds_and_runs_nothing(mcu: McuModels, tmp_path: Path) -> None:
    """A run folder may be named anything; make never sees the model's path."""
    folder = tmp_path / "$(shell touch MARKER)"
    folder.mkdir()
    model = folder / "m.tflite"
    shutil.copyfile(mcu.int8, model)
    work = tmp_path / "mcu"
    out = cross_compile_example(model, cpu="cortex-m4", work_dir=work)
    assert out["firmware"] is not None and out["firmware"]["flash"] > 0
    assert not list(tmp_path.rglob("MARKER")), "make ran a command from the model's path"
