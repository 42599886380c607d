"""Metadata embedded in .tflite and .onnx files: round trip, unchanged outputs, no TF needed to read."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.mcu_models import McuModels, mcu_models, standard_only_copy
from tests.helpers.models import TinyModels, assert_runs_without_tensorflow, tiny_models
from tests.helpers.tflite_support import TfliteSupportMissing, ensure_venv
from edgekit.artifact import ModelMeta
from edgekit.errors import ExportError, ModelError
from edgekit.export.metadata import TFLITE_NAME, embed_metadata, read_metadata, read_metadata_dict
from edgekit.export.tflite_metadata import LABEL_FILE, METADATA_NAME, packed_files, read_standard_metadata
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
@pytest.mark.slow
def test_round_trip(tiny: TinyModels, kind: str) -> None:
    path = getattr(tiny, kind)
    meta = read_metadata(path)
    assert meta == ModelMeta(labels=tiny.labels, input_shape=(28, 28, 1), dataset="digits")
    doc = read_metadata_dict(path)
    assert doc is not None and doc["edgekit_version"] and doc["artifact_id"].startswith("test")


@pytest.mark.slow
def test_model_without_metadata_reads_none(tiny: TinyModels) -> None:
    assert read_metadata(tiny.folder / "tiny_raw.tflite") is None
    assert read_metadata(tiny.folder / "tiny_raw.onnx") is None


@pytest.mark.slow
def test_embedding_keeps_outputs_identical(tiny: TinyModels) -> None:
    x = tiny.x_test[:1]
    np.testing.assert_array_equal(_litert(tiny.folder / "tiny_raw.tflite", x), _litert(tiny.tflite, x))
    np.testing.assert_array_equal(_ort(tiny.folder / "tiny_raw.onnx", x), _ort(tiny.onnx, x))


@pytest.mark.slow
def test_tflite_buffers_stay_16_byte_aligned(tiny: TinyModels) -> None:
    for path in (tiny.tflite, tiny.tflite_int8):
        model = read_tflite(path)
        assert TFLITE_NAME in model.metadata
        assert [start % 16 for start, n in model.buffer_spans if n] == [0] * sum(1 for _, n in model.buffer_spans if n)


@pytest.mark.slow
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


@pytest.mark.slow
def test_onnx_conventional_labels_key(tiny: TinyModels) -> None:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tiny.onnx)).metadata_props}
    assert props["labels"] == '["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'


@pytest.mark.slow
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


@pytest.mark.slow
def test_reading_does_not_import_tensorflow(tiny: TinyModels) -> None:
    assert_runs_without_tensorflow(
        f"from edgekit.export.metadata import read_metadata; assert read_metadata({str(tiny.tflite)!r}).labels; "
        f"assert read_metadata({str(tiny.onnx_int8)!r}).labels"
    )


# --------------------------------------------------------------------------- standard TFLite metadata
# (TFLite Support's ModelMetadata under TFLITE_METADATA, labels.txt packed onto the model)

@pytest.fixture(scope="session")
def mcu(tmp_path_factory: pytest.TempPathFactory) -> McuModels:
    return mcu_models(tmp_path_factory.getbasetemp())


def _legacy(src: Path, dst: Path) -> Path:
    """A file as edgekit wrote it before the standard form: only the ``edgekit_metadata`` JSON entry."""
    from edgekit.export.metadata import _tflite_with_metadata, metadata_document

    doc = json.dumps(metadata_document(ModelMeta(labels=("a", "b", "c"), input_shape=(28, 28, 1), mean=0.5, std=0.25),
                                       "old00001")).encode()
    dst.write_bytes(_tflite_with_metadata(src.read_bytes(), {TFLITE_NAME: doc}, str(src)))
    return dst


def test_standard_metadata_is_written(mcu: McuModels) -> None:
    model = read_tflite(mcu.int8)
    assert METADATA_NAME in model.metadata and TFLITE_NAME in model.metadata
    std = read_standard_metadata(model)
    assert std is not None and std.min_parser_version == "1.0.0"
    assert (std.mean, std.std, std.color) == ((0.0,), (255.0,), "grayscale")  # pixel / 255 as (pixel - 0) / 255
    assert std.label_file == LABEL_FILE and std.labels == mcu.labels and std.packed_files == (LABEL_FILE,)
    assert packed_files(mcu.int8.read_bytes())[LABEL_FILE] == b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"
    assert read_metadata_dict(mcu.int8)["tflite_metadata"]["label_file"] == LABEL_FILE


def test_packed_model_runs_unchanged(mcu: McuModels) -> None:
    x = mcu.x[:4]
    for i in range(len(x)):
        np.testing.assert_array_equal(_litert(mcu.int8_raw, x[i:i + 1]), _litert(mcu.int8, x[i:i + 1]))


def test_standard_form_alone_is_read(mcu: McuModels, tmp_path: Path) -> None:
    path = standard_only_copy(mcu.int8, tmp_path / "standard_only.tflite")
    assert TFLITE_NAME not in read_tflite(path).metadata
    meta = read_metadata(path)
    assert meta == ModelMeta(labels=mcu.labels, input_shape=(28, 28, 1))


def test_older_edgekit_files_still_read(mcu: McuModels, tmp_path: Path) -> None:
    path = _legacy(mcu.int8_raw, tmp_path / "old.tflite")
    assert METADATA_NAME not in read_tflite(path).metadata
    meta = read_metadata(path)
    assert meta.labels == ("a", "b", "c") and (meta.mean, meta.std) == (0.5, 0.25)
    assert read_metadata_dict(path)["artifact_id"] == "old00001"


def test_re_embedding_keeps_one_standard_entry_and_one_zip(mcu: McuModels, tmp_path: Path) -> None:
    path = tmp_path / "again.tflite"
    shutil.copyfile(mcu.int8, path)
    embed_metadata(path, ModelMeta(labels=tuple("abcdefghij"), input_shape=(28, 28, 1), mean=0.5, std=0.5), "again")
    size = path.stat().st_size
    embed_metadata(path, ModelMeta(labels=tuple("abcdefghij"), input_shape=(28, 28, 1), mean=0.5, std=0.5), "again")
    assert path.stat().st_size == size
    assert list(read_tflite(path).metadata).count(METADATA_NAME) == 1
    std = read_standard_metadata(read_tflite(path))
    assert std.labels == tuple("abcdefghij") and (std.mean, std.std) == ((127.5,), (127.5,))
    assert read_metadata(path).labels == tuple("abcdefghij")


def _tflite_support_python() -> Path:
    """TFLite Support's python (its environment is made by CI's set-up, or here on first use); fails, never skips."""
    try:
        return ensure_venv()
    except TfliteSupportMissing as e:
        missing = str(e)
    pytest.fail(missing, pytrace=False)


DISPLAY = """
import json, sys
from tflite_support import metadata
d = metadata.MetadataDisplayer.with_model_file(sys.argv[1])
doc = json.loads(d.get_metadata_json())
files = d.get_packed_associated_file_list()
labels = d.get_associated_file_buffer("labels.txt").decode().split()
print(json.dumps({"doc": doc, "files": files, "labels": labels}))
"""


def _display(path: Path) -> dict:
    python = _tflite_support_python()
    proc = subprocess.run([str(python), "-c", DISPLAY, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _assert_displayed(shown: dict, labels: tuple[str, ...]) -> None:
    assert shown["labels"] == list(labels) and shown["files"] == [LABEL_FILE]
    doc = shown["doc"]
    assert doc["min_parser_version"] == "1.0.0"
    (graph,) = doc["subgraph_metadata"]
    (image,) = graph["input_tensor_metadata"]
    assert image["content"]["content_properties_type"] == "ImageProperties"
    assert image["content"]["content_properties"]["color_space"] == "GRAYSCALE"
    (unit,) = image["process_units"]
    assert unit["options_type"] == "NormalizationOptions"
    assert unit["options"] == {"mean": [0.0], "std": [255.0]}
    (scores,) = graph["output_tensor_metadata"]
    assert scores["associated_files"][0] == {
        "name": LABEL_FILE, "description": "Labels for the classes the model can recognize, one per line.",
        "type": "TENSOR_AXIS_LABELS"}


def test_tflite_support_displayer_reads_an_edgekit_int8_model(mcu: McuModels) -> None:
    _assert_displayed(_display(mcu.int8), mcu.labels)


@pytest.mark.slow
def test_tflite_support_displayer_reads_a_trained_int8_model(tiny: TinyModels) -> None:
    _assert_displayed(_display(tiny.tflite_int8), tiny.labels)
