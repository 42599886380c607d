"""The pruning stages: ``prune.budgeted`` (the default: per-layer levels inside the accuracy budget),
``prune.structured`` (a smaller model) and ``prune.magnitude`` (TFMOT zeros), the last two for explicit values, and
``prune.lighter``, which exports the budgeted search's runner-up as the chooser's fallback.

``MagnitudePruneConfig`` lives with its pruning code in :mod:`edgekit.compression.prune`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from edgekit.artifact import Artifact
from edgekit.compression.budget import DEFAULT_ATTEMPTS
from edgekit.compression.prune import MagnitudePruneConfig
from edgekit.compression.structured import Criterion
from edgekit.errors import FieldError
from edgekit.schema import Checked, option
from edgekit.stages import Context, Prune, Skipped, StageOutput, outputs_logits, register_stage


@dataclass(frozen=True)
class StructuredConfig(Checked):
    """Settings of the ``prune.structured`` stage."""

    ratio: float = option(0.0, help="fraction of filters/units to remove per layer (0 = off)", ge=0, lt=1,
                          flag="structured")
    mac_budget: float = option(0.0, help="prune globally down to this fraction of the MACs (0 = use the ratio)",
                               ge=0, le=1, flag="mac_budget")
    criterion: Criterion = option("l1", help="how filters are ranked", flag="structured_criterion")
    per_layer: dict[str, float] = option(default_factory=dict, help="layer name → fraction of its filters/units to "
                                         "remove, overriding --structured", ge=0, lt=1, flag="per_layer_structured")
    epochs: int = option(3, help="fine-tuning epochs after pruning", ge=1, key="prune_epochs")
    batch_size: int = option(64, help="fine-tuning batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-3, help="fine-tuning learning rate", gt=0, lt=1, key="learning_rate")
    augment: bool = option(False, help="augment images while fine-tuning", key="augment")
    lr_schedule: Literal["constant", "cosine"] = option("constant", help="the fine-tuning rate's schedule (cosine "
                                                        "decays it to zero: better over long fine-tunes, "
                                                        "benchmarks/smallest_file.py)")
    distill: float = option(0.5, help="weight of the unpruned model's outputs in the fine-tuning targets", ge=0,
                            le=1)

    def check(self) -> None:
        if self.per_layer and self.mac_budget:
            raise FieldError("per_layer", "per-layer fractions go with --structured, not with --mac-budget")


@register_stage("prune.structured", StructuredConfig, consumes={"keras": "keras"}, precision="fp32",
                section="structured_prune", description="remove whole filters/units and rebuild a smaller model, "
                "then fine-tune",
                prune=Prune(10, active=lambda c: c.ratio > 0 or c.mac_budget > 0 or bool(c.per_layer),
                            label=lambda c, search: f"structured{round(c.ratio * 100)}" if search else "structured"))
def run_structured(parent: Artifact | None, cfg: StructuredConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None  # the pipeline checks the chain first
    from edgekit.compression.prune import kernel_sparsity
    from edgekit.compression.structured import prune_structured
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import STRUCTURED_FINE_TUNE, FitSettings, fine_tune, seed_everything

    seed_everything(ctx.seed)
    ds = ctx.dataset
    result = prune_structured(ctx.keras_model(parent), ratio=cfg.ratio if not cfg.mac_budget else None,
                              mac_budget=cfg.mac_budget or None, criterion=cfg.criterion, per_layer=cfg.per_layer)
    model = result.model
    fine_tune(model, ds.x_train, ds.y_train,
              FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, outputs_logits(parent)),
              replace(STRUCTURED_FINE_TUNE, distill=cfg.distill, lr_schedule=cfg.lr_schedule),
              teacher=ctx.keras_model(parent), validation=(ds.x_val, ds.y_val))
    save_keras(model, out)
    return StageOutput({"structured": result.report, "sparsity": kernel_sparsity(model),
                        "output": parent.metrics.get("output", "softmax")}, model)


@register_stage("prune.magnitude", MagnitudePruneConfig, consumes={"keras": "keras"}, precision="fp32",
                section="prune", description="zero the smallest weights (TFMOT) while fine-tuning",
                prune=Prune(20, active=lambda c: c.sparsity > 0 or bool(c.pattern) or bool(c.per_layer),
                            label=lambda c, search: f"pruned{round(c.sparsity * 100)}" if search else "pruned"))
def run_magnitude(parent: Artifact | None, cfg: MagnitudePruneConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.compression.prune import kernel_sparsity, magnitude_prune, pruning_report
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import seed_everything

    seed_everything(ctx.seed)
    ds = ctx.dataset
    model = magnitude_prune(ctx.keras_model(parent), ds.x_train, ds.y_train, cfg,
                            validation=(ds.x_val, ds.y_val), from_logits=outputs_logits(parent))
    save_keras(model, out)
    return StageOutput({"sparsity": kernel_sparsity(model), "output": parent.metrics.get("output", "softmax"),
                        "schedule": cfg.schedule, "pattern": cfg.pattern,
                        "layers": pruning_report(model, cfg.pattern)}, model)


@dataclass(frozen=True)
class BudgetedPruneConfig(Checked):
    """Settings of ``prune.budgeted``, the default pruning: per-layer filter fractions and sparsities chosen from
    the sensitivity inside the accuracy budget. Off as soon as any explicit pruning value is given."""

    enabled: bool = option(True, help="prune with per-layer levels chosen from the sensitivity inside the "
                           "accuracy budget (verified after fine-tuning; backed off or dropped when broken); "
                           "any explicit --sparsity/--structured/--mac-budget/--per-layer-sparsity/"
                           "--sparsity-pattern replaces it", flag="budgeted_prune")
    budget_pp: float = option(1.0, help="validation accuracy the pruned model may lose against the trained model, pp",
                              ge=0, key="max_accuracy_drop")
    structured: bool = option(True, help="also remove filters (structured), before the magnitude pruning")
    calibration_samples: int = option(256, help="training images that calibrate the analysis' simulated int8", ge=1)
    max_attempts: int = option(DEFAULT_ATTEMPTS, help="fine-tuning runs per pruning kind while searching how much "
                               "one-shot drop the levels may spend (a safe first attempt, then bisection in "
                               "log-spend; see edgekit.compression.budget)", ge=1)
    epochs: int = option(3, help="fine-tuning epochs of each attempt", ge=1, key="prune_epochs")
    batch_size: int = option(64, help="fine-tuning batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-3, help="fine-tuning learning rate", gt=0, lt=1, key="learning_rate")
    lighter: bool = option(True, help="also export the search's next held choice, which removes less "
                           "(prune.lighter): certification falls back to it when the boldest choice, the winner of "
                           "many looks at the selection images, is not certified")


def _budgeted_config(settings: dict[str, Any], cfg: Any) -> BudgetedPruneConfig:
    """On unless disabled or replaced by an explicit pruning value (``CompressConfig.explicit_pruning``)."""
    enabled = bool(settings.pop("enabled", True)) and not cfg.explicit_pruning()
    return BudgetedPruneConfig(enabled=enabled, **settings)


@register_stage("prune.budgeted", BudgetedPruneConfig, consumes={"keras": "keras"}, precision="fp32",
                section="prune_budget", configure=_budgeted_config,
                description="structured and magnitude pruning with per-layer levels chosen from the sensitivity "
                "inside the accuracy budget (the default when no pruning value is given)",
                prune=Prune(15, active=lambda c: c.enabled, label=lambda c, search: "pruned"))
def run_budgeted_prune(parent: Artifact | None, cfg: BudgetedPruneConfig, ctx: Context, out: Path) -> StageOutput:
    """Analysis → budgeted structured → budgeted magnitude, each verified on validation data against the trained
    model; a kind that breaks the budget is backed off or dropped (the next one starts from the last model that
    held)."""
    assert parent is not None
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.compression.budget import budgeted_magnitude_prune, budgeted_structured, val_accuracy
    from edgekit.compression.prune import kernel_sparsity, pruning_report
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import seed_everything

    seed_everything(ctx.seed)
    ds, logits = ctx.dataset, outputs_logits(parent)
    model = ctx.keras_model(parent)
    ref = ctx.reference_val_accuracy if ctx.reference_val_accuracy is not None else val_accuracy(model, ds)
    analysis = analyze_dataset(model, ds, SensitivityConfig(budget_pp=cfg.budget_pp,
                                                            calibration_samples=cfg.calibration_samples))
    decisions: dict[str, Any] = {}
    structured: Any = None
    if cfg.structured:
        model, structured = budgeted_structured(model, ds, analysis, budget_pp=cfg.budget_pp,
                                                reference_val_accuracy=ref, epochs=cfg.epochs,
                                                batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                                                from_logits=logits, max_attempts=cfg.max_attempts,
                                                reference_correct=ctx.reference_correct)
        decisions["structured"] = structured.to_dict()
        if structured.action != "dropped":  # the magnitude levels are measured on the model they will prune
            analysis = {**analyze_dataset(model, ds, SensitivityConfig(structured=(), budget_pp=cfg.budget_pp,
                                                                       calibration_samples=cfg.calibration_samples)),
                        "before_structured": analysis}
    before_magnitude = model
    model, magnitude = budgeted_magnitude_prune(model, ds, analysis, budget_pp=cfg.budget_pp,
                                                reference_val_accuracy=ref,
                                                cfg=MagnitudePruneConfig(epochs=cfg.epochs, batch_size=cfg.batch_size,
                                                                         learning_rate=cfg.learning_rate),
                                                from_logits=logits, max_attempts=cfg.max_attempts,
                                                reference_correct=ctx.reference_correct)
    decisions["magnitude"] = magnitude.to_dict()
    save_keras(model, out)
    metrics = {"sparsity": kernel_sparsity(model), "output": parent.metrics.get("output", "softmax"),
               "budget": decisions, "analysis": analysis, "layers": pruning_report(model)}
    lighter = lighter_choice(structured, magnitude, before_magnitude)
    if lighter is not None:
        save_keras(lighter[0], out.parent / LIGHTER_FILE)
        metrics["lighter"] = lighter[1]
    return StageOutput(metrics, model)


LIGHTER_FILE = "lighter.keras"
"""The budgeted prune's side file: the held choice that removes the next most (:func:`lighter_choice`)."""


