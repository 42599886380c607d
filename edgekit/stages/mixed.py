"""Closed-loop stages: ``ptq-mixed`` (int8 except the layers whose int8 breaks the accuracy budget)
and ``prune.budgeted`` (per-layer pruning levels chosen from the sensitivity inside the budget).

Each stage measures the per-layer int8 sensitivity of its Keras parent (simulated int8, validation
data; :mod:`edgekit.analyze.sensitivity`), keeps the guilty layers in float32 and verifies the
converted file on validation data, protecting the next guiltiest layer while the budget is broken
(:mod:`edgekit.compression.mixed`); when nothing holds, the TFLite file is float16 and the ONNX file
fp32, with the reason (the run goes on). The budget is measured against the parent Keras model and
follows ``--max-accuracy-drop`` when that is set. The artifact's metrics record, per layer, the
precision it got and why (``metrics["mixed"]["layers"]``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.compression.quantize import OrtQuantConfig
from edgekit.schema import Checked, coerce, option
from edgekit.stages import Context, Emit, Prune, StageOutput, inherited_metrics, outputs_logits, register_stage


@dataclass(frozen=True)
class MixedConfig(Checked):
    """Settings of ``quantize.mixed_int8`` (TFLite) and ``quantize.mixed_int8_onnx``."""

    budget_pp: float = option(1.0, help="validation accuracy the int8 file may lose against its parent, pp", ge=0,
                              key="max_accuracy_drop")
    calibration_samples: int = option(500, help="training images used to calibrate", ge=1, key="calibration_samples")
    analysis_samples: int = option(256, help="training images that calibrate the simulated int8 of the analysis", ge=1)
    max_attempts: int = option(4, help="conversions tried while protecting more layers", ge=1)
    onnx: OrtQuantConfig = option(default_factory=OrtQuantConfig, help="ONNX Runtime quantization settings "
                                  "(from --preset and --calibration)")


def _mixed_config(settings: dict[str, Any], cfg: Any) -> MixedConfig:
    from edgekit.compression.presets import PRESETS

    given = settings.pop("onnx", None)
    base = coerce(OrtQuantConfig, given, "ptq_mixed.onnx") if given else PRESETS[cfg.preset] if cfg.preset else OrtQuantConfig()
    samples = settings.get("calibration_samples", MixedConfig.calibration_samples)
    return MixedConfig(**settings, onnx=dataclasses.replace(base, calibration=cfg.calibration, calibration_samples=samples))


def _analysis(model: Any, ctx: Context, cfg: MixedConfig) -> dict[str, Any]:
    """int8 sensitivity only (no pruning levels): what the protection needs."""
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset

    return analyze_dataset(model, ctx.dataset, SensitivityConfig(sparsities=(), structured=(), budget_pp=cfg.budget_pp,
                                                                 calibration_samples=cfg.analysis_samples))


def _metrics(parent: Artifact, result: Any, analysis: dict[str, Any]) -> dict[str, Any]:
    return {**inherited_metrics(parent), "mixed": result.to_dict(), "int8_all_drop_pp": analysis["int8_all_drop_pp"]}


@register_stage("quantize.mixed_int8", MixedConfig, consumes={"keras": "tflite"}, precision="mixed", mode="ptq-mixed",
                parity=True, configure=_mixed_config,
                steps=(Emit("mixed-tflite", input="keras"),
                       Emit("mixed-onnx", input="keras", stage="quantize.mixed_int8_onnx")),
                description="int8 except the layers whose int8 breaks the accuracy budget (TFLite and ONNX)")
def run_mixed_tflite(parent: Artifact | None, cfg: MixedConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.compression.budget import val_accuracy
    from edgekit.compression.mixed import budgeted_int8_tflite
    from edgekit.fsutil import write_bytes

    model = ctx.keras_model(parent)
    analysis = _analysis(model, ctx, cfg)
    result = budgeted_int8_tflite(model, ctx.dataset, analysis, budget_pp=cfg.budget_pp,
                                  reference_val_accuracy=val_accuracy(model, ctx.dataset),
                                  calibration_samples=cfg.calibration_samples, max_attempts=cfg.max_attempts)
    if result.data is None:  # int8 dropped: the stage still hands over a file, in float16, and says why
        from edgekit.export.convert import keras2tflite

        result.data = keras2tflite(model, quantization="float16")
        result.layers = [{"name": r["name"], "precision": "float16", "reason": result.reason} for r in analysis["layers"]]
    write_bytes(out, result.data)
    return StageOutput(_metrics(parent, result, analysis))


@register_stage("quantize.mixed_int8_onnx", MixedConfig, consumes={"keras": "onnx"}, precision="mixed", parity=True,
                configure=_mixed_config, description="ONNX half of ptq-mixed: QDQ int8 with the guilty layers excluded")
def run_mixed_onnx(parent: Artifact | None, cfg: MixedConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    import tempfile

    from edgekit.compression.budget import val_accuracy
    from edgekit.compression.mixed import budgeted_int8_onnx
    from edgekit.export.convert import keras2onnx
    from edgekit.fsutil import write_bytes

    model = ctx.keras_model(parent)
    analysis = _analysis(model, ctx, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        fp32.write_bytes(keras2onnx(model, ctx.dataset.input_shape))
        onnx_cfg = dataclasses.replace(cfg.onnx, calibration_samples=cfg.calibration_samples)
        result = budgeted_int8_onnx(fp32, ctx.dataset, analysis, budget_pp=cfg.budget_pp, cfg=onnx_cfg,
                                    reference_val_accuracy=val_accuracy(model, ctx.dataset),
                                    max_attempts=cfg.max_attempts)
        if result.data is None:  # int8 dropped: the fp32 file, said plainly (the chooser never picks it)
            result.data = fp32.read_bytes()
            result.layers = [{"name": r["name"], "precision": "float32", "reason": result.reason}
                             for r in analysis["layers"]]
    write_bytes(out, result.data)
    return StageOutput(_metrics(parent, result, analysis))


@dataclass(frozen=True)
class BudgetedPruneConfig(Checked):
    """Settings of ``prune.budgeted``: per-layer filter fractions and sparsities chosen inside the budget."""

    enabled: bool = option(False, help="prune with per-layer levels chosen from the sensitivity inside the "
                           "accuracy budget (verified after fine-tuning; backed off or dropped when broken)",
                           flag="budgeted_prune")
    budget_pp: float = option(1.0, help="validation accuracy the pruned model may lose against its parent, pp", ge=0,
                              key="max_accuracy_drop")
    structured: bool = option(True, help="also remove filters (structured), before the magnitude pruning")
    calibration_samples: int = option(256, help="training images that calibrate the analysis' simulated int8", ge=1)
    max_attempts: int = option(3, help="fine-tuning runs per pruning kind while searching the levels", ge=1)
    epochs: int = option(3, help="fine-tuning epochs of each attempt", ge=1, key="prune_epochs")
    batch_size: int = option(64, help="fine-tuning batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-3, help="fine-tuning learning rate", gt=0, lt=1, key="learning_rate")


@register_stage("prune.budgeted", BudgetedPruneConfig, consumes={"keras": "keras"}, precision="fp32",
                section="prune_budget", description="structured and magnitude pruning with per-layer levels chosen "
                "from the sensitivity inside the accuracy budget",
                prune=Prune(15, active=lambda c: c.enabled, label=lambda c, search: "budgeted"))
def run_budgeted_prune(parent: Artifact | None, cfg: BudgetedPruneConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.compression.budget import budgeted_magnitude_prune, budgeted_structured, val_accuracy
    from edgekit.compression.prune import MagnitudePruneConfig, kernel_sparsity, pruning_report
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import seed_everything

    seed_everything(ctx.seed)
    ds, logits = ctx.dataset, outputs_logits(parent)
    model = ctx.keras_model(parent)
    ref = val_accuracy(model, ds)
    analysis = analyze_dataset(model, ds, SensitivityConfig(budget_pp=cfg.budget_pp,
                                                            calibration_samples=cfg.calibration_samples))
    decisions: dict[str, Any] = {}
    if cfg.structured:
        model, d = budgeted_structured(model, ds, analysis, budget_pp=cfg.budget_pp, reference_val_accuracy=ref,
                                       epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                                       from_logits=logits, max_attempts=cfg.max_attempts)
        decisions["structured"] = d.to_dict()
        if d.action != "dropped":  # the magnitude levels are measured on the model they will prune
            analysis = {**analyze_dataset(model, ds, SensitivityConfig(structured=(), budget_pp=cfg.budget_pp,
                                                                       calibration_samples=cfg.calibration_samples)),
                        "before_structured": analysis}
    model, d = budgeted_magnitude_prune(model, ds, analysis, budget_pp=cfg.budget_pp, reference_val_accuracy=ref,
                                        cfg=MagnitudePruneConfig(epochs=cfg.epochs, batch_size=cfg.batch_size,
                                                                 learning_rate=cfg.learning_rate),
                                        from_logits=logits, max_attempts=cfg.max_attempts)
    decisions["magnitude"] = d.to_dict()
    save_keras(model, out)
    return StageOutput({"sparsity": kernel_sparsity(model), "output": parent.metrics.get("output", "softmax"),
                        "budget": decisions, "analysis": analysis, "layers": pruning_report(model)}, model)
