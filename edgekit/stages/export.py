"""The export stages: ``export.tflite`` (fp32) and ``export.onnx`` (from Keras or TFLite)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.schema import Checked, option
from edgekit.stages import Context, StageOutput, inherited_metrics, register_stage


@dataclass(frozen=True)
class ExportTFLiteConfig(Checked):
    """Settings of ``export.tflite`` (fp32)."""

    sparse_encoding: bool = option(True, help="store weights of a model ≥ 50 % sparse in TFLite's sparse "
                                   "encoding when the file gets smaller")


@register_stage("export.tflite", ExportTFLiteConfig, consumes={"keras": "tflite"}, precision="fp32", parity=True,
                description="convert to TFLite (fp32)")
def run_export_tflite(parent: Artifact | None, cfg: ExportTFLiteConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.export.convert import keras2tflite_encoded
    from edgekit.fsutil import write_bytes

    sparsity = float(parent.metrics.get("sparsity", 0.0)) if cfg.sparse_encoding else 0.0
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), sparsity)
    write_bytes(out, data)
    return StageOutput({**inherited_metrics(parent), **encoding})


@dataclass(frozen=True)
class ExportOnnxConfig(Checked):
    """Settings of ``export.onnx``."""

    opset: int = option(17, help="ONNX opset", ge=13)


@register_stage("export.onnx", ExportOnnxConfig, consumes={"keras": "onnx", "tflite": "onnx"}, precision="parent",
                parity=True, description="convert to ONNX (tf2onnx); from an int8 TFLite model, int8 QDQ")
def run_export_onnx(parent: Artifact | None, cfg: ExportOnnxConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.export.convert import keras2onnx, tflite2onnx
    from edgekit.fsutil import write_bytes

    if parent.format == "tflite":
        # An int8 TFLite model (PTQ or QAT) becomes a QDQ ONNX model with int8 weights.
        from edgekit.compression.quantize import ort_fast_qdq_bytes  # INT8: layout ORT's CPU kernels run fast
        write_bytes(out, ort_fast_qdq_bytes(tflite2onnx(parent.path.read_bytes(), opset=cfg.opset)))
        return StageOutput(inherited_metrics(parent))
    write_bytes(out, keras2onnx(ctx.keras_model(parent), ctx.dataset.input_shape, opset=cfg.opset))
    return StageOutput(inherited_metrics(parent))
