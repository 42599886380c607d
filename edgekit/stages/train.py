"""The ``train`` stage: train the reference CNN or fine-tune a user's model."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.models.files import save_keras
from edgekit.stages import Context, StageOutput
from edgekit.stages.configs import TrainConfig
from edgekit.train.trainer import FitSettings, fit, seed_everything


def run_train(parent: Artifact | None, cfg: TrainConfig, ctx: Context, out: Path) -> StageOutput:
    ds = ctx.dataset
    seed_everything(cfg.seed)
    from_logits = False
    if cfg.model:
        from edgekit.models.loading import load_user_model

        loaded = load_user_model(cfg.model, trust=cfg.trust_model)
        model, from_logits = loaded.model, loaded.output == "logits"
    else:
        from edgekit.models.reference import build_reference_cnn

        model = build_reference_cnn(ds.input_shape, ds.num_classes)
    history = {}
    if cfg.epochs > 0:
        history = fit(model, ds.x_train, ds.y_train,
                      FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, from_logits),
                      validation=(ds.x_val, ds.y_val), label="training")
    save_keras(model, out)
    return StageOutput("fp32", {"history": history, "output": "logits" if from_logits else "softmax"}, model)
