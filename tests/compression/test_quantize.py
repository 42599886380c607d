"""Every PTQ mode: TFLite dynamic range, float16, full int8 with float or int8 I/O (through the pipeline),
and ONNX Runtime static QDQ with minmax/entropy/percentile calibration, per-channel and reduce_range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekit.audit import audit_model
from edgekit.compression import quantize as q
from edgekit.compression.quantize import OrtQuantConfig, ort_quantize_static
from edgekit.config import CompressConfig
from edgekit.evaluate import predict_file
from edgekit.pipeline import compress
from tests.helpers.models import TinyModels, tiny_models

pytestmark = pytest.mark.slow  # every test here trains (compress runs with epochs ≥ 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    # what each mode makes, not the budget: on digits' 144 validation images one lost image already has a 1.8 pp
    # upper bound, so a 1 pp budget would protect layers (tests/e2e/test_closed_loop.py covers that)
    cfg = CompressConfig(dataset="digits", epochs=2, prune_epochs=1, sparsity=0.6, calibration_samples=100,
                         quantization=("ptq-int8", "ptq-float16", "ptq-dynamic"), bench=False, max_accuracy_drop=5.0)
    return compress(cfg, tmp_path_factory.mktemp("ptq") / "run")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def art(run, name: str) -> dict:
    return next(a for a in run.report["artifacts"] if a["name"] == name)


@pytest.mark.parametrize("name, precision, stage", [
    ("pruned-int8-tflite", "mixed", "quantize.ptq_int8"),  # the classifier head runs in float (float_head)
    ("pruned-int8-onnx", "mixed", "quantize.ptq_int8"),  # the thin first conv runs in float (ORT layout pass)
    ("pruned-float16-tflite", "fp16", "quantize.ptq_float16"),
    ("pruned-dynamic-tflite", "mixed", "quantize.ptq_dynamic"),
])
def test_ptq_modes_are_what_they_say(run, name: str, precision: str, stage: str) -> None:
    a = art(run, name)
    assert a["stage"] == stage and a["precision"] == precision
    audit = a["audit"]
    kernel_dtypes = {layer["weight_dtype"] for layer in audit["layers"]}
    # dynamic range leaves kernels under 1,024 weights (conv1: 288) in float32: really mixed
    expected = {"int8": {"int8"}, "fp16": {"float16"}, "mixed": {"int8", "float32"}}[precision]
    assert kernel_dtypes == expected, (name, kernel_dtypes)
    assert audit["precision"] == precision
    assert a["verification"]["status"] == "ok" and a["verification"]["top1_agreement"] >= 0.97, a["verification"]


def test_dynamic_range_keeps_float_activations(run) -> None:
    ops = art(run, "pruned-dynamic-tflite")["audit"]["ops"]
    assert "QUANTIZE" not in ops  # int8 weights, activations stay float (hybrid kernels)
    io = art(run, "pruned-dynamic-tflite")["audit"]["inputs"][0]
    assert io["dtype"] == "float32"


def test_sparse_encoding_decisions_are_recorded(run) -> None:
    fp32, fp16 = art(run, "pruned-tflite"), art(run, "pruned-float16-tflite")
    for a in (fp32, fp16):
        assert a["metrics"]["sparse_encoding"] is True and a["bytes"] < a["metrics"]["dense_bytes"]
        assert a["verification"]["status"] == "ok"
    assert fp32["verification"]["max_abs_diff"] <= 1e-4
    for name in ("pruned-int8-tflite", "pruned-dynamic-tflite"):
        m = art(run, name)["metrics"]
        assert m["sparse_encoding"] is False and "XNNPACK" in m["sparse_encoding_reason"]
    assert art(run, "baseline-tflite")["metrics"]["sparse_encoding"] is False  # dense model


def test_int8_io(run, tmp_path: Path) -> None:
    from edgekit.export.convert import keras2tflite
    from edgekit.models.files import load_keras_file

    ds = run.report["dataset"]
    assert ds["name"] == "digits"
    from edgekit.data.datasets import load_dataset

    data = load_dataset("digits")
    model = load_keras_file(run.out / art(run, "pruned")["path"])
    path = tmp_path / "io.tflite"
    path.write_bytes(keras2tflite(model, quantization="int8", representative=data.calibration(100), int8_io=True))
    audit = audit_model(path)
    assert audit["inputs"][0]["dtype"] == "int8" and audit["outputs"][0]["dtype"] == "int8"
    scores = predict_file(str(path), "tflite", data.x_test)  # the session quantizes/dequantizes I/O
    float_io = art(run, "pruned-int8-tflite")["accuracy"]
    assert abs((scores.argmax(1) == data.y_test).mean() - float_io) <= 0.01


def _weights(path: Path) -> dict[str, np.ndarray]:
    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    return {n.input[0]: numpy_helper.to_array(inits[n.input[0]]) for n in m.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) >= 2}


def _scales(path: Path) -> list[np.ndarray]:
    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    return [numpy_helper.to_array(inits[n.input[1]]) for n in m.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) >= 2]


def _quantize(tiny: TinyModels, tmp_path: Path, **kw) -> tuple[Path, float]:  # noqa: ANN003
    dst = tmp_path / f"q-{'-'.join(f'{k}{v}' for k, v in kw.items())}.onnx"
    ort_quantize_static(tiny.folder / "tiny_raw.onnx", dst, tiny.x_calib, OrtQuantConfig(**kw))
    ref = predict_file(str(tiny.folder / "tiny_raw.onnx"), "onnx", tiny.x_test).argmax(1)
    agreement = float((predict_file(str(dst), "onnx", tiny.x_test).argmax(1) == ref).mean())
    return dst, agreement


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_ort_calibration_methods(tiny: TinyModels, tmp_path: Path, calibration: str) -> None:
    dst, agreement = _quantize(tiny, tmp_path, calibration=calibration)
    assert agreement >= 0.9, agreement
    assert all(w.dtype == np.int8 for w in _weights(dst).values())


def test_per_channel_and_reduce_range(tiny: TinyModels, tmp_path: Path) -> None:
    per_tensor, _ = _quantize(tiny, tmp_path, per_channel=False)
    per_channel, _ = _quantize(tiny, tmp_path, per_channel=True)
    assert all(s.size == 1 for s in _scales(per_tensor))
    assert any(s.size > 1 for s in _scales(per_channel))
    reduced, agreement = _quantize(tiny, tmp_path, reduce_range=True)
    assert agreement >= 0.9
    w_full = np.concatenate([w.ravel() for w in _weights(per_channel).values()])
    w_red = np.concatenate([w.ravel() for w in _weights(reduced).values()])
    assert np.abs(w_full).max() > 64 and np.abs(w_red).max() <= 64  # 7-bit weights


def test_histogram_calibration_is_capped(tiny: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(q, "HISTOGRAM_MAX_SAMPLES", 16)
    src = tiny.folder / "tiny_raw.onnx"
    assert ort_quantize_static(src, tmp_path / "e.onnx", tiny.x_calib, OrtQuantConfig(calibration="entropy")) == 16
    assert ort_quantize_static(src, tmp_path / "m.onnx", tiny.x_calib, OrtQuantConfig()) == len(tiny.x_calib)
