"""Post-training quantization modes: ``ptq-int8``, ``ptq-float16`` and ``ptq-dynamic``.

TFLite outputs go through :func:`edgekit.export.convert.keras2tflite_encoded`, which records in
the stage metrics whether TFLite's sparse weight encoding was used and why (or why not).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.compression.quantize import OrtQuantConfig
from edgekit.schema import Checked, coerce, option
from edgekit.stages import Context, Emit, StageOutput, inherited_metrics, register_stage


def _sparsity(parent: Artifact) -> float:
    return float(parent.metrics.get("sparsity", 0.0))


@dataclass(frozen=True)
class PtqInt8Config(Checked):
    """Settings of ``quantize.ptq_int8`` (TFLite converter from Keras, ONNX Runtime QDQ from ONNX)."""

    calibration_samples: int = option(500, help="training images used to calibrate", ge=1, flag="calibration_samples")
    int8_io: bool = option(False, help="TFLite int8: integer model input/output instead of float", flag="int8_io")
    onnx: OrtQuantConfig = option(default_factory=OrtQuantConfig, help="ONNX Runtime quantization settings "
                                  "(from --preset, --calibration and --calibration-samples)")


def _ptq_int8_config(settings: dict[str, Any], cfg: Any) -> PtqInt8Config:
    """The ONNX half follows the run's --preset and --calibration, calibrated on the same samples."""
    from edgekit.compression.presets import PRESETS

    given = settings.pop("onnx", None)  # the nested form: ptq_int8: {onnx: {...}}
    base = coerce(OrtQuantConfig, given, "ptq_int8.onnx") if given else PRESETS[cfg.preset] if cfg.preset else OrtQuantConfig()
    samples = settings.get("calibration_samples", PtqInt8Config.calibration_samples)
    onnx = dataclasses.replace(base, calibration=cfg.calibration, calibration_samples=samples)
    return PtqInt8Config(**settings, onnx=onnx)


@register_stage("quantize.ptq_int8", PtqInt8Config, consumes={"keras": "tflite", "onnx": "onnx"}, precision="int8",
                mode="ptq-int8", parity=True, default=True, search=True, configure=_ptq_int8_config,
                steps=(Emit("int8-tflite", input="keras"), Emit("int8-onnx", input="onnx")),
                description="full-integer post-training quantization (TFLite and ONNX)")
def run_ptq_int8(parent: Artifact | None, cfg: PtqInt8Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.compression.quantize import ort_quantize_static
    from edgekit.export.convert import keras2tflite_encoded
    from edgekit.fsutil import atomic_path, write_bytes

    calib = ctx.dataset.calibration(cfg.calibration_samples)
    if parent.format == "onnx":
        onnx_cfg = dataclasses.replace(cfg.onnx, calibration_samples=cfg.calibration_samples)
        with atomic_path(out, suffix=".onnx") as tmp:
            used = ort_quantize_static(parent.path, tmp, calib, onnx_cfg)
        return StageOutput({**inherited_metrics(parent), "calibration": onnx_cfg.calibration,
                            "calibration_samples_used": used})
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), _sparsity(parent), quantization="int8",
                                          representative=calib, int8_io=cfg.int8_io)
    write_bytes(out, data)
    return StageOutput({**inherited_metrics(parent), **encoding, "int8_io": cfg.int8_io})


@dataclass(frozen=True)
class Float16Config(Checked):
    """Settings of ``quantize.ptq_float16``."""

    sparse_encoding: bool = option(True, help="store weights of a model ≥ 50 % sparse in TFLite's sparse "
                                   "encoding when the file gets smaller")


@register_stage("quantize.ptq_float16", Float16Config, consumes={"keras": "tflite"}, precision="fp16",
                mode="ptq-float16", parity=True, search=True, steps=(Emit("float16-tflite"),),
                description="float16 weights (TFLite)")
def run_ptq_float16(parent: Artifact | None, cfg: Float16Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.export.convert import keras2tflite_encoded
    from edgekit.fsutil import write_bytes

    sparsity = _sparsity(parent) if cfg.sparse_encoding else 0.0
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), sparsity, quantization="float16")
    write_bytes(out, data)
    return StageOutput({**inherited_metrics(parent), **encoding})


@dataclass(frozen=True)
class DynamicConfig(Checked):
    """``quantize.ptq_dynamic`` has no settings."""


@register_stage("quantize.ptq_dynamic", DynamicConfig, consumes={"keras": "tflite"}, precision="mixed",
                mode="ptq-dynamic", parity=True, search=True, steps=(Emit("dynamic-tflite"),),
                description="int8 weights, float activations (dynamic range, TFLite)")
def run_ptq_dynamic(parent: Artifact | None, cfg: DynamicConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.export.convert import keras2tflite_encoded
    from edgekit.fsutil import write_bytes

    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), _sparsity(parent), quantization="dynamic")
    write_bytes(out, data)
    return StageOutput({**inherited_metrics(parent), **encoding})
