"""Short tensor and node names at export (edgekit.export.short_names through embed_metadata): the files get
smaller, run the same, keep their input/output names, and still say which Keras layer each tensor belongs to.

Fast tier: the untrained reference CNN (speed and names do not depend on the weights), converted to int8 TFLite and
int8 (QDQ) ONNX, run in real LiteRT and ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgekit.artifact import ModelMeta
from edgekit.compression.mixed import (
    onnx_layer_nodes,
    onnx_layer_precisions,
    tflite_layer_precisions,
)
from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static
from edgekit.export.convert import keras2onnx, keras2tflite
from edgekit.export.metadata import embed_metadata, read_metadata_dict
from edgekit.export.short_names import short_name
from edgekit.export.tflite_reader import parse_tflite

LAYERS = ["conv1", "conv2", "dense1", "output"]
META = ModelMeta(labels=tuple(str(i) for i in range(10)), input_shape=(28, 28, 1))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from edgekit.models.reference import build_reference_cnn

    d = tmp_path_factory.mktemp("short")
    model = build_reference_cnn()
    calib = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    (d / "int8.tflite").write_bytes(keras2tflite(model, quantization="int8", representative=calib))
    (d / "fp32.onnx").write_bytes(keras2onnx(model, (28, 28, 1)))
    ort_quantize_static(d / "fp32.onnx", d / "int8.onnx", calib, OrtQuantConfig(calibration_samples=16))
    return {"tflite": d / "int8.tflite", "onnx": d / "int8.onnx"}


def test_short_name_keeps_the_layer_scopes() -> None:
    fused = "reference_cnn/quant_dense1/MatMul;reference_cnn/quant_dense1/Relu;reference_cnn/quant_dense1/BiasAdd"
    assert short_name(fused, 7) == "m/quant_dense1/7"
    assert short_name("StatefulPartitionedCall/outer/backbone/relu1/Relu;outer/backbone/conv1/Conv2D", 3) == \
        "m/backbone/relu1/3;m/backbone/conv1/3"
    assert short_name("serving_default_input:0", 2) == "t2"
    assert short_name(short_name(fused, 7), 9) == "m/quant_dense1/9"  # shortening again keeps the layer


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    if path.suffix == ".onnx":
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return s.run(None, {s.get_inputs()[0].name: x})[0]
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for xi in x:
        it.set_tensor(i["index"], xi[None])
        it.invoke()
        out.append(it.get_tensor(o["index"])[0])
    return np.array(out)


def _io_names(path: Path) -> tuple[list[str], list[str]]:
    if path.suffix == ".onnx":
        g = onnx.load(str(path)).graph
        return [v.name for v in g.input], [v.name for v in g.output]
    g = parse_tflite(path.read_bytes()).subgraphs[0]
    names = {t.index: t.name for t in g.tensors}
    return [names[i] for i in g.inputs], [names[i] for i in g.outputs]


def _precisions(path: Path) -> dict[str, str]:
    return onnx_layer_precisions(path, LAYERS) if path.suffix == ".onnx" else \
        tflite_layer_precisions(path.read_bytes(), LAYERS)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_embedding_shortens_names_and_keeps_outputs_io_and_layers(files: dict[str, Path], tmp_path: Path,
                                                                 fmt: str) -> None:
    src = files[fmt]
    x = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    before, io_before, prec_before = _outputs(src, x), _io_names(src), _precisions(src)
    assert set(prec_before) == set(LAYERS)
    raw = src.stat().st_size
    short = tmp_path / f"short{src.suffix}"
    short.write_bytes(src.read_bytes())
    embed_metadata(short, META, "a1")
    doc = read_metadata_dict(short)
    assert doc is not None and doc["short_names"]["scopes"] == ["reference_cnn"]
    saved = doc["short_names"]["bytes_saved"]
    assert saved > (2000 if fmt == "onnx" else 300), saved
    np.testing.assert_array_equal(_outputs(short, x), before)  # the same arithmetic
    assert _io_names(short) == io_before  # runtimes feed and fetch by these names
    assert _precisions(short) == prec_before  # names_layer still finds every layer
    if fmt == "onnx":
        assert all(onnx_layer_nodes(short, LAYERS).values())
        names = [n.name for n in onnx.load(str(short)).graph.node]
        assert max(map(len, names)) < 40, names
    else:
        g = parse_tflite(short.read_bytes()).subgraphs[0]
        assert max(len(t.name) for t in g.tensors) < 40 or any(len(n) >= 40 for n in _io_names(short)[0])
    assert short.stat().st_size < raw + 4096  # metadata added, names removed
    embed_metadata(short, META, "a2")  # a second embed (a re-export) keeps the layers and the original scope
    assert _precisions(short) == prec_before
    assert read_metadata_dict(short)["short_names"]["scopes"] == ["reference_cnn"]
