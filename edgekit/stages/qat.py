"""Quantization-aware training modes: ``qat`` and ``pqat`` (pruning-preserving).

Each fine-tunes a fake-quantized copy of its parent, converts it to an int8 TFLite model with
the learned ranges, and the plan then exports that to ONNX (int8 QDQ).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.schema import Checked, option
from edgekit.stages import Context, Emit, StageOutput, inherited_metrics, outputs_logits, register_stage


@dataclass(frozen=True)
class QatConfig(Checked):
    """Settings of ``quantize.qat`` / ``quantize.pqat``."""

    epochs: int = option(1, help="quantization-aware training epochs", ge=1, flag="qat_epochs")
    batch_size: int = option(64, help="batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-4, help="quantization-aware fine-tuning learning rate", gt=0, lt=1)
    calibration_samples: int = option(500, help="samples for the converter's remaining ranges", ge=1,
                                      key="calibration_samples")


def qat_model(model: Any, preserve_sparsity: bool) -> Any:
    """A TFMOT quantization-aware copy of ``model`` (PQAT: zeros stay zero while fine-tuning)."""
    from edgekit._tf import tfmot
    from edgekit.errors import ModelError
    from edgekit.models.files import copy_model

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
    from edgekit.export.convert import keras2tflite_encoded
    from edgekit.fsutil import write_bytes
    from edgekit.train.trainer import FitSettings, fine_tune, seed_everything

    seed_everything(ctx.seed)
    model = qat_model(ctx.keras_model(parent), preserve_sparsity)
    from edgekit.compression.quantize import relu_ranges_from_zero  # INT8: ReLU ranges from 0 while training,
    relu_ranges_from_zero(model)  # so the int8 zero point is -128 and ORT folds the ReLU into the int8 layer
    ds = ctx.dataset
    from_logits = outputs_logits(parent)
    settings = FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, False, from_logits)
    fine_tune(model, ds.x_train, ds.y_train, settings,
              teacher=ctx.keras_model(parent), validation=(ds.x_val, ds.y_val), label="quantization-aware training")
    # The converter takes the learned ranges from the fake-quant layers; the representative
    # samples only fill ranges QAT did not learn (e.g. the model input).
    calib = ds.calibration(cfg.calibration_samples)
    sparsity = float(parent.metrics.get("sparsity", 0.0))
    data, encoding = keras2tflite_encoded(model, sparsity, quantization="int8", representative=calib)
    write_bytes(out, data)
    # QAT without preservation moves pruned weights off zero: report what the file holds.
    measured = float(audit_model(out)["sparsity"])
    return StageOutput({**inherited_metrics(parent), **encoding, "sparsity": measured, "parent_sparsity": sparsity})


def _steps(mode: str) -> tuple[Emit, ...]:
    """An int8 TFLite model with the learned ranges, then ONNX with int8 weights from it."""
    return Emit(f"{mode}-tflite"), Emit(f"{mode}-onnx", input="previous", stage="export.onnx")


@register_stage("quantize.qat", QatConfig, consumes={"keras": "tflite"}, precision="int8", mode="qat",
                steps=_steps("qat"),
                description="quantization-aware training, then an int8 TFLite model with the learned ranges")
def run_qat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=False)


@register_stage("quantize.pqat", QatConfig, consumes={"keras": "tflite"}, precision="int8", mode="pqat",
                steps=_steps("pqat"),
                description="pruning-preserving quantization-aware training (zeros stay zero)")
def run_pqat(parent: Artifact | None, cfg: QatConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    return _qat(parent, cfg, ctx, out, preserve_sparsity=True)
