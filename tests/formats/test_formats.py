"""Formats: the registry, and damaged or empty model files refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers.models import TinyModels, tiny_models

from edgekit.artifact import SUFFIXES
from edgekit.bench.tiny import write_tiny_onnx
from edgekit.cli import main
from edgekit.errors import ConfigError
from edgekit.formats import FORMATS, deployable_formats, format_of, runtime_formats, spec
from edgekit.targets import RUNTIME_FORMATS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def test_registry_recognises_files_and_folders(tmp_path: Path) -> None:
    assert format_of("m.onnx") == "onnx" and format_of("m.tflite") == "tflite"
    assert format_of("m.h5") == format_of("m.keras") == format_of(tmp_path) == "keras"
    with pytest.raises(ConfigError, match="unknown model format"):
        format_of(tmp_path / "m.pt")
    assert set(deployable_formats()) == {"onnx", "tflite"} and not spec("keras").deployable
    assert runtime_formats() == RUNTIME_FORMATS == {"onnxruntime": "onnx", "litert": "tflite"}
    assert SUFFIXES == {name: s.suffixes[0] for name, s in FORMATS.items()}
    for s in FORMATS.values():  # every declared handler exists and has the hooks
        h = s.handler()
        assert callable(h.audit) and callable(h.embed_metadata) and callable(h.read_metadata_dict)


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("command", [["inspect"], ["bench", "--dataset", "digits"]])
def test_empty_onnx_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    argv = [command[0], str(empty), *command[1:]] + (["--out", str(tmp_path / "run")] if command[0] == "bench" else [])
    _one_line_exit_2(argv, capsys, "empty.onnx: empty file")
    assert not (tmp_path / "run").exists()


def test_bytes_that_parse_as_an_empty_onnx_model_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hollow-proto.onnx"
    path.write_bytes(b"\x08\x07")  # field 1 (ir_version) = 7: a valid ModelProto without a graph
    _one_line_exit_2(["inspect", str(path)], capsys, "hollow-proto.onnx: not an ONNX model")


def test_onnx_initializer_with_dims_but_no_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    model = onnx.load(str(write_tiny_onnx(tmp_path / "tiny.onnx")))
    w = next(t for t in model.graph.initializer if t.name == "conv_w")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    path = tmp_path / "hollow.onnx"
    path.write_bytes(model.SerializeToString())
    _one_line_exit_2(["inspect", str(path)], capsys, "hollow.onnx: damaged or unsupported onnx file")


def _mutants(data: bytes, n: int, seed: int) -> list[bytes]:
    """``n`` copies of ``data`` with a few bytes overwritten (seeded) or the tail cut off."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = bytearray(data)
        if i % 5 == 4:
            out.append(bytes(b[: int(rng.integers(1, len(b)))]))
            continue
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 8))):
            b[int(pos)] = int(rng.integers(0, 256))
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("kind", ["onnx", "tflite", "onnx_int8", "tflite_int8"])
@pytest.mark.slow
def test_byte_mutated_files_never_crash_inspect(tiny: TinyModels, tmp_path: Path, kind: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src: Path = getattr(tiny, kind)
    for i, data in enumerate(_mutants(src.read_bytes(), 40, seed=len(kind))):
        path = tmp_path / f"m{i}{src.suffix}"
        path.write_bytes(data)
        rc = main(["inspect", str(path), "--json"])
        captured = capsys.readouterr()
        assert rc in (0, 2), (i, captured.err)
        if rc == 2:
            err = captured.err.strip()
            assert len(err.splitlines()) == 1 and path.name in err and "Traceback" not in err, err
