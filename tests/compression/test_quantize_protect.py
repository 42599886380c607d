"""ONNX mixed precision on a seeded random-weight compact model (no training): a Dense layer with a bias can be
kept in float (ORT's pre-processing renames it), and the 16-bit-activation route (``protect_with="int16"``)
gives its layers int8 weights and 16-bit activations while the thin-conv layout pass still restores the ReLU
clamps it needs. Speed and accuracy on a trained model: benchmarks/onnx_int16_protect.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from edgekit.compression.mixed import names_layer, onnx_layer_nodes, onnx_layer_precisions
from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The compact model's fp32 ONNX, with non-zero BatchNorm shifts and classifier bias (as after training)."""
    from edgekit.data.datasets import load_dataset
    from edgekit.export.convert import keras2onnx
    from tests.helpers.models import build_compact_cnn

    model = build_compact_cnn(seed=0)
    for layer in model.layers:
        weights = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization" or layer.name == "classifier":
            weights[1] = weights[1] + 0.1  # beta / bias
            layer.set_weights(weights)
    path = tmp_path_factory.mktemp("protect") / "compact.onnx"
    path.write_bytes(keras2onnx(model, (28, 28, 1)))
    return path, load_dataset("digits", train_limit=300, seed=0)


def _nodes(path: Path, layers: list[str]) -> list[str]:
    return sorted({n for names in onnx_layer_nodes(path, layers).values() for n in names})


def test_a_dense_layer_with_bias_can_be_kept_in_float(compact: tuple[Path, Any], tmp_path: Path) -> None:
    src, ds = compact
    dst = tmp_path / "q.onnx"
    # ORT fuses classifier/MatMul + classifier/BiasAdd into Gemm 'classifier/MatMul/MatMulAddFusion' first
    ort_quantize_static(src, dst, ds.x_train[:32], OrtQuantConfig(calibration_samples=32),
                        nodes_to_exclude=_nodes(src, ["classifier"]))
    assert onnx_layer_precisions(dst, ["classifier"]) == {"classifier": "float32"}


def test_int16_activations_with_int8_weights_for_the_named_layers(compact: tuple[Path, Any], tmp_path: Path) -> None:
    src, ds = compact
    x = ds.x_val[:200]
    dst = tmp_path / "q16.onnx"
    ort_quantize_static(src, dst, ds.x_train[:64], OrtQuantConfig(calibration_samples=64),
                        int16_nodes=_nodes(src, ["pw1", "classifier"]))
    got = onnx_layer_precisions(dst, ["pw1", "sep2", "classifier"])
    assert got["classifier"] == "int16x8" and got["sep2"] in ("int8", "mixed")
    # pw1 is a thin 1x1 conv (16 input channels): the layout pass runs it in float, and must then put back the
    # ReLU in front of it that quantize_static folded into a 16-bit QuantizeLinear (zero point -32768)
    graph = onnx.load(str(dst)).graph
    producers = {o: n for n in graph.node for o in n.output}
    pw1 = next(n for n in graph.node if n.op_type == "Conv" and names_layer(n.name, "pw1"))
    assert got["pw1"] == "float32" and producers[pw1.input[0]].op_type == "Clip"
    assert any(n.domain == "com.microsoft" and n.op_type == "QuantizeLinear" for n in graph.node)
    ref, out = _run(src, x), _run(dst, x)
    assert (ref.argmax(1) == out.argmax(1)).mean() >= 0.97 and np.abs(ref - out).max() < 0.05


def test_budgeted_int8_onnx_records_int16_protection(compact: tuple[Path, Any]) -> None:
    from edgekit.compression.mixed import budgeted_int8_onnx

    src, ds = compact
    names = ["stem", "dw1", "pw1", "sep2", "classifier"]
    analysis = {"layers": [{"name": n, "protected": n == "classifier", "int8_reason": "forced by the test" if
                            n == "classifier" else "", "quant": {"drop_pp": 0.0}} for n in names]}
    result = budgeted_int8_onnx(src, ds, analysis, reference_val_accuracy=0.0, budget_pp=100.0,
                                cfg=OrtQuantConfig(calibration_samples=32, protect_with="int16"))
    row = next(r for r in result.layers if r["name"] == "classifier")
    assert row["precision"] == "int16x8" and row["reason"].startswith("forced by the test")
    assert "16-bit activations" in row["reason"] and result.precision == "mixed"


def test_a_generically_named_conv_is_found_by_its_bias(tmp_path: Path) -> None:
    """tf2onnx names a DepthwiseConv2D with a bias 'Conv__N'; its bias keeps the layer's scope."""
    from edgekit._tf import keras, tf
    from edgekit.export.convert import keras2onnx

    tf().random.set_seed(0)
    k = keras()
    inp = k.layers.Input((28, 28, 1), name="input")
    x = k.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    model = k.Model(inp, k.layers.Dense(10, name="head")(k.layers.GlobalAveragePooling2D(name="gap")(x)), name="m")
    weights = model.get_layer("dw").get_weights()
    model.get_layer("dw").set_weights([weights[0], weights[1] + 0.1])
    path = tmp_path / "m.onnx"
    path.write_bytes(keras2onnx(model, (28, 28, 1)))
    nodes = onnx_layer_nodes(path, ["dw"])["dw"]
    graph = onnx.load(str(path)).graph
    assert any(n.op_type == "Conv" and n.name in nodes for n in graph.node)
    assert onnx_layer_precisions(path, ["conv", "dw", "head"]) == {"conv": "float32", "dw": "float32", "head": "float32"}
