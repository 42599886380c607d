"""The QDQ layout pass (``ort_fast_qdq``, on by default) on a compact depthwise-separable graph.

quantize_static removes the ReLU between a Conv and its QuantizeLinear (the Q clamps at zero); a thin
conv that the pass runs in float reads the tensor *before* that Q, so it must get the clamp back.
Without the clamp a depthwise or 1x1 conv after Conv-BN-ReLU reads negative values (measured: 12.8 %
validation accuracy on the compact model against 75.5 % with the pass off). No TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static


def _compact(path: Path) -> Path:
    """NHWC input → Conv 3×3 (1→8) → ReLU → depthwise 3×3 (group 8) → ReLU → Conv 1×1 (8→16) → ReLU →
    global average pool → Gemm → Softmax; biases below zero so the ReLUs matter."""
    rng = np.random.default_rng(0)
    w = {"w1": rng.normal(0, 0.6, (8, 1, 3, 3)), "b1": rng.normal(-0.2, 0.2, 8),
         "wd": rng.normal(0, 0.5, (8, 1, 3, 3)), "bd": rng.normal(-0.3, 0.2, 8),
         "wp": rng.normal(0, 0.5, (16, 8, 1, 1)), "bp": rng.normal(-0.1, 0.2, 16),
         "wg": rng.normal(0, 0.5, (16, 10)), "bg": rng.normal(0, 0.1, 10)}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [
        helper.make_node("Transpose", ["input"], ["x"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="stem"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8,
                         name="dw1"),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "wp", "bp"], ["c3"], kernel_shape=[1, 1], name="pw1"),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "compact", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 28, 28, 1])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_float_thin_convs_keep_the_removed_relus_on_a_depthwise_model(tmp_path: Path) -> None:
    src = _compact(tmp_path / "fp32.onnx")
    calib = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    ort_quantize_static(src, tmp_path / "plain.onnx", calib, OrtQuantConfig(float_thin_convs=False, calibration_samples=64))
    ort_quantize_static(src, tmp_path / "fast.onnx", calib, OrtQuantConfig(calibration_samples=64))
    floated = [n for n in onnx.load(tmp_path / "fast.onnx").graph.node if n.op_type == "Conv"]
    assert {n.name for n in floated} >= {"dw1", "pw1"}  # the depthwise and the thin 1×1 conv run in float
    x = np.random.default_rng(2).random((256, 28, 28, 1), dtype=np.float32)
    fp32, plain, fast = _run(src, x), _run(tmp_path / "plain.onnx", x), _run(tmp_path / "fast.onnx", x)
    # float layers are at least as close to fp32 as int8 ones (without the clamp: ~10× further)
    assert np.abs(fast - fp32).mean() <= np.abs(plain - fp32).mean() * 1.05
    assert (fast.argmax(1) == fp32.argmax(1)).mean() >= 0.95
