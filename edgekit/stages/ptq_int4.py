"""Quantization mode ``ptq-int4``: int8 activations with int4 convolution and dense weights (LiteRT Quantizer).

The file is about half the bytes of the converter's int8 file (a weight is half a byte). It is made from the
parent's float TFLite file by :func:`edgekit.compression.litert_quant.quantize_int4`, refused when LiteRT cannot
run it, and its validation accuracy drop against the trained model is recorded (``metrics["int4"]``); the
pipeline's parity check against the parent and the accuracy budget judge it like every other candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.compression.litert_quant import GRANULARITIES
from edgekit.errors import ModelError
from edgekit.schema import Checked, option
from edgekit.stages import Context, Emit, StageOutput, inherited_metrics, register_stage


@dataclass(frozen=True)
class PtqInt4Config(Checked):
    """Settings of ``quantize.ptq_int4``."""

    calibration_samples: int = option(500, help="training images used to calibrate", ge=1, key="calibration_samples")
    granularity: str = option("channelwise", help="int4 weight scales: channelwise, or blockwise_32/64/128 where "
                              "LiteRT Quantizer admits it (0.11: only with float activations, so channelwise here)",
                              choices=GRANULARITIES)


@register_stage("quantize.ptq_int4", PtqInt4Config, consumes={"keras": "tflite"}, precision="mixed",
                mode="ptq-int4", parity=True, steps=(Emit("int4-tflite"),),
                description="int8 activations, int4 convolution/dense weights (LiteRT Quantizer, TFLite)")
def run_ptq_int4(parent: Artifact | None, cfg: PtqInt4Config, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.compression.litert_quant import quantize_int4, weight_precisions, with_live_channels
    from edgekit.export.convert import keras2tflite, litert_problem
    from edgekit.fsutil import write_bytes

    model = with_live_channels(ctx.keras_model(parent))
    data, record = quantize_int4(keras2tflite(model), ctx.dataset.calibration(cfg.calibration_samples),
                                 granularity=cfg.granularity)
    problem = litert_problem(data)
    if problem:
        raise ModelError(f"ptq-int4: LiteRT cannot run the int4 file: {problem}")
    record["weight_dtypes"] = weight_precisions(data)
    record.update(_val_drop(data, ctx))
    write_bytes(out, data)
    return StageOutput({**inherited_metrics(parent), "int4": record, "precision": "mixed"})


def _val_drop(data: bytes, ctx: Context) -> dict[str, Any]:
    """Validation accuracy of the file and its drop against the trained model (pp), when there is one."""
    import tempfile

    from edgekit.evaluate import predict_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        acc = float((predict_file(str(path), "tflite", ctx.dataset.x_val).argmax(1) == ctx.dataset.y_val).mean())
    ref = ctx.reference_val_accuracy
    return {"val_accuracy": round(acc, 6), **({"drop_pp": round((ref - acc) * 100.0, 3)} if ref is not None else {})}
