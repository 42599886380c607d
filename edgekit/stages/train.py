"""The ``train`` stage: train the reference CNN or fine-tune a user's model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.artifact import Artifact
from edgekit.schema import MAX_SEED, Checked, option
from edgekit.stages import Context, StageOutput, register_stage


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Settings of the ``train`` stage."""

    epochs: int = option(5, help="training (or fine-tuning) epochs", ge=0, flag="epochs")
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


@register_stage("train", TrainConfig, consumes={"": "keras"}, precision="fp32", group="training",
                description="train the reference CNN, or fine-tune the user's Keras model")
def run_train(parent: Artifact | None, cfg: TrainConfig, ctx: Context, out: Path) -> StageOutput:
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import FitSettings, fit, seed_everything

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
                      FitSettings(cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.augment, from_logits,
                                  lr_schedule=cfg.lr_schedule, warmup_epochs=cfg.warmup_epochs,
                                  label_smoothing=cfg.label_smoothing, weight_decay=cfg.weight_decay,
                                  augment_strength=cfg.augment_strength, freeze_layers=cfg.freeze_layers),
                      validation=(ds.x_val, ds.y_val), label="training")
    save_keras(model, out)
    return StageOutput({"history": history, "output": "logits" if from_logits else "softmax"}, model)
