"""A tiny ONNX classifier built with ``onnx.helper`` (no TensorFlow), for ``edgekit devices check``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SHAPE = (28, 28, 1)
CLASSES = 10


def write_tiny_onnx(path: Path, seed: int = 0) -> Path:
    """Write a Conv-Relu-MatMul-Softmax model taking NHWC float32 ``(N, 28, 28, 1)``; returns ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)
    dense_w = rng.normal(0, 0.05, (4 * 26 * 26, CLASSES)).astype(np.float32)
    inits = [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(dense_w, "dense_w"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w"], ["conv"]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Reshape", ["relu", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense_w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "edgekit_tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *INPUT_SHAPE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekit")
    model.ir_version = 8  # readable by older onnxruntime builds on boards
    onnx.checker.check_model(model)
    from edgekit.fsutil import write_bytes

    return write_bytes(path, model.SerializeToString())


def tiny_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random images in [0, 1] and random labels (accuracy on them means nothing; the run is what is checked)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, *INPUT_SHAPE), dtype=np.float32), rng.integers(0, CLASSES, n).astype(np.int64)
