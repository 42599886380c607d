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
    """Settings of ``quantize.ptq_int8`` (TFLite converter from Keras, ONNX Runtime QDQ from ONNX), budget-aware."""

    calibration_samples: int = option(500, help="training images used to calibrate", ge=1, flag="calibration_samples")
    int8_io: bool = option(False, help="TFLite int8: integer model input/output instead of float", flag="int8_io")
    per_channel: bool = option(True, help="scale TFLite int8 weights per output channel (off: per tensor, whose "
                               "smaller tables matter on models of a few thousand weights)", flag="int8_per_channel")
    float_head: bool = option(True, help="keep the classifier head (the last dense layer and its softmax) in float, "
                              "TFLite and ONNX: an int8 output steps by 1/256, so close calls tie and argmax flips "
                              "the top-1 class (about 1 % of images on a model trained on a few thousand); costs the "
                              "head's weights in float (not with int8_io, whose output is integer by request)")
    onnx: OrtQuantConfig = option(default_factory=OrtQuantConfig, help="ONNX Runtime quantization settings "
                                  "(from --preset, --calibration and --calibration-samples)")
    budget_pp: float = option(1.0, help="validation accuracy the int8 file may lose against the trained model "
                              "(cumulative, pp); when broken, the guiltiest layers stay in float", ge=0,
                              key="max_accuracy_drop")
    analysis_samples: int = option(256, help="training images that calibrate the simulated int8 of the analysis "
                                   "(run only when int8 breaks the budget)", ge=1)
    max_attempts: int = option(4, help="conversions tried while protecting more layers", ge=1)


def _ptq_int8_config(settings: dict[str, Any], cfg: Any) -> PtqInt8Config:
    """The ONNX half follows the run's --preset and --calibration, calibrated on the same samples."""
    from edgekit.compression.presets import PRESETS

    given = settings.pop("onnx", None)  # the nested form: ptq_int8: {onnx: {...}}
    base = (coerce(OrtQuantConfig, given, "ptq_int8.onnx") if given
            else PRESETS[cfg.preset] if cfg.preset else OrtQuantConfig())
    samples = settings.get("calibration_samples", PtqInt8Config.calibration_samples)
    onnx = dataclasses.replace(base, calibration=cfg.calibration, calibration_samples=samples,
                               float_head=settings.get("float_head", PtqInt8Config.float_head))
    return PtqInt8Config(**settings, onnx=onnx)


@register_stage("quantize.ptq_int8", PtqInt8Config, consumes={"keras": "tflite", "onnx": "onnx"}, precision="int8",
                mode="ptq-int8", parity=True, default=True, search=True, configure=_ptq_int8_config,
                steps=(Emit("int8-tflite", input="keras"), Emit("int8-onnx", input="onnx")),
                description="full-integer post-training quantization (TFLite and ONNX), verified against the "
                "accuracy budget; layers whose int8 breaks it stay in float (precision 'mixed')")
