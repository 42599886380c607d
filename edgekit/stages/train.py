"""The ``train`` stage: train the reference CNN, or measure a user's model as brought and fine-tune it.

A user's model is evaluated before any training (validation and test: the ``as_brought`` record). Fine-tuning
is then a stage like the others: a copy is fine-tuned by :data:`edgekit.train.trainer.USER_MODEL_FINE_TUNE` and
kept only when it is better on validation (:func:`edgekit.train.keep.decide`); otherwise the stage writes the
model as brought, weights untouched. Either way the stage's output is the reference of the accuracy budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.artifact import Artifact
from edgekit.schema import MAX_SEED, Checked, option
from edgekit.stages import Context, StageOutput, register_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Settings of the ``train`` stage."""

    epochs: int = option(5, help="training epochs; with --model, fine-tuning epochs (0 = use the model as it is; "
                         "fine-tuning is kept only when it is better on validation)", ge=0, flag="epochs")
    batch_size: int = option(64, help="batch size", ge=1, flag="batch_size")
    learning_rate: float = option(1e-3, help="Adam learning rate", gt=0, lt=1, flag="learning_rate")
    augment: bool = option(False, help="augment training images (small shifts, rotations, zoom)", flag="augment")
    model: str = option("", help="a user's Keras model to fine-tune ('' = the reference CNN)", key="model")
    model_sha256: str = option("", help="hash of the model file", runtime=True)
    trust_model: bool = option(False, help="allow Lambda layers / custom code in the model", key="trust_model")
    dataset: str = option("", help="dataset fingerprint", runtime=True)
    seed: int = option(0, help="seed for Python, NumPy and TensorFlow", ge=0, le=MAX_SEED, flag="seed", group="data")
    # what edgekit tune searches (recipe section ``train:``); the defaults are the reference recipe
    lr_schedule: str = option("constant", help="learning-rate schedule, per step", choices=("constant", "cosine"))
    warmup_epochs: int = option(0, help="linear learning-rate warm-up, in epochs", ge=0)
    label_smoothing: float = option(0.0, help="label smoothing of the cross-entropy", ge=0, lt=1)
    weight_decay: float = option(0.0, help="AdamW decoupled weight decay (0 = Adam)", ge=0)
    augment_strength: float = option(1.0, help="with augment: scales the shift/rotation/zoom factors", ge=0, le=5)
    freeze_layers: int = option(0, help="fine-tuning: freeze this many leading layers that hold weights", ge=0)


def _fit_settings(cfg: TrainConfig, from_logits: bool) -> Any:
    from edgekit.train.trainer import FitSettings

    return FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, from_logits,
                       lr_schedule=cfg.lr_schedule, warmup_epochs=cfg.warmup_epochs,
                       label_smoothing=cfg.label_smoothing, weight_decay=cfg.weight_decay,
                       augment_strength=cfg.augment_strength, freeze_layers=cfg.freeze_layers)


def _correct(model: Any, x: Any, y: Any) -> Any:
    from edgekit.train.trainer import predict

    return predict(model, x).argmax(axis=1) == y


def _bring(cfg: TrainConfig, ctx: Context, out: Path) -> StageOutput:
    """A user's model: measured as brought, then fine-tuned on a copy, kept only when better on validation."""
    from edgekit.models.files import copy_model, save_keras
    from edgekit.models.loading import load_user_model
    from edgekit.train import keep
    from edgekit.train.trainer import USER_MODEL_FINE_TUNE, fine_tune

    ds = ctx.dataset
    loaded = load_user_model(cfg.model, trust=cfg.trust_model)
    for note in loaded.notes:
        log.info("%s: %s", cfg.model, note)
    model, from_logits = loaded.model, loaded.output == "logits"
    before = _correct(model, ds.x_val, ds.y_val)
    as_brought = {"val_accuracy": float(before.mean()) if before.size else None,
                  "accuracy": float(_correct(model, ds.x_test, ds.y_test).mean()) if len(ds.y_test) else None}
    log.info("model as brought: validation %.2f %%, test %.2f %%", (as_brought["val_accuracy"] or 0) * 100,
             (as_brought["accuracy"] or 0) * 100)
    history: dict[str, Any] = {}
    decision = keep.skipped(float(before.mean()) if before.size else 0.0)
    if cfg.epochs > 0:
        tuned = copy_model(model)  # the model as brought stays as it is, whatever fine-tuning does
        history = fine_tune(tuned, ds.x_train, ds.y_train, _fit_settings(cfg, from_logits), USER_MODEL_FINE_TUNE,
                            teacher=model, validation=(ds.x_val, ds.y_val), label="fine-tuning")
        decision = keep.decide(before, _correct(tuned, ds.x_val, ds.y_val))
        if decision.action == "kept":
            model = tuned
    log.info("%s", decision.sentence())
    save_keras(model, out)
    return StageOutput({"history": history, "output": "logits" if from_logits else "softmax",
                        "as_brought": as_brought, "fine_tuning": decision.to_dict(), "loading": list(loaded.notes)},
                       model)


@register_stage("train", TrainConfig, consumes={"": "keras"}, precision="fp32", group="training",
                description="train the reference CNN, or measure the user's Keras model as brought and fine-tune it "
                "(kept only when better on validation)")
def run_train(parent: Artifact | None, cfg: TrainConfig, ctx: Context, out: Path) -> StageOutput:
    from edgekit.models.files import save_keras
    from edgekit.models.reference import build_reference_cnn
    from edgekit.train.trainer import fit, seed_everything

    seed_everything(cfg.seed)
    if cfg.model:
        return _bring(cfg, ctx, out)
    ds = ctx.dataset
    model = build_reference_cnn(ds.input_shape, ds.num_classes)
    history = {}
    if cfg.epochs > 0:
        history = fit(model, ds.x_train, ds.y_train, _fit_settings(cfg, False), validation=(ds.x_val, ds.y_val),
                      label="training")
    save_keras(model, out)
    return StageOutput({"history": history, "output": "softmax"}, model)
