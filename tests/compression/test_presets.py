"""The ONNX Runtime quantization presets: each one runs, and each holds the setting its comment promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.helpers.models import TinyModels, tiny_models
from edgekit.compression.presets import PRESETS
from edgekit.compression.quantize import ort_quantize_static
from edgekit.config import CompressConfig
from edgekit.errors import UsageError
from edgekit.evaluate import predict_file


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def _qdq_arithmetic(path: Path, x: np.ndarray) -> np.ndarray:
    """Scores of a QDQ file as its QDQ nodes define them (ORT's graph optimizations off: DequantizeLinear → float
    op), the arithmetic of the hardware a preset is for. This host's fused int8 kernels are exact only for its own
    preset: without VNNI, MLAS' U8S8 pair sums saturate at int16 for the full-range presets (tensorrt's file
    agreed on 91 % of test images fused against 99 % as defined)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def test_the_table() -> None:
    assert set(PRESETS) == {"avx2", "avx512_vnni", "arm64", "tensorrt"}
    assert PRESETS["avx2"].reduce_range  # U8S8 via VPMADDUBSW saturates without VNNI
    assert not any(PRESETS[p].reduce_range for p in ("avx512_vnni", "arm64", "tensorrt"))
    assert PRESETS["tensorrt"].symmetric_activations and PRESETS["tensorrt"].dedicated_qdq_pair
    assert all(p.per_channel and p.weight_type == "int8" for p in PRESETS.values())
    with pytest.raises(UsageError, match="--preset"):
        CompressConfig(preset="avx9000").validate()


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.slow
def test_each_preset_quantizes_and_keeps_accuracy(tiny: TinyModels, tmp_path: Path, name: str) -> None:
    src, dst = tiny.folder / "tiny_raw.onnx", tmp_path / f"{name}.onnx"
    ort_quantize_static(src, dst, tiny.x_calib, PRESETS[name])
    ref = predict_file(str(src), "onnx", tiny.x_test).argmax(1)
    assert (_qdq_arithmetic(dst, tiny.x_test).argmax(1) == ref).mean() >= 0.9
    model = onnx.load(str(dst))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = [inits[n.input[0]] for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim >= 2]
    assert weights and all(w.dtype == np.int8 for w in weights)
    if name == "tensorrt":  # symmetric activations: every activation zero point is 0
        zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
        assert zps and all((z == 0).all() for z in zps)
