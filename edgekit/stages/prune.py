"""The pruning stages: ``prune.magnitude`` (TFMOT) and ``prune.structured`` (smaller model)."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.compression.prune import MagnitudePruneConfig, kernel_sparsity, magnitude_prune, pruning_report
from edgekit.models.files import save_keras
from edgekit.stages import Context, StageOutput, outputs_logits
from edgekit.stages.configs import StructuredConfig
from edgekit.train.trainer import FitSettings, fit, seed_everything


def run_magnitude(parent: Artifact | None, cfg: MagnitudePruneConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None  # the pipeline checks the chain first
    seed_everything(ctx.seed)
    ds = ctx.dataset
    model = magnitude_prune(ctx.keras_model(parent), ds.x_train, ds.y_train, cfg,
                            validation=(ds.x_val, ds.y_val), from_logits=outputs_logits(parent))
    save_keras(model, out)
    return StageOutput("fp32", {"sparsity": kernel_sparsity(model), "output": parent.metrics.get("output", "softmax"),
                                "schedule": cfg.schedule, "pattern": cfg.pattern,
                                "layers": pruning_report(model, cfg.pattern)}, model)


def run_structured(parent: Artifact | None, cfg: StructuredConfig, ctx: Context, out: Path) -> StageOutput:
    assert parent is not None
    from edgekit.compression.structured import prune_structured

    seed_everything(ctx.seed)
    ds = ctx.dataset
    result = prune_structured(ctx.keras_model(parent), ratio=cfg.ratio if not cfg.mac_budget else None,
                              mac_budget=cfg.mac_budget or None, criterion=cfg.criterion)
    model = result.model
    fit(model, ds.x_train, ds.y_train,
        FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, outputs_logits(parent)),
        validation=(ds.x_val, ds.y_val), label="fine-tuning")
    save_keras(model, out)
    return StageOutput("fp32", {"structured": result.report, "sparsity": kernel_sparsity(model),
                                "output": parent.metrics.get("output", "softmax")}, model)
