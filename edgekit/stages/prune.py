"""The pruning stages: ``prune.structured`` (a smaller model) and ``prune.magnitude`` (TFMOT zeros).

``MagnitudePruneConfig`` lives with its pruning code in :mod:`edgekit.compression.prune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgekit.artifact import Artifact
from edgekit.compression.prune import MagnitudePruneConfig
from edgekit.schema import Checked, option
from edgekit.stages import Context, Prune, StageOutput, outputs_logits, register_stage


@dataclass(frozen=True)
class StructuredConfig(Checked):
    """Settings of the ``prune.structured`` stage."""

    ratio: float = option(0.0, help="fraction of filters/units to remove per layer (0 = off)", ge=0, lt=1,
                          flag="structured")
    mac_budget: float = option(0.0, help="prune globally down to this fraction of the MACs (0 = use the ratio)",
                               ge=0, le=1, flag="mac_budget")
    criterion: Literal["l1", "l2", "bn_scale"] = option("l1", help="how filters are ranked",
                                                        flag="structured_criterion")
    epochs: int = option(3, help="fine-tuning epochs after pruning", ge=1, key="prune_epochs")
    batch_size: int = option(64, help="fine-tuning batch size", ge=1, key="batch_size")
    learning_rate: float = option(1e-3, help="fine-tuning learning rate", gt=0, lt=1, key="learning_rate")
    augment: bool = option(False, help="augment images while fine-tuning", key="augment")


@register_stage("prune.structured", StructuredConfig, consumes={"keras": "keras"}, precision="fp32",
                section="structured_prune", description="remove whole filters/units and rebuild a smaller model, "
                "then fine-tune",
                prune=Prune(10, active=lambda c: c.ratio > 0 or c.mac_budget > 0,
                            label=lambda c, search: f"structured{round(c.ratio * 100)}" if search else "structured"))
def run_structured(parent: Artifact | None, cfg: StructuredConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None  # the pipeline checks the chain first
    from edgekit.compression.prune import kernel_sparsity
    from edgekit.compression.structured import prune_structured
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import FitSettings, fit, seed_everything

    seed_everything(ctx.seed)
    ds = ctx.dataset
    result = prune_structured(ctx.keras_model(parent), ratio=cfg.ratio if not cfg.mac_budget else None,
                              mac_budget=cfg.mac_budget or None, criterion=cfg.criterion)
    model = result.model
    fit(model, ds.x_train, ds.y_train,
        FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, outputs_logits(parent)),
        validation=(ds.x_val, ds.y_val), label="fine-tuning")
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
