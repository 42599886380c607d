"""Training and fine-tuning of tf_keras models (Adam or AdamW, sparse categorical cross-entropy).

The defaults are the reference recipe (Adam 1e-3, constant rate, no smoothing, no
weight decay); ``edgekit tune`` searches the other settings of :class:`FitSettings`.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgekit._tf import keras, tf
from edgekit.console import progress
from edgekit.errors import UsageError

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
    lr_schedule: str = "constant"  # constant | cosine (edgekit.train.schedule)
    warmup_epochs: int = 0  # linear warm-up, in epochs
    label_smoothing: float = 0.0  # in [0, 1)
    weight_decay: float = 0.0  # > 0: AdamW with this decoupled weight decay
    augment_strength: float = 1.0  # scales the shift/rotation/zoom factors of --augment
    freeze_layers: int = 0  # fine-tuning: freeze this many leading layers that hold weights

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise UsageError(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.warmup_epochs < 0:
            raise UsageError(f"warmup_epochs must not be negative, got {self.warmup_epochs}")
        if not 0.0 <= self.augment_strength <= 5.0:
            raise UsageError(f"augment_strength must be in [0, 5], got {self.augment_strength}")
        if self.freeze_layers < 0:
            raise UsageError(f"freeze_layers must not be negative, got {self.freeze_layers}")


def smoothed_sparse_crossentropy(label_smoothing: float, from_logits: bool) -> Any:
    """Sparse categorical cross-entropy with label smoothing (tf_keras's sparse loss has none)."""
    k, t = keras(), tf()

    def loss(y_true: Any, y_pred: Any) -> Any:
        labels = t.reshape(t.cast(y_true, t.int32), [-1])
        onehot = t.one_hot(labels, t.shape(y_pred)[-1], dtype=y_pred.dtype)
        return k.losses.categorical_crossentropy(onehot, y_pred, from_logits=from_logits,
                                                 label_smoothing=label_smoothing)

    return loss


def compile_model(model: Any, settings: FitSettings, steps_per_epoch: int = 1) -> None:
    """Compile with the optimizer, schedule and loss ``settings`` name (the defaults: plain Adam)."""
    from edgekit.train.schedule import learning_rate

    k = keras()
    total = max(1, settings.epochs * steps_per_epoch)
    lr = learning_rate(settings.learning_rate, settings.lr_schedule,
                       min(settings.warmup_epochs * steps_per_epoch, total), total)
    if settings.weight_decay > 0:
        optimizer = k.optimizers.AdamW(learning_rate=lr, weight_decay=settings.weight_decay)
    else:
        optimizer = k.optimizers.Adam(learning_rate=lr)
    if settings.label_smoothing > 0:
        loss = smoothed_sparse_crossentropy(settings.label_smoothing, settings.from_logits)
    else:
        loss = k.losses.SparseCategoricalCrossentropy(from_logits=settings.from_logits)
    model.compile(optimizer=optimizer, loss=loss, metrics=[k.metrics.SparseCategoricalAccuracy(name="accuracy")])


def freeze_leading_layers(model: Any, n: int) -> list[str]:
    """Make the first ``n`` layers that hold weights untrainable; returns their names."""
    frozen: list[str] = []
    for layer in model.layers:
        if len(frozen) >= n:
            break
        if layer.weights:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def weighted_layer_count(model: Any) -> int:
    """How many top-level layers hold weights (the range of ``freeze_layers``)."""
    return sum(1 for layer in model.layers if layer.weights)


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
    steps = -(-len(x) // settings.batch_size)
    if settings.freeze_layers:
        frozen = freeze_leading_layers(model, settings.freeze_layers)
        log.debug("%s: frozen layers %s", label, ", ".join(frozen))
    if compile:
        compile_model(model, settings, steps)
    if settings.augment and settings.augment_strength > 0:
        from edgekit.train.augment import augmentation_layers

        a = settings.augment_strength
        aug = augmentation_layers(min(0.1 * a, 0.9), min(0.05 * a, 0.9), min(0.1 * a, 0.9))
        ds = tf().data.Dataset.from_tensor_slices((x, y)).shuffle(min(len(x), 10000), seed=0).batch(settings.batch_size)
        ds = ds.map(lambda a, b: (aug(a, training=True), b))
        fit_args: dict[str, Any] = {"x": ds}
    else:
        fit_args = {"x": x, "y": y, "batch_size": settings.batch_size, "shuffle": True}
    with progress(label, steps * settings.epochs) as bar:
        hist = model.fit(**fit_args, epochs=settings.epochs, validation_data=validation, verbose=0,
                         callbacks=[*callbacks, _progress_callback(bar, steps, label)])
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores of a Keras model on ``x`` (no progress bar; fast)."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float32)
