"""`edgekit inspect`: labels from the metadata and the int8 share of weights, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.models import TinyModels, assert_runs_without_tensorflow, tiny_models
from edgekit.cli import main


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("kind", ["onnx_int8", "tflite_int8"])
@pytest.mark.slow
def test_inspect_int8_model_prints_labels_and_int8_share(tiny: TinyModels, kind: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(getattr(tiny, kind)), "--layers"]) == 0
    out = capsys.readouterr().out
    assert "labels" in out and "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in out
    share_line = next(line for line in out.splitlines() if line.startswith("int8 share of weights"))
    share = float(share_line.split()[-2])
    assert share > 90.0
    assert next(line for line in out.splitlines() if line.startswith("precision (measured)")).split()[-1] == "int8"
    assert "MACs" in out and "76,872" in out


@pytest.mark.slow
def test_inspect_json(tiny: TinyModels, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tiny.tflite), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["format"] == "tflite" and audit["precision"] == "fp32" and audit["int8_share"] == 0.0
    assert audit["metadata"]["labels"] == list(tiny.labels)


@pytest.mark.slow
def test_inspect_keras(tiny: TinyModels, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tiny.keras)]) == 0
    out = capsys.readouterr().out
    assert "keras" in out and "none embedded" in out


def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.onnx: no such model file" in err
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    assert main(["inspect", str(odd)]) == 2
    assert "unknown model format" in capsys.readouterr().err


@pytest.mark.slow
def test_inspect_does_not_import_tensorflow(tiny: TinyModels) -> None:
    assert_runs_without_tensorflow(
        "import contextlib, io\nfrom edgekit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['inspect', {str(tiny.tflite_int8)!r}]) == 0\n"
        f"    assert main(['inspect', {str(tiny.onnx_int8)!r}, '--json']) == 0"
    )
