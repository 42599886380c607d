"""The QDQ layout pass for ONNX Runtime (``ort_fast_qdq``) and QAT ReLU ranges (``relu_ranges_from_zero``).

A small NHWC CNN written with onnx.helper (as tf2onnx writes the reference CNN: Reshape to NCHW,
Conv → Relu → MaxPool twice, Transpose back, Flatten, Gemm, Softmax) is quantized by
``ort_quantize_static`` and run in ONNX Runtime. No TensorFlow except the last test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compression.quantize import OrtQuantConfig, ort_fast_qdq, ort_quantize_static


def _cnn(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = {
        "w1": rng.normal(0, 0.5, (8, 1, 3, 3)), "b1": rng.normal(0, 0.1, 8),
        "w2": rng.normal(0, 0.2, (16, 8, 3, 3)), "b2": rng.normal(0, 0.1, 16),
        "wd": rng.normal(0, 0.1, (400, 10)), "bd": rng.normal(0, 0.1, 10),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    inits += [numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "nchw"),
              numpy_helper.from_array(np.array([-1, 400], np.int64), "flat")]
    nodes = [
        helper.make_node("Reshape", ["input", "nchw"], ["x"]),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["p2"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "wd", "bd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 28, 28, 1])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _run(path: Path, x: np.ndarray, optimized: Path | None = None) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("layout")
    src = _cnn(d / "fp32.onnx")
    calib = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    out = {"fp32": src}
    for name, cfg in (("before", OrtQuantConfig(float_thin_convs=False, calibration_samples=64)),
                      ("after", OrtQuantConfig(calibration_samples=64))):
        ort_quantize_static(src, d / f"{name}.onnx", calib, cfg)
        out[name] = d / f"{name}.onnx"
    return out


def test_first_conv_and_pool_run_in_float_and_the_rest_in_int8(quantized: dict[str, Path], tmp_path: Path) -> None:
    x = np.random.default_rng(2).random((4, 28, 28, 1), dtype=np.float32)
    _run(quantized["after"], x, tmp_path / "opt.onnx")
    ops = [(n.op_type, n.domain) for n in onnx.load(tmp_path / "opt.onnx").graph.node]
    assert ops.count(("QLinearConv", "com.microsoft")) == 1  # only the second conv is int8
    types = [op for op, _ in ops]
    # pool 1 runs in float before the first QuantizeLinear (ORT did not pull the Q in front of it,
    # which would make it a slow int8 NCHW MaxPool); pool 2 runs as ORT's int8 NHWC MaxPool
    assert types.index("MaxPool") < types.index("QuantizeLinear")
    assert ("NhwcMaxPool", "com.microsoft") in ops and ("QGemm", "com.microsoft") in ops
    _run(quantized["before"], x, tmp_path / "opt-before.onnx")
    before_ops = [n.op_type for n in onnx.load(tmp_path / "opt-before.onnx").graph.node]
    assert before_ops.count("QLinearConv") == 2


def test_the_layout_keeps_the_values(quantized: dict[str, Path]) -> None:
    x = np.random.default_rng(3).random((256, 28, 28, 1), dtype=np.float32)
    fp32, before, after = (_run(quantized[k], x) for k in ("fp32", "before", "after"))
    # a float first layer is at least as close to fp32 as an int8 one
    assert np.abs(after - fp32).mean() <= np.abs(before - fp32).mean() * 1.05
    assert (after.argmax(1) == fp32.argmax(1)).mean() >= 0.95


def test_the_pass_is_idempotent(quantized: dict[str, Path]) -> None:
    model = onnx.load(quantized["after"])
    assert not any(ort_fast_qdq(model).values())


def test_qat_relu_ranges_start_at_zero() -> None:
    from edgekit.compression.quantize import relu_ranges_from_zero
    from edgekit.models.reference import build_reference_cnn
    from edgekit.stages.qat import qat_model

    q = qat_model(build_reference_cnn(), preserve_sparsity=False)
    mins = {v.name: float(np.min(v.numpy())) for layer in q.layers for v in layer.weights
            if "post_activation_min" in v.name}
    assert mins and all(m < 0 for m in mins.values())  # TFMOT starts them at -6
    assert relu_ranges_from_zero(q) == len(mins)  # conv1, conv2, dense1: all ReLU
    assert all(float(np.min(v.numpy())) == 0.0 for layer in q.layers for v in layer.weights
               if "post_activation_min" in v.name)
    assert relu_ranges_from_zero(q) == 0
