"""Training and fine-tuning of tf_keras models (Adam, AdamW or SGD with momentum, cross-entropy).

The defaults are the reference recipe (Adam 1e-3, constant rate, no smoothing, no
weight decay); ``edgekit tune`` searches the other settings of :class:`FitSettings`.

Fine-tuning a model that is already trained (a user's model, a pruned or fake-quantized copy of one) is not
training from scratch: every stage that does it calls :func:`fine_tune` with a :class:`FineTunePolicy` --
BatchNorm moving statistics frozen (BN runs in inference mode) or re-estimated, a linear warm-up, a fraction of
the rate, soft targets from the parent (distillation) -- and the presets below say which, as measured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

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
    optimizer: Literal["adam", "sgd"] = "adam"  # sgd: SGD with Nesterov momentum 0.9
    warmup_fraction: float = 0.0  # linear warm-up over this fraction of all steps (the larger of it and warmup_epochs)

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
        if self.optimizer not in ("adam", "sgd"):
            raise UsageError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise UsageError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


def smoothed_sparse_crossentropy(label_smoothing: float, from_logits: bool) -> Any:
    """Sparse categorical cross-entropy with label smoothing (tf_keras's sparse loss has none)."""
    k, t = keras(), tf()

    def loss(y_true: Any, y_pred: Any) -> Any:
        labels = t.reshape(t.cast(y_true, t.int32), [-1])
        onehot = t.one_hot(labels, t.shape(y_pred)[-1], dtype=y_pred.dtype)
        return k.losses.categorical_crossentropy(onehot, y_pred, from_logits=from_logits,
                                                 label_smoothing=label_smoothing)

    return loss


def compile_model(model: Any, settings: FitSettings, steps_per_epoch: int = 1, soft_targets: bool = False) -> None:
    """Compile with the optimizer, schedule and loss ``settings`` name (the defaults: plain Adam).
    ``soft_targets``: the labels are class distributions (distillation), not class indices."""
    from edgekit.train.schedule import learning_rate

    k = keras()
    total = max(1, settings.epochs * steps_per_epoch)
    warmup = max(settings.warmup_epochs * steps_per_epoch, round(settings.warmup_fraction * total))
    lr = learning_rate(settings.learning_rate, settings.lr_schedule, min(warmup, total), total)
    if settings.optimizer == "sgd":
        optimizer = k.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    elif settings.weight_decay > 0:
        optimizer = k.optimizers.AdamW(learning_rate=lr, weight_decay=settings.weight_decay)
    else:
        optimizer = k.optimizers.Adam(learning_rate=lr)
    if soft_targets:
        loss = k.losses.CategoricalCrossentropy(from_logits=settings.from_logits,
                                                label_smoothing=settings.label_smoothing)
        metric = k.metrics.CategoricalAccuracy(name="accuracy")
    elif settings.label_smoothing > 0:
        loss, metric = smoothed_sparse_crossentropy(settings.label_smoothing, settings.from_logits), None
    else:
        loss, metric = k.losses.SparseCategoricalCrossentropy(from_logits=settings.from_logits), None
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=[metric or k.metrics.SparseCategoricalAccuracy(name="accuracy")])


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
    callback: Any = keras().callbacks.Callback  # a class from an untyped module: a valid base only as Any

    class _Cb(callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            bar.update(description=f"{label} epoch {epoch + 1}")

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            bar.advance()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            log.debug("%s epoch %d: loss %.4f acc %.4f val_acc %s", label, epoch + 1, logs.get("loss", 0),
                      logs.get("accuracy", 0), logs.get("val_accuracy"))

    return _Cb()


def fit(model: Any, x: np.ndarray, y: np.ndarray, settings: FitSettings, *,
        validation: tuple[np.ndarray, np.ndarray] | None = None, callbacks: Sequence[Any] = (),
        label: str = "training", compile: bool = True) -> dict[str, list[float]]:
    """Train ``model`` with a progress bar; returns the Keras history dict. ``y`` of shape (n, classes) is soft
    targets (class distributions; the validation labels are then one-hot too)."""
    steps = -(-len(x) // settings.batch_size)
    if settings.freeze_layers:
        frozen = freeze_leading_layers(model, settings.freeze_layers)
        log.debug("%s: frozen layers %s", label, ", ".join(frozen))
    if compile:
        compile_model(model, settings, steps, soft_targets=np.ndim(y) == 2)
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


BATCHNORM_TYPES = ("BatchNormalization", "SyncBatchNormalization")


def batchnorm_layers(model: Any) -> list[Any]:
    """Every BatchNormalization layer of ``model``, inside nested models and TFMOT wrappers too."""
    return [m for m in model.submodules if type(m).__name__ in BATCHNORM_TYPES]


@contextlib.contextmanager
def frozen_batchnorm(model: Any) -> Iterator[int]:
    """BatchNorm layers untrainable while inside: in tf_keras an untrainable BN layer runs in inference mode (its
    moving statistics are used and kept, gamma and beta stay), also under ``prune_low_magnitude``, which leaves BN
    unwrapped, and under ``quantize_model``, whose wrapper calls the inner BN layer. Yields how many were frozen;
    their trainable flags are put back after, so a saved model is not left with frozen layers."""
    layers = [b for b in batchnorm_layers(model) if b.trainable]
    for b in layers:
        b.trainable = False
    try:
        yield len(layers)
    finally:
        for b in layers:
            b.trainable = True


def reestimate_batchnorm(model: Any, x: np.ndarray, batch_size: int = 64, max_batches: int = 50) -> int:
    """Recompute every BatchNorm layer's moving statistics on ``x`` (forward passes in training mode, no weight
    update): the k-th batch enters with momentum k/(k+1), so the result is the plain average over the batches
    whatever the layer's own momentum. For a model whose layers changed under the BN layers (filters removed), whose
    stored statistics describe inputs it no longer gets. Returns how many BN layers were re-estimated."""
    layers = batchnorm_layers(model)
    momenta = [b.momentum for b in layers]
    try:
        for k, start in enumerate(range(0, min(len(x), batch_size * max_batches), batch_size) if layers else ()):
            for b in layers:
                b.momentum = k / (k + 1)
            model(x[start:start + batch_size], training=True)
    finally:
        for b, m in zip(layers, momenta):
            b.momentum = m
    return len(layers)


@dataclass(frozen=True)
class FineTunePolicy:
    """How a model that is already trained is fine-tuned (:func:`fine_tune`).

    ``lr_scale``: fraction of the stage's learning rate; ``warmup``: linear warm-up over this fraction of the
    steps (a fresh optimizer's first steps are its largest); ``optimizer``: ``adam`` or ``sgd`` (Nesterov
    momentum 0.9); ``freeze_batchnorm``: BN in inference mode (:func:`frozen_batchnorm`); ``distill``: weight of
    the parent's predicted distribution in the targets (0: the labels alone); ``reestimate_batchnorm``: recompute
    BN's moving statistics on training images first (:func:`reestimate_batchnorm`); ``lr_schedule``: the rate's
    schedule (``constant`` or ``cosine``, :mod:`edgekit.train.schedule`; None: the stage's own)."""

    lr_scale: float = 1.0
    warmup: float = 0.1
    optimizer: Literal["adam", "sgd"] = "adam"
    freeze_batchnorm: bool = True
    distill: float = 0.0
    reestimate_batchnorm: bool = False
    lr_schedule: Literal["constant", "cosine"] | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.lr_scale <= 1.0:
            raise UsageError(f"lr_scale must be in (0, 1], got {self.lr_scale}")
        if not 0.0 <= self.distill <= 1.0:
            raise UsageError(f"distill must be in [0, 1], got {self.distill}")

    def settings(self, base: FitSettings) -> FitSettings:
        """``base`` with this policy's rate, warm-up and optimizer."""
        return replace(base, learning_rate=base.learning_rate * self.lr_scale, optimizer=self.optimizer,
                       warmup_fraction=max(base.warmup_fraction, self.warmup),
                       lr_schedule=self.lr_schedule or base.lr_schedule)


COMPRESSION_FINE_TUNE = FineTunePolicy()
"""Quantization-aware training: the stage's own rate, a 10 % warm-up and BatchNorm frozen (TFMOT does not fold BN
while training, and the converter folds the moving statistics: frozen, training sees what the int8 file computes)."""

MAGNITUDE_FINE_TUNE = FineTunePolicy(warmup=0.0, freeze_batchnorm=False, distill=0.5)
"""Magnitude pruning: the stage's rate, no warm-up, BatchNorm in training mode, targets half the labels and half
the parent's distribution. Measured (2 epochs to 50 %, 75 % on the reference CNN): frozen BN and a warm-up lost
34.6 pp on ResNet-8 where this lost none, and 3.25 against 2.25 pp on the reference CNN; as the zeros grow the
statistics must follow them. Distillation keeps the pruned model's mistakes close to the parent's, which is what
certification measures (``benchmarks/prune_churn.py``): on full Fashion-MNIST, 3 epochs to 90 % in dense1 changed
the correctness of 3.1 % of test images with it against 4.3 % without, for the same 0.76 pp gain."""

STRUCTURED_FINE_TUNE = FineTunePolicy(reestimate_batchnorm=True, distill=0.5)
"""After removing filters: as :data:`COMPRESSION_FINE_TUNE`, with BatchNorm's statistics first re-estimated on
training images (the layers under them changed, so the stored statistics describe inputs they no longer get), and
half of the targets from the parent, as :data:`MAGNITUDE_FINE_TUNE`."""

USER_MODEL_FINE_TUNE = FineTunePolicy(lr_scale=0.1)
"""A user's trained model on this data: a tenth of the training rate, a 10 % warm-up, BatchNorm frozen; the train
stage keeps the result only when it is better on validation."""


def soft_targets(teacher: Any, x: np.ndarray, y: np.ndarray, weight: float, from_logits: bool,
                 classes: int) -> np.ndarray:
    """Distillation targets: ``(1 - weight) · one-hot(y) + weight · teacher's distribution`` (float32, (n, classes))."""
    probs = predict(teacher, x)
    if from_logits:
        probs = np.exp(probs - probs.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    onehot = np.eye(classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return ((1.0 - weight) * onehot + weight * probs).astype(np.float32)


def fine_tune(model: Any, x: np.ndarray, y: np.ndarray, base: FitSettings,
              policy: FineTunePolicy = COMPRESSION_FINE_TUNE, *, teacher: Any = None,
              validation: tuple[np.ndarray, np.ndarray] | None = None, callbacks: Sequence[Any] = (),
              label: str = "fine-tuning") -> dict[str, list[float]]:
    """Fine-tune ``model`` (in place) by ``policy`` from the stage's ``base`` settings; ``teacher`` (the parent
    model) gives the soft targets when ``policy.distill`` > 0. Returns the Keras history dict."""
    settings = policy.settings(base)
    targets: np.ndarray = y
    if policy.distill > 0 and teacher is not None:
        classes = int(model.output_shape[-1])
        targets = soft_targets(teacher, x, y, policy.distill, base.from_logits, classes)
        if validation is not None:
            validation = (validation[0], np.eye(classes, dtype=np.float32)[np.asarray(validation[1], np.int64)])
    if policy.reestimate_batchnorm:
        reestimate_batchnorm(model, x, base.batch_size)
    with contextlib.ExitStack() as stack:
        frozen = stack.enter_context(frozen_batchnorm(model)) if policy.freeze_batchnorm else 0
        log.debug("%s: %s, rate %g, %d BatchNorm layer(s) frozen", label, policy, settings.learning_rate, frozen)
        return fit(model, x, targets, settings, validation=validation, callbacks=callbacks, label=label)


EAGER_IMAGES = 2048
"""Up to this many images :func:`predict` calls the model eagerly; above, through ``Model.predict``."""


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores of a Keras model on ``x``, in inference mode, ``batch_size`` images per call.

    Up to :data:`EAGER_IMAGES` images the model is called directly (eagerly): ``Model.predict`` builds a tf.data
    pipeline and traces a predict function for every new model, which costs more than the inference itself on the
    few hundred validation images the analysis measures each of its dozens of variants on (90 against 62 ms on
    600 images, compact model). On more images the traced graph is the faster (0.54 against 0.95 s on 10,000)."""
    x = np.asarray(x)
    if len(x) > EAGER_IMAGES:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float32)
    if len(x) == 0:  # no images, no scores (Model.predict refuses empty input; oneDNN's BiasAdd, a 0-image batch)
        return np.zeros((0, *tuple(model.output_shape)[1:]), np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False), np.float32)
                           for i in range(0, len(x), batch_size)])
