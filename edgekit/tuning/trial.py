"""One tuning trial, as it runs on a Ray worker: train, report validation accuracy every epoch.

The data arrive through Ray's object store and a ``--model`` by content hash
(:class:`edgekit.executor.FileRef`), so a trial never reads a path of the driver's
node. The test split is never sent to a trial. A trial that completes its epochs
saves its model as the Tune checkpoint (storage under the shared cache folder).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.keras"
METRIC = "val_accuracy"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares: the fixed training keys, the seed and the model to start from."""

    base: Mapping[str, Any]  # training keys not searched (epochs, batch_size, learning_rate, …)
    seed: int
    input_shape: tuple[int, ...]
    num_classes: int
    model: Any = None  # FileRef of a --model file, or None for the reference CNN
    trust_model: bool = False


def fit_settings(keys: Mapping[str, Any], from_logits: bool) -> Any:
    """The FitSettings of one trial's merged training keys."""
    from edgekit.train.trainer import FitSettings

    strength = float(keys.get("augment_strength", 1.0 if keys.get("augment") else 0.0))
    return FitSettings(
        epochs=int(keys["epochs"]), batch_size=int(keys["batch_size"]), learning_rate=float(keys["learning_rate"]),
        augment=strength > 0, from_logits=from_logits, lr_schedule=str(keys.get("lr_schedule", "constant")),
        warmup_epochs=int(keys.get("warmup_epochs", 0)), label_smoothing=float(keys.get("label_smoothing", 0.0)),
        weight_decay=float(keys.get("weight_decay", 0.0)), augment_strength=strength or 1.0,
        freeze_layers=int(keys.get("freeze_layers", 0)),
    )


def build_model(setup: TrialSetup) -> tuple[Any, bool]:
    """The model a trial starts from and whether it outputs logits."""
    if setup.model is not None:
        from edgekit.models.loading import load_user_model

        loaded = load_user_model(setup.model.local_path(), trust=setup.trust_model)
        return loaded.model, loaded.output == "logits"
    from edgekit.models.reference import build_reference_cnn

    return build_reference_cnn(setup.input_shape, setup.num_classes), False


def _limit_threads() -> None:
    """Use the CPUs Ray assigned to this trial, not every core of the node."""
    import ray

    from edgekit._tf import tf

    cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    t = tf()
    try:
        t.config.threading.set_intra_op_parallelism_threads(cpus)
        t.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:  # TF already initialised in this worker
        pass


def run_trial(config: Mapping[str, Any], data: Mapping[str, np.ndarray], setup: TrialSetup) -> None:
    """The Ray Tune trainable: one report per epoch, a checkpoint with the model after the last."""
    from ray import tune

    from edgekit._tf import keras
    from edgekit.models.files import save_keras
    from edgekit.train.trainer import fit, seed_everything

    _limit_threads()
    keys = {**setup.base, **config}
    seed_everything(setup.seed)
    model, from_logits = build_model(setup)
    settings = fit_settings(keys, from_logits)

    class _Report(keras().callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            metrics = {METRIC: float(logs.get("val_accuracy", 0.0)), "epoch": epoch + 1,
                       "accuracy": float(logs.get("accuracy", 0.0)), "loss": float(logs.get("loss", 0.0)),
                       "val_loss": float(logs.get("val_loss", 0.0))}
            if epoch + 1 < settings.epochs:
                tune.report(metrics)
                return
            with tempfile.TemporaryDirectory() as tmp:
                save_keras(self.model, Path(tmp) / MODEL_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))

    fit(model, data["x_train"], data["y_train"], settings, validation=(data["x_val"], data["y_val"]),
        callbacks=[_Report()], label="trial")
