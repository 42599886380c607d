"""The float classifier head of int8 files (``PtqInt8Config.float_head``): an int8 softmax output steps by 1/256, so
close calls tie and argmax flips the top-1 class; with the head in float the output keeps float resolution, in ONNX
Runtime (``float_head_outputs``) and in LiteRT (``keras2tflite_mixed(float_head=True)``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.compression.quantize import OrtQuantConfig, onnx_head_nodes, ort_quantize_static
from tests.compression.test_int8_layout import _cnn, _run


def _ties(scores: np.ndarray) -> int:
    top = np.sort(scores, axis=1)
    return int((top[:, -1] == top[:, -2]).sum())


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("head")
    src = _cnn(d / "fp32.onnx")
    calib = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    out = {"fp32": src}
    for name, head in (("int8-head", False), ("float-head", True)):
        ort_quantize_static(src, d / f"{name}.onnx", calib,
                            dataclasses.replace(OrtQuantConfig(calibration_samples=64), float_head=head))
        out[name] = d / f"{name}.onnx"
    return out


def test_the_onnx_head_is_found_in_float_and_qdq_graphs(onnx_files: dict[str, Path]) -> None:
    assert [n.op_type for n in onnx_head_nodes(onnx.load(onnx_files["fp32"]))] == ["Softmax", "Gemm"]
    assert [n.op_type for n in onnx_head_nodes(onnx.load(onnx_files["int8-head"]))] == ["Softmax", "Gemm"]


def test_a_float_onnx_head_never_ties_and_stays_fused(onnx_files: dict[str, Path], tmp_path: Path) -> None:
    x = np.random.default_rng(3).random((2000, 28, 28, 1), dtype=np.float32)
    fp32, int8_head, float_head = (_run(onnx_files[k], x) for k in ("fp32", "int8-head", "float-head"))
    assert len(np.unique(int8_head)) <= 256 < len(np.unique(float_head))  # an int8 output is on a 1/256 grid
    assert _ties(float_head) == 0
    agree = {k: float((v.argmax(1) == fp32.argmax(1)).mean()) for k, v in (("int8", int8_head), ("float", float_head))}
    assert agree["float"] >= agree["int8"]
    _run(onnx_files["float-head"], x[:2], tmp_path / "opt.onnx")
    ops = [n.op_type for n in onnx.load(tmp_path / "opt.onnx").graph.node]
    assert ops[-2:] == ["QGemm", "Softmax"] and "DequantizeLinear" not in ops  # int8 in, float out
    graph = onnx.load(onnx_files["float-head"]).graph
    weights = {i.name: i.data_type for i in graph.initializer}
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    dq = next(n for n in graph.node if n.output[0] == gemm.input[1])
    assert weights[dq.input[0]] == onnx.TensorProto.INT8  # the head's weights stay int8 on disk


def test_a_float_tflite_head_is_float_and_the_rest_int8() -> None:
    from edgekit.compression.mixed import keras2tflite_mixed, tflite_head_nodes, tflite_layer_precisions
    from edgekit.export.convert import keras2tflite
    from edgekit.export.tflite_reader import parse_tflite
    from edgekit.models.reference import build_reference_cnn

    model = build_reference_cnn()
    calib = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    graph = parse_tflite(keras2tflite(model)).subgraphs[0]
    assert [graph.operators[i].op for i in range(len(graph.operators))][-2:] == ["FULLY_CONNECTED", "SOFTMAX"]
    assert len(tflite_head_nodes(graph)) == 2 and "output" in tflite_head_nodes(graph)[1]
    data = keras2tflite_mixed(model, calib, [], float_head=True)
    got = tflite_layer_precisions(data, ["conv1", "conv2", "dense1", "output"])
    assert got == {"conv1": "int8", "conv2": "int8", "dense1": "int8", "output": "float32"}
    graph = parse_tflite(data).subgraphs[0]
    softmax = next(op for op in graph.operators if op.op == "SOFTMAX")
    assert graph.tensors[softmax.outputs[0]].dtype == "float32"
