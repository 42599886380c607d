"""Turn a CompressConfig into an ordered list of steps, and check the chain up front.

A step names a stage, its config and the step whose artifact it consumes. The chain is
train → pruning stages (in their declared order, those a config asks for) → fp32 TFLite/ONNX
exports → each quantization mode's steps (:class:`edgekit.stages.Emit`), all read from the stage
registry. Checking that every stage accepts its input's format happens here, before any data is
loaded or TensorFlow imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.config import CompressConfig
from edgekit.errors import UsageError
from edgekit.stages import get_stage, prune_stages, quant_modes


@dataclass(frozen=True)
class Step:
    """One stage application in a plan."""

    name: str  # unique within the plan, e.g. "pruned-int8-onnx"; also the output file's stem
    stage: str
    config: Any
    input: str | None  # the step it consumes (None for the source stage)
    role: str = field(default="", compare=False)  # "baseline" for the fp32 reference of each format


def build_plan(cfg: CompressConfig, *, dataset_fingerprint: str = "", model_sha256: str = "") -> list[Step]:
    """The steps of one compress run, in execution order.

    Without explicit pruning values the pruning step is the budgeted prune (named ``pruned``).
    With ``search`` set, the steps of every recipe of the search grid (structured ratio × sparsity ×
    quantization mode, from the ``search_*`` settings) are merged; steps shared by several recipes
    appear once. (The grid is fixed here because the plan is built before any model is trained; the
    budget, ``max_accuracy_drop``, applies with or without a search.)
    """
    variants = [cfg]
    if cfg.search:
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
    steps: list[Step] = []

    def add(name: str, stage: str, input: str | None, role: str = "", config: Any = None) -> str:
        steps.append(Step(name, stage, config if config is not None else cfg.stage_config(stage), input, role))
        return name

    train = cfg.stage_config("train", dataset=dataset_fingerprint, model_sha256=model_sha256)
    base = add("baseline", "train", None, "baseline", train)
    add("baseline-tflite", "export.tflite", base, "baseline")
    base_onnx = add("baseline-onnx", "export.onnx", base, "baseline")

    src, prefix = base, "baseline"
    for stage in prune_stages():
        config = cfg.stage_config(stage.name)
        assert stage.prune is not None
        if stage.prune.active(config):
            label = stage.prune.label(config, search)
            src = prefix = add(label if src == base else f"{prefix}-{label}", stage.name, src, config=config)
    sources: list[tuple[str, str, str]] = []
    if src != base:
        add(f"{prefix}-tflite", "export.tflite", src)
        sources.append((src, add(f"{prefix}-onnx", "export.onnx", src), prefix))
        budgeted = cfg.stage_config("prune.budgeted")
        if budgeted.enabled and budgeted.lighter:  # the search's runner-up: the fallback when the bold choice fails
            lighter = add(f"{prefix}-lighter", "prune.lighter", src)
            add(f"{lighter}-tflite", "export.tflite", lighter)
            sources.append((lighter, add(f"{lighter}-onnx", "export.onnx", lighter), lighter))
        # the trained model is quantized too when something was pruned: quantization trains nothing, so its file
        # can be certified on unlabelled images against the reference itself (edgekit.rules), where a pruned
        # model's labelled bound may be too wide on small data
    sources.append((base, base_onnx, "baseline"))

    modes = quant_modes()
    for keras_src, onnx_src, name in sources:
        for mode in cfg.quantization:
            previous: str | None = None
            for emit in modes[mode].steps:
                source = {"keras": keras_src, "onnx": onnx_src, "previous": previous}[emit.input]
                previous = add(f"{name}-{emit.suffix}", emit.stage or modes[mode].name, source)
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
