"""The python-iot and mcu examples, run for real on a tiny model trained in the test session."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.mcu_models import standard_only_copy
from tests.helpers.models import TinyModels, tiny_models

ROOT = Path(__file__).resolve().parents[2]
CLASSIFY = ROOT / "examples" / "python-iot" / "classify.py"
MCU = ROOT / "examples" / "mcu"
N_IMAGES = 120


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def digit_pngs(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real test-split digits written as PNG files named ``NNN_LABEL.png``."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digit-pngs")
    for i in range(N_IMAGES):
        pixels = np.round(tiny.x_test[i, :, :, 0] * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}_{tiny.labels[tiny.y_test[i]]}.png")
    return folder


def _classify(*args: str, stdin: bytes | None = None) -> list[dict]:
    proc = subprocess.run([sys.executable, str(CLASSIFY), *args, "--json"], input=stdin, capture_output=True,
                          check=True, cwd=ROOT)
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


@pytest.mark.parametrize("kind", ["tflite", "onnx", "tflite_int8", "onnx_int8"])
@pytest.mark.slow
def test_python_iot_classifies_a_folder_of_pngs(tiny: TinyModels, digit_pngs: Path, kind: str) -> None:
    rows = _classify(str(getattr(tiny, kind)), str(digit_pngs))
    assert len(rows) == N_IMAGES
    truth = [Path(r["input"]).stem.split("_")[1] for r in rows]
    accuracy = np.mean([r["label"] == t for r, t in zip(rows, truth)])
    assert accuracy > 0.6, f"{kind}: accuracy {accuracy:.2f} on {N_IMAGES} digits (chance is 0.10)"
    assert all(0.0 <= r["confidence"] <= 1.0 and r["latency_ms"] > 0 for r in rows)


@pytest.mark.slow
def test_python_iot_reads_stdin_npy_and_raw(tiny: TinyModels) -> None:
    pixels = np.round(tiny.x_test[:8] * 255).astype(np.uint8)  # (8, 28, 28, 1)
    buf = io.BytesIO()
    np.save(buf, pixels)
    from_npy = _classify(str(tiny.tflite), "-", "--stdin", "npy", stdin=buf.getvalue())
    from_raw = _classify(str(tiny.onnx), "-", "--stdin", "raw", stdin=pixels.tobytes())
    assert [r["label"] for r in from_npy] == [r["label"] for r in from_raw]
    assert len(from_npy) == 8 and from_npy[0]["input"] == "stdin[0]"


@pytest.mark.slow
def test_python_iot_text_output_and_errors(tiny: TinyModels, digit_pngs: Path, tmp_path: Path) -> None:
    one = sorted(digit_pngs.iterdir())[0]
    proc = subprocess.run([sys.executable, str(CLASSIFY), str(tiny.tflite), str(one)], capture_output=True,
                          text=True, check=True)
    name, label, confidence, latency = proc.stdout.strip().split("\t")
    assert name == str(one) and label in tiny.labels and latency.endswith(" ms")
    assert "p50" in proc.stderr
    proc = subprocess.run([sys.executable, str(CLASSIFY), str(tiny.folder / "tiny_raw.tflite"), str(one)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no edgekit metadata" in proc.stderr


needs_cc = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None,
                              reason="needs a C compiler (`cc`) and `make` (apt-get install gcc make)")


@needs_cc
@pytest.mark.slow
def test_mcu_example_builds_and_runs(tiny: TinyModels, tmp_path: Path) -> None:
    work = tmp_path / "mcu"
    shutil.copytree(MCU, work, ignore=shutil.ignore_patterns("firmware", "model_data.*"))
    edgekit = f"{sys.executable} -m edgekit"
    subprocess.run(["make", "-C", str(work), f"MODEL={tiny.tflite_int8}", f"EDGEKIT={edgekit}", "firmware"],
                   check=True, capture_output=True, cwd=ROOT)
    assert (work / "model_data.h").is_file()
    out = subprocess.run([str(work / "firmware")], capture_output=True, text=True, check=True).stdout
    assert f"model: {tiny.tflite_int8.stat().st_size} bytes, identifier TFL3 at offset 4, 16-byte aligned" in out
    assert "labels (10): 0 1 2 3 4 5 6 7 8 9" in out
    header = (work / "model_data.h").read_text()
    if importlib.util.find_spec("tflite_micro") is not None:  # the arena is measured on TFLite Micro
        arena = int(re.search(r"#define MODEL_DATA_ARENA_BYTES (\d+)u", header).group(1))
        assert f"arena: {arena} bytes (measured on TFLite Micro)" in out
    else:
        assert "arena: 32768 bytes (NOT measured" in out
    assert "top class: 0" in out  # the STUB interpreter scores every class equally


def _classify_without_edgekit(model: Path, images: Path) -> list[dict]:
    """classify.py as on a device where edgekit is not installed (``import edgekit`` fails)."""
    code = ("import runpy, sys; sys.modules['edgekit'] = None; "
            f"sys.argv = ['classify.py', {str(model)!r}, {str(images)!r}, '--json']; "
            f"runpy.run_path({str(CLASSIFY)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("kind", ["tflite_int8", "onnx"])
@pytest.mark.slow
def test_python_iot_works_without_edgekit_installed(tiny: TinyModels, digit_pngs: Path, kind: str) -> None:
    """On a device with only the runtime, the metadata is read with LiteRT's schema or ONNX Runtime."""
    rows = _classify_without_edgekit(getattr(tiny, kind), digit_pngs)
    assert len(rows) == N_IMAGES and {r["label"] for r in rows} <= set(tiny.labels)


@pytest.mark.slow
def test_python_iot_reads_the_standard_metadata_alone(tiny: TinyModels, digit_pngs: Path, tmp_path: Path) -> None:
    """A .tflite with only TFLite Support's metadata (labels.txt zipped on, NormalizationOptions) classifies the
    same, with edgekit installed and without it."""
    model = standard_only_copy(tiny.tflite_int8, tmp_path / "standard_only.tflite")
    with_edgekit = _classify(str(model), str(digit_pngs))
    standalone = _classify_without_edgekit(model, digit_pngs)
    reference = _classify(str(tiny.tflite_int8), str(digit_pngs))
    assert [r["label"] for r in with_edgekit] == [r["label"] for r in standalone] == [r["label"] for r in reference]
