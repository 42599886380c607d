"""QAT and PQAT through the real pipeline on ``digits``: int8 TFLite with learned ranges, then an ONNX
model with int8 weights (not float weights plus fake-quant), its accuracy next to its TFLite twin,
a dynamic batch axis, and PQAT keeping the pruned zeros in the int8 file."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgekit.audit import audit_model
from edgekit.config import CompressConfig
from edgekit.pipeline import compress

pytestmark = pytest.mark.slow  # every test here trains (compress runs with epochs ≥ 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    cfg = CompressConfig(dataset="digits", epochs=2, prune_epochs=1, sparsity=0.5, quantization=("qat", "pqat"),
                         calibration_samples=100, bench=False)
    return compress(cfg, tmp_path_factory.mktemp("qat") / "run")


def art(run, name: str) -> dict:
    return next(a for a in run.report["artifacts"] if a["name"] == name)


@pytest.mark.parametrize("mode", ["qat", "pqat"])
def test_qat_onnx_stores_int8_weights(run, mode: str) -> None:
    a = art(run, f"pruned-{mode}-onnx")
    assert a["stage"] == "export.onnx" and a["precision"] == "int8"
    model = onnx.load(str(run.out / a["path"]))
    inits = {i.name: i for i in model.graph.initializer}
    weights = [n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    kernels = [w for w in weights if len(inits[w].dims) >= 2]
    assert len(kernels) == 3  # conv2, dense1, output (conv1 stays float: ort_fast_qdq, 1 input channel)
    assert all(inits[w].data_type == onnx.TensorProto.INT8 for w in kernels)
    # no float tensor of kernel size left but the first conv's 32×1×3×3 kernel
    floats = [i for i in inits.values() if i.data_type == onnx.TensorProto.FLOAT and np.prod(i.dims) >= 256]
    assert [list(i.dims) for i in floats] == [[32, 1, 3, 3]]
    assert a["bytes"] <= 0.3 * art(run, "baseline-onnx")["bytes"], (a["bytes"], art(run, "baseline-onnx")["bytes"])
    # "mixed": the audit sees the float first conv; all but its 288 weights are int8
    assert a["audit"]["precision"] == "mixed" and a["audit"]["int8_share"] > 0.95


@pytest.mark.parametrize("mode", ["qat", "pqat"])
def test_qat_onnx_matches_its_tflite_twin(run, mode: str) -> None:
    onnx_a, tfl_a = art(run, f"pruned-{mode}-onnx"), art(run, f"pruned-{mode}-tflite")
    assert abs(onnx_a["accuracy"] - tfl_a["accuracy"]) * 100 <= 0.3, (onnx_a["accuracy"], tfl_a["accuracy"])
    assert tfl_a["accuracy"] > 0.6  # well above chance (10 classes)


def test_qat_onnx_has_a_dynamic_batch_axis(run) -> None:
    sess = ort.InferenceSession(str(run.out / art(run, "pruned-qat-onnx")["path"]), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == "input" and not isinstance(inp.shape[0], int)
    x = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    out32 = sess.run(None, {"input": x})[0]
    out1 = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(4)])
    assert out32.shape == (32, 10)
    np.testing.assert_allclose(out32[:4], out1, atol=1e-6)


def test_pqat_keeps_the_zeros_in_the_int8_file(run) -> None:
    parent = art(run, "pruned")
    assert parent["sparsity"] == pytest.approx(0.5, abs=0.02)
    for name in ("pruned-pqat-tflite", "pruned-pqat-onnx"):
        measured = audit_model(run.out / art(run, name)["path"])["sparsity"]
        assert measured >= parent["sparsity"] - 0.01, (name, measured)
    # plain QAT is free to move pruned weights: its stage reports what the file really holds
    qat = art(run, "pruned-qat-tflite")
    assert qat["metrics"]["sparsity"] == pytest.approx(audit_model(run.out / qat["path"])["sparsity"])
    assert art(run, "pruned-pqat-tflite")["metrics"]["sparse_encoding"] is False  # int8 weights: see convert.has_int8_weights
