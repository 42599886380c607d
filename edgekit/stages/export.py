"""The export stages: ``export.tflite`` (fp32) and ``export.onnx`` (from Keras or TFLite)."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.export.convert import keras2onnx, keras2tflite_encoded, tflite2onnx
from edgekit.fsutil import write_bytes
from edgekit.stages import Context, StageOutput, inherited_metrics
from edgekit.stages.configs import ExportOnnxConfig, ExportTFLiteConfig


def run_export_tflite(parent: Artifact | None, cfg: ExportTFLiteConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    sparsity = float(parent.metrics.get("sparsity", 0.0)) if cfg.sparse_encoding else 0.0
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), sparsity)
    write_bytes(out, data)
    return StageOutput("fp32", {**inherited_metrics(parent), **encoding})


def run_export_onnx(parent: Artifact | None, cfg: ExportOnnxConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    if parent.format == "tflite":
        # An int8 TFLite model (PTQ or QAT) becomes a QDQ ONNX model with int8 weights.
        write_bytes(out, tflite2onnx(parent.path.read_bytes(), opset=cfg.opset))
        return StageOutput(parent.precision, inherited_metrics(parent))
    write_bytes(out, keras2onnx(ctx.keras_model(parent), ctx.dataset.input_shape, opset=cfg.opset))
    return StageOutput("fp32", inherited_metrics(parent))
