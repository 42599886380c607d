"""The single place TensorFlow is imported, after forcing Keras 2 (tf_keras).

TFMOT only works with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported. Modules call :func:`tf` / :func:`keras` lazily so
that light commands (``edgekit --help``) never pay the ~5 s import.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def tf() -> ModuleType:
    """Return the ``tensorflow`` module (imported on first use)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow

    tensorflow.get_logger().setLevel(logging.ERROR)
    return tensorflow


def keras() -> ModuleType:
    """Return ``tf_keras`` (Keras 2), the Keras edgekit builds and trains with."""
    tf()
    import tf_keras

    return tf_keras


def tfmot() -> ModuleType:
    """Return ``tensorflow_model_optimization``."""
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
