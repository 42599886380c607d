"""The QDQ layout pass (``ort_fast_qdq``) on a residual graph: shared activations, ``Add`` joins, a 1x1 projection.

A ResNet-style graph written with onnx.helper (as tf2onnx writes a Keras ResNet-8 stage: NHWC input transposed
to NCHW, BatchNorm already folded into the convolutions) is quantized by ``ort_quantize_static`` and run in
ONNX Runtime. A tensor read by a convolution and a residual ``Add`` gets two DequantizeLinear nodes in ORT,
which then left it int8 on x86 and ran both readers in float; the pass writes uint8 activations so every conv
and Add fuses. No TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compression.quantize import OrtQuantConfig, ort_fast_qdq, ort_quantize_static


def _resnet(path: Path) -> Path:
    """input (N, 16, 16, 3) → Transpose → stem Conv 3×3 (3→8) → ReLU → [Conv 3×3 → ReLU → Conv 3×3] + identity →
    Add → ReLU → [Conv 3×3 stride 2 (8→16) → ReLU → Conv 3×3] + 1×1 projection stride 2 → Add → ReLU →
    GlobalAveragePool → Flatten → Gemm → Softmax."""
    rng = np.random.default_rng(0)

    def conv_w(o: int, i: int, k: int) -> np.ndarray:
        return rng.normal(0, np.sqrt(2.0 / (i * k * k)), (o, i, k, k))

    w = {"ws": conv_w(8, 3, 3), "bs": rng.normal(0, 0.1, 8),
         "w1": conv_w(8, 8, 3), "b1": rng.normal(0, 0.1, 8), "w2": conv_w(8, 8, 3), "b2": rng.normal(0, 0.1, 8),
         "w3": conv_w(16, 8, 3), "b3": rng.normal(0, 0.1, 16), "w4": conv_w(16, 16, 3), "b4": rng.normal(0, 0.1, 16),
         "wp": conv_w(16, 8, 1), "bp": rng.normal(0, 0.1, 16),
         "wg": rng.normal(0, 0.3, (16, 10)), "bg": rng.normal(0, 0.1, 10)}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    same = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Transpose", ["input"], ["x"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x", "ws", "bs"], ["cs"], name="stem", **same),
        helper.make_node("Relu", ["cs"], ["rs"]),
        helper.make_node("Conv", ["rs", "w1", "b1"], ["c1"], name="s1_conv1", **same),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="s1_conv2", **same),
        helper.make_node("Add", ["rs", "c2"], ["a1"], name="s1_add"),
        helper.make_node("Relu", ["a1"], ["ra1"]),
        helper.make_node("Conv", ["ra1", "w3", "b3"], ["c3"], name="s2_conv1", strides=[2, 2], **same),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Conv", ["r3", "w4", "b4"], ["c4"], name="s2_conv2", **same),
        helper.make_node("Conv", ["ra1", "wp", "bp"], ["cp"], name="s2_proj", kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("Add", ["cp", "c4"], ["a2"], name="s2_add"),
        helper.make_node("Relu", ["a2"], ["ra2"]),
        helper.make_node("GlobalAveragePool", ["ra2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "resnet",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 16, 16, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("residual")
    src = _resnet(d / "fp32.onnx")
    calib = np.random.default_rng(1).random((64, 16, 16, 3), dtype=np.float32)
    out = {"fp32": src}
    for name, cfg in (("plain", OrtQuantConfig(float_thin_convs=False, calibration_samples=64)),
                      ("fast", OrtQuantConfig(calibration_samples=64))):
        ort_quantize_static(src, d / f"{name}.onnx", calib, cfg)
        out[name] = d / f"{name}.onnx"
    return out


def _optimized_ops(path: Path, tmp: Path) -> list[tuple[str, str]]:
    _session(path, tmp / f"opt-{path.stem}.onnx")
    return [(n.op_type, n.name) for n in onnx.load(tmp / f"opt-{path.stem}.onnx").graph.node]


def test_every_conv_and_add_after_the_stem_runs_int8(quantized: dict[str, Path], tmp_path: Path) -> None:
    ops = _optimized_ops(quantized["fast"], tmp_path)
    kinds = [op for op, _ in ops]
    assert kinds.count("QLinearConv") == 5  # s1_conv1/2, s2_conv1/2 and the 1x1 projection (thin, inside int8)
    assert kinds.count("QLinearAdd") == 2
    assert [name for op, name in ops if op == "Conv"] and all("stem" in name or "rs" in name
                                                              for op, name in ops if op == "Conv")  # the stem only
    assert "Add" not in kinds and kinds.count("QuantizeLinear") == 1 and "DequantizeLinear" not in kinds
    assert kinds[-2:] == ["QGemm", "Softmax"]  # the float head: int8 in, float out, a float softmax
    # quantize_static's own QDQ: the stem output (read by s1_conv1 and s1_add) stays int8 in ORT, so s1_conv1 and
    # s1_add ran as DequantizeLinear → float op → QuantizeLinear
    plain = [op for op, _ in _optimized_ops(quantized["plain"], tmp_path)]
    assert plain.count("QLinearConv") < 6 and "Add" in plain


def test_weights_stay_int8_and_activations_are_uint8(quantized: dict[str, Path]) -> None:
    graph = onnx.load(quantized["fast"]).graph
    types = {i.name: i.data_type for i in graph.initializer}
    inits = set(types)
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            assert types[node.input[2]] == TensorProto.UINT8
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            assert types[node.input[0]] in (TensorProto.INT8, TensorProto.INT32)  # weights, biases
    assert not any(ort_fast_qdq(onnx.load(quantized["fast"])).values())  # idempotent


def test_the_uint8_layout_keeps_the_values(quantized: dict[str, Path]) -> None:
    x = np.random.default_rng(3).random((256, 16, 16, 3), dtype=np.float32)
    fp32, plain, fast = (_session(quantized[k]).run(None, {"input": x})[0] for k in ("fp32", "plain", "fast"))
    # the same error as quantize_static's own graph (random weights: the top two logits are ~0.01 apart, so
    # int8 flips ~5 % of the images either way)
    assert np.abs(fast - fp32).mean() <= np.abs(plain - fp32).mean() * 1.1
    assert (fast.argmax(1) == fp32.argmax(1)).mean() >= (plain.argmax(1) == fp32.argmax(1)).mean() - 0.02
