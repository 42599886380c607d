"""The quantization stages: PTQ (int8, float16, dynamic range) and QAT/PQAT.

TFLite outputs go through :func:`edgekit.export.convert.keras2tflite_encoded`, which records in
the stage metrics whether TFLite's sparse weight encoding was used and why (or why not).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgekit._tf import tfmot
from edgekit.artifact import Artifact
from edgekit.compression.quantize import ort_quantize_static
from edgekit.errors import ModelError
from edgekit.export.convert import keras2tflite_encoded
from edgekit.fsutil import atomic_path, write_bytes
from edgekit.models.files import copy_model
from edgekit.stages import Context, StageOutput, inherited_metrics, outputs_logits
from edgekit.stages.configs import DynamicConfig, Float16Config, PtqInt8Config, QatConfig
from edgekit.train.trainer import FitSettings, fit, seed_everything


def _sparsity(parent: Artifact) -> float:
    return float(parent.metrics.get("sparsity", 0.0))


def run_ptq_int8(parent: Artifact | None, cfg: PtqInt8Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    calib = ctx.dataset.calibration(cfg.calibration_samples)
    if parent.format == "onnx":
        onnx_cfg = dataclasses.replace(cfg.onnx, calibration_samples=cfg.calibration_samples)
        with atomic_path(out, suffix=".onnx") as tmp:
            used = ort_quantize_static(parent.path, tmp, calib, onnx_cfg)
        return StageOutput("int8", {**inherited_metrics(parent), "calibration": onnx_cfg.calibration, "calibration_samples_used": used})
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), _sparsity(parent), quantization="int8",
                                          representative=calib, int8_io=cfg.int8_io)
    write_bytes(out, data)
    return StageOutput("int8", {**inherited_metrics(parent), **encoding, "int8_io": cfg.int8_io})


def run_ptq_float16(parent: Artifact | None, cfg: Float16Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    sparsity = _sparsity(parent) if cfg.sparse_encoding else 0.0
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), sparsity, quantization="float16")
    write_bytes(out, data)
    return StageOutput("fp16", {**inherited_metrics(parent), **encoding})


def run_ptq_dynamic(parent: Artifact | None, cfg: DynamicConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    data, encoding = keras2tflite_encoded(ctx.keras_model(parent), _sparsity(parent), quantization="dynamic")
    write_bytes(out, data)
    return StageOutput("mixed", {**inherited_metrics(parent), **encoding})


def qat_model(model: Any, preserve_sparsity: bool) -> Any:
    """A TFMOT quantization-aware copy of ``model`` (PQAT: zeros stay zero while fine-tuning)."""
    q = tfmot().quantization.keras
    base = copy_model(model)
    try:
        if preserve_sparsity:
            scheme: Any = tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            return q.quantize_apply(q.quantize_annotate_model(base), scheme)
        return q.quantize_model(base)
    except (ValueError, RuntimeError, TypeError) as e:
        what = "pruning-preserving " if preserve_sparsity else ""
        raise ModelError(f"{what}quantization-aware training cannot wrap this model: "
                         f"{str(e).strip().splitlines()[0]}") from None


def _qat(parent: Artifact, cfg: QatConfig, ctx: Context, out: Path, preserve_sparsity: bool) -> StageOutput:
    from edgekit.audit import audit_model

    seed_everything(ctx.seed)
    model = qat_model(ctx.keras_model(parent), preserve_sparsity)
    ds = ctx.dataset
    from_logits = outputs_logits(parent)
    fit(model, ds.x_train, ds.y_train, FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, False, from_logits),
        validation=(ds.x_val, ds.y_val), label="quantization-aware training")
    # The converter takes the learned ranges from the fake-quant layers; the representative
    # samples only fill ranges QAT did not learn (e.g. the model input).
    calib = ds.calibration(cfg.calibration_samples)
    data, encoding = keras2tflite_encoded(model, _sparsity(parent), quantization="int8", representative=calib)
    write_bytes(out, data)
    # QAT without preservation moves pruned weights off zero: report what the file holds.
    measured = float(audit_model(out)["sparsity"])
    return StageOutput("int8", {**inherited_metrics(parent), **encoding, "sparsity": measured,
                                "parent_sparsity": _sparsity(parent)})


def run_qat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=False)


def run_pqat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=True)
