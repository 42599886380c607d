"""The audit reports what a model file really stores: precision, sparsity, MACs."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.models import TinyModels, assert_runs_without_tensorflow, tiny_models
from edgekit.audit import audit_model, gzip_bytes
from edgekit.errors import ModelError

# the tiny CNN: conv 3x3x8 on 28x28, depthwise 3x3 on 13x13x8, conv 1x1 8->16 on 11x11, dense 400->10
EXPECTED_MACS = 26 * 26 * 8 * 9 + 11 * 11 * 8 * 9 + 11 * 11 * 16 * 8 + 5 * 5 * 16 * 10
KERNEL_PARAMS = 72 + 72 + 128 + 4000


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("kind", ["keras", "tflite", "onnx", "tflite_int8", "onnx_int8"])
@pytest.mark.slow
def test_macs_and_kernels_agree_across_formats(tiny: TinyModels, kind: str) -> None:
    a = audit_model(getattr(tiny, kind))
    assert a["macs"] == EXPECTED_MACS
    assert a["kernel_params"] == KERNEL_PARAMS
    assert len(a["layers"]) == 4
    assert a["inputs"][0]["shape"][1:] == [28, 28, 1] and a["outputs"][0]["shape"][-1] == 10
    assert a["bytes"] > a["gzip_bytes"] > 0


@pytest.mark.parametrize("kind", ["tflite_int8", "onnx_int8"])
@pytest.mark.slow
def test_int8_models_store_int8_weights(tiny: TinyModels, kind: str) -> None:
    a = audit_model(getattr(tiny, kind))
    assert a["precision"] == "int8"
    assert {layer["weight_dtype"] for layer in a["layers"]} == {"int8"}
    assert a["int8_share"] > 0.9
    assert a["params"]["by_dtype"]["int8"]["count"] >= KERNEL_PARAMS
    assert a["metadata"]["labels"] == list(tiny.labels)


@pytest.mark.slow
def test_a_float_model_named_int8_is_reported_as_float(tiny: TinyModels, tmp_path: Path) -> None:
    liar = tmp_path / "model_int8.tflite"
    shutil.copyfile(tiny.tflite, liar)
    a = audit_model(liar)
    assert a["precision"] == "fp32" and a["int8_share"] == 0.0
    assert a["ops"]["CONV_2D"] == 2 and a["ops"]["FULLY_CONNECTED"] == 1


@pytest.mark.slow
def test_onnx_sparsity_is_measured_in_the_file(tiny: TinyModels, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny.onnx))
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.size == 4000:  # the dense kernel: zero 3 of every 4 weights
            w = w.copy().reshape(-1)
            w[np.arange(w.size) % 4 != 0] = 0
            init.CopyFrom(numpy_helper.from_array(w.reshape(numpy_helper.to_array(init).shape), init.name))
    path = tmp_path / "sparse.onnx"
    onnx.save(model, str(path))
    a = audit_model(path)
    dense = next(layer for layer in a["layers"] if layer["params"] == 4000)
    assert dense["zeros"] == 3000 and dense["sparsity"] == 0.75
    assert a["sparsity"] == pytest.approx(3000 / KERNEL_PARAMS, abs=1e-5)


@pytest.mark.slow
def test_tflite_sparse_tensors_count_stored_values(tiny: TinyModels, tmp_path: Path) -> None:
    from edgekit._tf import keras, tf

    model = keras().models.load_model(tiny.keras)
    for layer in model.layers:
        if layer.weights:
            w = layer.get_weights()
            w[0][np.random.default_rng(0).random(w[0].shape) < 0.9] = 0
            layer.set_weights(w)
    conv = tf().lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf().lite.Optimize.EXPERIMENTAL_SPARSITY]
    path = tmp_path / "sparse.tflite"
    path.write_bytes(conv.convert())
    a = audit_model(path)
    expected_zeros = sum(int(np.count_nonzero(layer.get_weights()[0] == 0)) for layer in model.layers if layer.weights)
    assert a["ops"].get("DENSIFY", 0) >= 1
    assert any(layer["sparse_encoding"] for layer in a["layers"])
    assert a["kernel_zeros"] == expected_zeros
    assert a["params"]["total"] < KERNEL_PARAMS / 2  # only the stored values are counted
    dense = next(layer for layer in a["layers"] if layer["op"] == "FULLY_CONNECTED")
    assert dense["params"] == 4000 and dense["stored_elements"] < 1000


@pytest.mark.slow
def test_gzip_bytes_matches_gzip(tiny: TinyModels) -> None:
    data = tiny.tflite.read_bytes()
    assert abs(gzip_bytes(tiny.tflite) - len(gzip.compress(data, 9, mtime=0))) < 64


def test_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        audit_model(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="bad.onnx: not a readable ONNX model"):
        audit_model(bad)


@pytest.mark.slow
def test_audit_of_onnx_and_tflite_does_not_import_tensorflow(tiny: TinyModels) -> None:
    assert_runs_without_tensorflow(
        f"from edgekit.audit import audit_model; audit_model({str(tiny.onnx_int8)!r}); audit_model({str(tiny.tflite_int8)!r})"
    )


@pytest.mark.slow
def test_float16_and_dynamic_quantized_models(tiny: TinyModels, tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgekit._tf import keras, tf

    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(keras().models.load_model(tiny.keras))
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [t.float16]
    fp16 = tmp_path / "fp16.tflite"
    fp16.write_bytes(conv.convert())
    a = audit_model(fp16)
    assert a["precision"] == "fp16" and a["params"]["by_dtype"]["float16"]["count"] >= KERNEL_PARAMS
    assert a["macs"] == EXPECTED_MACS  # kernels traced through DEQUANTIZE

    dyn = tmp_path / "dynamic.onnx"
    quantize_dynamic(str(tiny.onnx), str(dyn), weight_type=QuantType.QInt8)
    a = audit_model(dyn)
    assert {layer["op"] for layer in a["layers"]} == {"ConvInteger", "MatMulInteger"}
    assert a["precision"] == "int8" and a["macs"] == EXPECTED_MACS
