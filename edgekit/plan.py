"""Turn a CompressConfig into an ordered list of steps, and check the chain up front.

A step names a stage, its config and the step whose artifact it consumes.
Checking that every stage accepts its input's format happens here, before
any data is loaded or TensorFlow imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgekit.config import QUANT_MODES, CompressConfig
from edgekit.errors import UsageError
from edgekit.stages import get_stage
from edgekit.stages.configs import (DynamicConfig, ExportOnnxConfig, ExportTFLiteConfig, Float16Config, PtqInt8Config,
                                    QatConfig, StructuredConfig, TrainConfig)


@dataclass(frozen=True)
class Step:
    """One stage application in a plan."""

    name: str  # unique within the plan, e.g. "pruned-int8-onnx"; also the output file's stem
    stage: str
    config: Any
    input: str | None  # the step it consumes (None for the source stage)
    role: str = field(default="", compare=False)  # "baseline" for the fp32 reference of each format


def _ort_config(cfg: CompressConfig) -> Any:
    from edgekit.compression.presets import PRESETS
    from edgekit.compression.quantize import OrtQuantConfig

    base = PRESETS[cfg.preset] if cfg.preset else OrtQuantConfig()
    return dataclasses.replace(base, calibration=cfg.calibration, calibration_samples=cfg.calibration_samples)


def build_plan(cfg: CompressConfig, *, dataset_fingerprint: str = "", model_sha256: str = "") -> list[Step]:
    """The steps of one compress run, in execution order.

    With ``max_accuracy_drop`` set, the steps of every recipe of the search grid
    (structured ratio × sparsity × quantization mode, from the ``search_*`` settings)
    are merged; steps shared by several recipes appear once.
    """
    variants = [cfg]
    if cfg.max_accuracy_drop is not None:
        variants = [cfg.replace(structured=r, sparsity=s, quantization=(q,))
                    for r in cfg.search_structured for s in cfg.search_sparsity for q in cfg.search_quantization]
    steps: dict[str, Step] = {}
    for variant in variants:
        for step in _recipe_steps(variant, dataset_fingerprint, model_sha256, search=len(variants) > 1):
            steps.setdefault(step.name, step)
    plan = list(steps.values())
    check_chain(plan)
    return plan


def _recipe_steps(cfg: CompressConfig, dataset_fingerprint: str, model_sha256: str, search: bool) -> list[Step]:
    from edgekit.compression.prune import MagnitudePruneConfig

    steps: list[Step] = []

    def add(name: str, stage: str, config: Any, input: str | None, role: str = "") -> str:
        steps.append(Step(name, stage, config, input, role))
        return name

    base = add("baseline", "train", TrainConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, augment=cfg.augment,
        model=cfg.model or "", model_sha256=model_sha256, trust_model=cfg.trust_model,
        dataset=dataset_fingerprint, seed=cfg.seed), None, "baseline")
    add("baseline-tflite", "export.tflite", ExportTFLiteConfig(), base, "baseline")
    base_onnx = add("baseline-onnx", "export.onnx", ExportOnnxConfig(), base, "baseline")

    src, prefix = base, "baseline"
    if cfg.structured > 0 or cfg.mac_budget > 0:
        name = f"structured{round(cfg.structured * 100)}" if search else "structured"
        src = prefix = add(name, "prune.structured", StructuredConfig(
            ratio=cfg.structured, mac_budget=cfg.mac_budget, criterion=cfg.structured_criterion,
            epochs=cfg.prune_epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
            augment=cfg.augment), src)
    if cfg.sparsity > 0 or cfg.sparsity_pattern or cfg.per_layer_sparsity:
        name = "pruned" if src == base else f"{prefix}-pruned"
        if search:
            name += str(round(cfg.sparsity * 100))
        src = prefix = add(name, "prune.magnitude", MagnitudePruneConfig(
            sparsity=cfg.sparsity, schedule=cfg.prune_schedule, pattern=cfg.sparsity_pattern,
            per_layer=dict(cfg.per_layer_sparsity), epochs=cfg.prune_epochs, batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, augment=cfg.augment), src)
    src_onnx = base_onnx
    if src != base:
        add(f"{prefix}-tflite", "export.tflite", ExportTFLiteConfig(), src)
        src_onnx = add(f"{prefix}-onnx", "export.onnx", ExportOnnxConfig(), src)

    for mode in cfg.quantization:
        stage = QUANT_MODES[mode]
        tag = mode.replace("ptq-", "")
        if mode == "ptq-int8":
            q = PtqInt8Config(calibration_samples=cfg.calibration_samples, int8_io=cfg.int8_io, onnx=_ort_config(cfg))
            add(f"{prefix}-int8-tflite", stage, q, src)
            add(f"{prefix}-int8-onnx", stage, q, src_onnx)
        elif mode == "ptq-float16":
            add(f"{prefix}-{tag}-tflite", stage, Float16Config(), src)
        elif mode == "ptq-dynamic":
            add(f"{prefix}-{tag}-tflite", stage, DynamicConfig(), src)
        else:  # qat / pqat: int8 TFLite with the learned ranges, then ONNX with int8 weights from it
            qcfg = QatConfig(epochs=cfg.qat_epochs, batch_size=cfg.batch_size, calibration_samples=cfg.calibration_samples)
            q_tfl = add(f"{prefix}-{tag}-tflite", stage, qcfg, src)
            add(f"{prefix}-{tag}-onnx", "export.onnx", ExportOnnxConfig(), q_tfl)
    return steps


def check_chain(steps: list[Step]) -> None:
    """Every step's stage must accept its input's format; names must be unique."""
    formats: dict[str, str] = {}
    for step in steps:
        if step.name in formats:
            raise UsageError(f"plan: two steps are named {step.name!r}")
        stage = get_stage(step.stage)
        if step.input is not None and step.input not in formats:
            raise UsageError(f"plan: step {step.name!r} consumes {step.input!r}, which comes later or not at all")
        if not isinstance(step.config, stage.config_type):
            raise UsageError(f"plan: step {step.name!r} has a {type(step.config).__name__}, "
                             f"stage {stage.name} takes {stage.config_type.__name__}")
        formats[step.name] = stage.output_format(formats.get(step.input) if step.input else None)
