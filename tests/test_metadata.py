"""Metadata embedded in .tflite and .onnx files: round trip, unchanged outputs, no TF needed to read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from _models import TinyModels, assert_runs_without_tensorflow, tiny_models
from edgekit.artifact import ModelMeta
from edgekit.errors import ExportError, ModelError
from edgekit.export.metadata import TFLITE_NAME, embed_metadata, read_metadata, read_metadata_dict
from edgekit.export.tflite_reader import read_tflite


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def _litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("kind", ["tflite", "onnx", "tflite_int8", "onnx_int8"])
def test_round_trip(tiny: TinyModels, kind: str) -> None:
    path = getattr(tiny, kind)
    meta = read_metadata(path)
    assert meta == ModelMeta(labels=tiny.labels, input_shape=(28, 28, 1), dataset="digits")
    doc = read_metadata_dict(path)
    assert doc is not None and doc["edgekit_version"] and doc["artifact_id"].startswith("test")


def test_model_without_metadata_reads_none(tiny: TinyModels) -> None:
    assert read_metadata(tiny.folder / "tiny_raw.tflite") is None
    assert read_metadata(tiny.folder / "tiny_raw.onnx") is None


def test_embedding_keeps_outputs_identical(tiny: TinyModels) -> None:
    x = tiny.x_test[:1]
    np.testing.assert_array_equal(_litert(tiny.folder / "tiny_raw.tflite", x), _litert(tiny.tflite, x))
    np.testing.assert_array_equal(_ort(tiny.folder / "tiny_raw.onnx", x), _ort(tiny.onnx, x))


def test_tflite_buffers_stay_16_byte_aligned(tiny: TinyModels) -> None:
    for path in (tiny.tflite, tiny.tflite_int8):
        model = read_tflite(path)
        assert TFLITE_NAME in model.metadata
        assert [start % 16 for start, n in model.buffer_spans if n] == [0] * sum(1 for _, n in model.buffer_spans if n)


def test_re_embedding_replaces_the_entry(tiny: TinyModels, tmp_path: Path) -> None:
    for src in (tiny.tflite, tiny.onnx):
        path = tmp_path / src.name
        shutil.copyfile(src, path)
        path.chmod(0o644)
        embed_metadata(path, ModelMeta(labels=("a", "b"), input_shape=(28, 28, 1)), artifact_id="second")
        assert read_metadata(path).labels == ("a", "b")
        assert read_metadata_dict(path)["artifact_id"] == "second"
        assert path.stat().st_mode & 0o777 == 0o644
    assert list(read_tflite(tmp_path / tiny.tflite.name).metadata).count(TFLITE_NAME) == 1
    assert len(read_tflite(tmp_path / tiny.tflite.name).buffer_spans) == len(read_tflite(tiny.tflite).buffer_spans)


def test_onnx_conventional_labels_key(tiny: TinyModels) -> None:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tiny.onnx)).metadata_props}
    assert props["labels"] == '["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'


def test_bad_files_fail_with_one_line(tmp_path: Path, tiny: TinyModels) -> None:
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="bogus.tflite: not a TFLite flatbuffer"):
        read_metadata(bogus)
    with pytest.raises(ModelError, match="bogus.tflite"):
        embed_metadata(bogus, ModelMeta(labels=("a",), input_shape=(1,)), "x")
    assert bogus.read_bytes() == b"not a model at all"
    with pytest.raises(ExportError, match="only be embedded"):
        embed_metadata(tiny.keras, ModelMeta(labels=("a",), input_shape=(1,)), "x")


def test_reading_does_not_import_tensorflow(tiny: TinyModels) -> None:
    assert_runs_without_tensorflow(
        f"from edgekit.export.metadata import read_metadata; assert read_metadata({str(tiny.tflite)!r}).labels; "
        f"assert read_metadata({str(tiny.onnx_int8)!r}).labels"
    )
