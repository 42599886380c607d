"""Training and fine-tuning of tf_keras models (Adam, sparse categorical cross-entropy)."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgekit._tf import keras, tf
from edgekit.console import progress

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf().random.set_seed(seed)
    keras().utils.set_random_seed(seed)


@dataclass(frozen=True)
class FitSettings:
    """How one training or fine-tuning phase runs."""

    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: bool = False
    from_logits: bool = False


def compile_model(model: Any, settings: FitSettings) -> None:
    k = keras()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate=settings.learning_rate),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=settings.from_logits),
        metrics=["accuracy"],
    )


def _progress_callback(bar: Any, steps_per_epoch: int, label: str) -> Any:
    k = keras()

    class _Cb(k.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            bar.update(description=f"{label} epoch {epoch + 1}")

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            bar.advance()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            log.debug("%s epoch %d: loss %.4f acc %.4f val_acc %s", label, epoch + 1, logs.get("loss", 0),
                      logs.get("accuracy", 0), logs.get("val_accuracy"))

    return _Cb()


def fit(model: Any, x: np.ndarray, y: np.ndarray, settings: FitSettings, *, validation: tuple[np.ndarray, np.ndarray] | None = None,
        callbacks: Sequence[Any] = (), label: str = "training", compile: bool = True) -> dict[str, list[float]]:
    """Train ``model`` with a progress bar; returns the Keras history dict."""
    if compile:
        compile_model(model, settings)
    if settings.augment:
        from edgekit.train.augment import augmentation_layers

        aug = augmentation_layers()
        ds = tf().data.Dataset.from_tensor_slices((x, y)).shuffle(min(len(x), 10000), seed=0).batch(settings.batch_size)
        ds = ds.map(lambda a, b: (aug(a, training=True), b))
        fit_args: dict[str, Any] = {"x": ds}
    else:
        fit_args = {"x": x, "y": y, "batch_size": settings.batch_size, "shuffle": True}
    steps = -(-len(x) // settings.batch_size)
    with progress(label, steps * settings.epochs) as bar:
        hist = model.fit(**fit_args, epochs=settings.epochs, validation_data=validation, verbose=0,
                         callbacks=[*callbacks, _progress_callback(bar, steps, label)])
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores of a Keras model on ``x`` (no progress bar; fast)."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float32)
