"""The quantization stages: PTQ (int8, float16, dynamic range) and QAT/PQAT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit._tf import tfmot
from edgekit.artifact import Artifact
from edgekit.compress.quantize import ort_quantize_static
from edgekit.export.convert import keras2tflite
from edgekit.fsutil import atomic_path, write_bytes
from edgekit.models.files import copy_model
from edgekit.stages import Context, StageOutput
from edgekit.stages.configs import DynamicConfig, Float16Config, PtqInt8Config, QatConfig
from edgekit.train.trainer import FitSettings, fit, seed_everything


def _carry(parent: Artifact) -> dict[str, object]:
    return {k: parent.metrics[k] for k in ("output", "sparsity") if k in parent.metrics}


def run_ptq_int8(parent: Artifact | None, cfg: PtqInt8Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    calib = ctx.dataset.calibration(cfg.calibration_samples)
    if parent.format == "onnx":
        onnx_cfg = cfg.onnx if cfg.onnx.calibration_samples == cfg.calibration_samples else \
            type(cfg.onnx)(**{**cfg.onnx.__dict__, "calibration_samples": cfg.calibration_samples})
        with atomic_path(out, suffix=".onnx") as tmp:
            ort_quantize_static(parent.path, tmp, calib, onnx_cfg)
        return StageOutput("int8", _carry(parent))
    write_bytes(out, keras2tflite(ctx.keras_model(parent), quantization="int8", representative=calib, int8_io=cfg.int8_io))
    return StageOutput("int8", _carry(parent))


def run_ptq_float16(parent: Artifact | None, cfg: Float16Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    write_bytes(out, keras2tflite(ctx.keras_model(parent), quantization="float16"))
    return StageOutput("fp16", _carry(parent))


def run_ptq_dynamic(parent: Artifact | None, cfg: DynamicConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    write_bytes(out, keras2tflite(ctx.keras_model(parent), quantization="dynamic"))
    return StageOutput("mixed", _carry(parent))


def _qat(parent: Artifact, cfg: QatConfig, ctx: Context, out: Path, preserve_sparsity: bool) -> StageOutput:
    seed_everything(ctx.seed)
    q = tfmot().quantization.keras
    base = copy_model(ctx.keras_model(parent))
    if preserve_sparsity:
        scheme: Any = tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        qat_model = q.quantize_apply(q.quantize_annotate_model(base), scheme)
    else:
        qat_model = q.quantize_model(base)
    ds = ctx.dataset
    from_logits = parent.metrics.get("output") == "logits"
    fit(qat_model, ds.x_train, ds.y_train, FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, False, from_logits),
        validation=(ds.x_val, ds.y_val), label="quantization-aware training")
    calib = ds.calibration(cfg.calibration_samples)
    write_bytes(out, keras2tflite(qat_model, quantization="int8", representative=calib))
    return StageOutput("int8", _carry(parent))


def run_qat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=False)


def run_pqat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=True)