def lighter_choice(structured: Any, magnitude: Any, before_magnitude: Any) -> tuple[Any, str] | None:
    """The budgeted search's next held choice below the one it kept (model, what it is), or None when no other
    choice held: the magnitude search's runner-up on the structured model it kept; else, when both kinds applied,
    that structured model alone; else the structured search's runner-up when magnitude pruning was dropped.

    The kept choice is the winner of several looks at the same selection images, so it is the likeliest to fail
    certification on images that chose nothing; the pipeline exports this one too (``prune.lighter``) so the
    chooser has a smaller file than the baseline's to fall back to."""
    applied = ("applied", "backed_off")
    if magnitude.runner_up is not None:
        return magnitude.runner_up.model, _levels("magnitude runner-up", magnitude.runner_up.per_layer)
    if magnitude.action in applied and structured is not None and structured.action in applied:
        return before_magnitude, _levels("the structured choice alone", structured.per_layer)
    if magnitude.action not in applied and structured is not None and structured.runner_up is not None:
        return structured.runner_up.model, _levels("structured runner-up", structured.runner_up.per_layer)
    return None


def _levels(what: str, per_layer: dict[str, float]) -> str:
    return f"{what} ({', '.join(f'{k} {v:g}' for k, v in per_layer.items())})"


@dataclass(frozen=True)
class LighterConfig(Checked):
    """Settings of ``prune.lighter`` (none: it exports what the budgeted prune it follows already chose)."""


