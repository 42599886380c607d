"""Saving and loading the tf_keras models edgekit itself writes (trusted files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit._tf import keras, tfmot
from edgekit.fsutil import atomic_path


def copy_model(model: Any) -> Any:
    """An independent, uncompiled copy of a tf_keras model (new layers, same weights)."""
    k = keras()
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def save_keras(model: Any, path: Path) -> Path:
    """Save a tf_keras model in the native ``.keras`` format (weights only, no optimizer state), atomically."""
    with atomic_path(path, suffix=".keras") as tmp:
        copy_model(model).save(str(tmp))
    return path


def load_keras_file(path: Path) -> Any:
    """Load a ``.keras`` file edgekit wrote (QAT models need TFMOT's quantize scope)."""
    k = keras()
    with tfmot().quantization.keras.quantize_scope():
        return k.models.load_model(str(path), compile=False)