def run_ptq_int8(parent: Artifact | None, cfg: PtqInt8Config, ctx: Context, out: Path) -> StageOutput:
    """int8 with the fast settings, verified on validation data against the trained model's accuracy; only when
    that breaks the budget are the guiltiest layers (per-layer sensitivity) kept in float, one more per attempt
    (:mod:`edgekit.compression.mixed`). Metrics: per-layer precision and why (``metrics["int8"]``); the precision
    is 'int8' when every weight layer is int8, 'mixed' otherwise (fp16/fp32 when int8 cannot hold the budget)."""
    assert parent is not None
    from edgekit.compression.mixed import MixedResult, onnx_layer_precisions, tflite_layer_precisions
    from edgekit.fsutil import write_bytes

    keras_parent = ctx.keras_ancestor(parent)
    model = ctx.keras_model(keras_parent) if keras_parent is not None else None
    names = _weight_layers(model) if model is not None else []
    calib = ctx.dataset.calibration(cfg.calibration_samples)
    extra: dict[str, Any] = {}
    if parent.format == "onnx":
        onnx_cfg = dataclasses.replace(cfg.onnx, calibration_samples=cfg.calibration_samples)
        data, used = _ort_int8(parent.path, calib, onnx_cfg)
        extra = {"calibration": onnx_cfg.calibration, "calibration_samples_used": used}
        precisions = lambda d: _with_file(d, ".onnx", lambda p: onnx_layer_precisions(p, names))  # noqa: E731
    else:
        from edgekit.export.convert import keras2tflite_encoded

        dense = None
        if _float_head(cfg) and model is not None:
            from edgekit.compression.mixed import keras2tflite_mixed

            dense = keras2tflite_mixed(model, calib, [], cfg.per_channel, float_head=True)
        data, extra = keras2tflite_encoded(model, _sparsity(parent), quantization="int8", representative=calib,
                                           int8_io=cfg.int8_io, per_channel=cfg.per_channel, dense=dense)
        extra = {**extra, "int8_io": cfg.int8_io, "per_channel": cfg.per_channel, "float_head": _float_head(cfg)}
        precisions = lambda d: tflite_layer_precisions(d, names)  # noqa: E731
    fmt = parent.format if parent.format == "onnx" else "tflite"
    ref, note = _reference(ctx, model, cfg.budget_pp)
    paired_with = None if note else ctx.reference_correct  # the trained model, unless int8 is held to its parent
    result = MixedResult(fmt, data, budget_pp=cfg.budget_pp, reference_val_accuracy=ref or 0.0)
    if ref is not None:  # judged by the one rule: the bound of the drop, paired with the Keras parent per image
        from edgekit.compression.budget import budget_check

        correct = _with_file(data, f".{fmt}", lambda p: _val_correct(p, fmt, ctx.dataset))
        result.val_accuracy = float(correct.mean())
        drop = round((ref - result.val_accuracy) * 100.0, 3)
        result.attempts.append({"protected": [], "val_accuracy": round(result.val_accuracy, 6), "drop_pp": drop,
                                "bytes": len(data), **budget_check(ref, result.val_accuracy, cfg.budget_pp, model, None,
                                                                  ctx.dataset, candidate_correct=correct,
                                                                  reference_correct=paired_with)})
    if ref is None or result.attempts[-1]["held"] or model is None or cfg.int8_io:
        got = precisions(data)
        result.layers = [{"name": n, "precision": got.get(n, "unknown"), "reason": _plain_reason(got.get(n), fmt, ref)}
                         for n in names]
    else:  # int8 broke the budget: protect the guiltiest layers
        result = _protected(fmt, model, parent, cfg, ctx, result, ref, paired_with)
    if _float_head(cfg) and result.action in ("applied", "backed_off"):
        protected = result.attempts[-1].get("protected", []) if result.attempts else []
        for row in result.layers[-1:]:  # the last weight layer is the head (tflite_head_nodes / onnx_head_nodes)
            if row["precision"] in ("float32", "mixed") and row["name"] not in protected:
                row["reason"] = HEAD_REASON
    write_bytes(out, result.data)  # type: ignore[arg-type]
    record = result.to_dict()
    if note:
        record["reference"] = note
    record["precision"] = _label(result)
    return StageOutput({**inherited_metrics(parent), **extra, "int8": record, "precision": record["precision"]})


HEAD_REASON = ("the classifier head stays in float (float_head): an int8 output steps by 1/256, so close calls "
               "would tie and flip the top-1 class")


def _float_head(cfg: PtqInt8Config) -> bool:
    """Whether the classifier head stays in float: asked for, and the file's output is not integer by request."""
    return cfg.float_head and not cfg.int8_io


def _reference(ctx: Context, model: Any, budget_pp: float) -> tuple[float | None, str]:
    """The validation accuracy int8 is held to: the trained model's (the budget is cumulative), unless the Keras
    parent already breaks the budget (an explicit pruning value, flagged on its own): then the parent's."""
    ref = ctx.reference_val_accuracy
    if ref is None or model is None:
        return ref, ""
    from edgekit.compression.budget import val_accuracy
    from edgekit.rules import within_budget

    parent = val_accuracy(model, ctx.dataset)
    if not within_budget((ref - parent) * 100.0, budget_pp):
        return parent, (f"the parent already loses {(ref - parent) * 100.0:.2f} pp (> {budget_pp:g} pp, an explicit "
                        "value); int8 is held to the budget against its parent")
    return ref, ""


def _weight_layers(model: Any) -> list[str]:
    from edgekit.analyze.fakequant import quantizable

    return [name for name, _ in quantizable(model)]  # a nested model's layers as backbone/conv1


def _with_file(data: bytes, suffix: str, fn: Any) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(data)
        return fn(path)