@register_stage("prune.lighter", LighterConfig, consumes={"keras": "keras"}, precision="fp32",
                description="the budgeted prune's next held choice, which removes less: the chooser's fallback when "
                "the boldest choice is not certified")
def run_lighter(parent: Artifact | None, cfg: LighterConfig, ctx: Context, out: Path) -> StageOutput:
    """The model :func:`lighter_choice` saved beside ``parent`` (a ``prune.budgeted`` output), made from the
    trained model (its ``parent_id``, so its files are judged against the baselines, not against the bolder
    choice). When no other choice held there is nothing between the two: the step and its files are left out
    (:class:`Skipped`), since they would repeat the baseline's."""
    assert parent is not None
    import shutil

    from edgekit.compression.prune import kernel_sparsity
    from edgekit.models.files import load_keras_file

    side = parent.path.parent / LIGHTER_FILE
    if not side.is_file():
        raise Skipped(NO_LIGHTER)
    shutil.copyfile(side, out)  # written by save_keras beside the parent: the same bytes it would write again
    model = load_keras_file(out)
    return StageOutput({"lighter": parent.metrics.get("lighter", ""), "output": parent.metrics.get("output", "softmax"),
                        "sparsity": kernel_sparsity(model)}, model, made_from=ctx.artifacts[parent.parent_id or ""])


NO_LIGHTER = ("no other pruning choice held, so there is no lighter model to fall back to (the baseline's files "
              "are the fallback)")