def _val_correct(path: Path, fmt: str, dataset: Any) -> Any:
    from edgekit.evaluate import predict_file

    return predict_file(str(path), fmt, dataset.x_val).argmax(axis=1) == dataset.y_val


def _ort_int8(src: Path, calib: Any, onnx_cfg: OrtQuantConfig, exclude: list[str] | None = None) -> tuple[bytes, int]:
    from edgekit.compression.quantize import ort_quantize_static

    def make(tmp: Path) -> tuple[bytes, int]:
        used = ort_quantize_static(src, tmp, calib, onnx_cfg, nodes_to_exclude=exclude)
        return tmp.read_bytes(), used

    return _with_file(b"", ".onnx", make)  # type: ignore[no-any-return]


def _plain_reason(precision: str | None, fmt: str, ref: float | None) -> str:
    if precision == "int8":
        return "int8 holds the budget" if ref is not None else "int8 (no budget check: no trained reference)"
    if precision in ("float32", "float16", "mixed") and fmt == "onnx":
        part = "its thin convolution" if precision == "mixed" else "it"
        return f"{part} kept in float for speed: ONNX Runtime's int8 kernels are slower on thin convolutions"
    return "the converter kept it in float" if precision else "no weight op found for this layer"


def _label(result: Any) -> str:
    """'int8' when every layer found is int8, 'mixed' otherwise; fp16/fp32 when int8 was dropped."""
    if result.action == "dropped":
        return "fp16" if result.format == "tflite" else "fp32"
    known = [r["precision"] for r in result.layers if r["precision"] != "unknown"]
    return "int8" if all(p == "int8" for p in known) else "mixed"


def _protected(fmt: str, model: Any, parent: Artifact, cfg: PtqInt8Config, ctx: Context, first: Any,
               ref: float, paired_with: Any = None) -> Any:
    """int8 with the guiltiest layers kept in float while the file breaks the budget (the first, plain attempt
    included in the record); when nothing holds, the float16 TFLite / fp32 ONNX file, with the reason."""
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.compression.mixed import budgeted_int8_onnx, budgeted_int8_tflite

    analysis = analyze_dataset(model, ctx.dataset, SensitivityConfig(sparsities=(), structured=(),
                                                                     budget_pp=cfg.budget_pp,
                                                                     calibration_samples=cfg.analysis_samples))
    if fmt == "onnx":
        onnx_cfg = dataclasses.replace(cfg.onnx, calibration_samples=cfg.calibration_samples)
        result = budgeted_int8_onnx(parent.path, ctx.dataset, analysis, reference_val_accuracy=ref,
                                    budget_pp=cfg.budget_pp, cfg=onnx_cfg, max_attempts=cfg.max_attempts, parent=model,
                                    reference_correct=paired_with)
    else:
        result = budgeted_int8_tflite(model, ctx.dataset, analysis, budget_pp=cfg.budget_pp,
                                      reference_val_accuracy=ref, calibration_samples=cfg.calibration_samples,
                                      max_attempts=cfg.max_attempts, reference_correct=paired_with,
                                      per_channel=cfg.per_channel, float_head=_float_head(cfg))
    result.attempts = first.attempts + result.attempts
    if result.action == "applied":
        result.action = "backed_off"  # the plain int8 file broke the budget first
        result.reason = result.reason or "int8 broke the budget; the layers the sensitivity names stay in float"
    if result.data is None:  # int8 dropped: still a file, in float16 (TFLite) or fp32 (ONNX), and why
        if fmt == "onnx":
            result.data = parent.path.read_bytes()
        else:
            from edgekit.export.convert import keras2tflite_encoded

            result.data, _ = keras2tflite_encoded(model, _sparsity(parent), quantization="float16")
        kept = "float16" if fmt == "tflite" else "float32"
        result.layers = [{"name": r["name"], "precision": kept, "reason": result.reason} for r in analysis["layers"]]
    return result


@dataclass(frozen=True)
class Float16Config(Checked):
    """Settings of ``quantize.ptq_float16``."""

    sparse_encoding: bool = option(True, help="store weights of a model ≥ 50 % sparse in TFLite's sparse "
                                   "encoding when the file gets smaller")


@register_stage("quantize.ptq_float16", Float16Config, consumes={"keras": "tflite"}, precision="fp16",
                mode="ptq-float16", parity=True, default=True, search=True, steps=(Emit("float16-tflite"),),
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
