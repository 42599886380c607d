"""The single place TensorFlow is imported, after forcing Keras 2 (tf_keras).

TFMOT only works with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported. Modules call :func:`tf` / :func:`keras` lazily so
that light commands (``edgekit --help``) never pay the ~5 s import.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence what native code writes straight to file descriptors 1 and 2 (TF's C++ start-up
    chatter, the TFLite converter's summary line); Python exceptions still propagate."""
    if os.environ.get("EDGEKIT_VERBOSE_NATIVE"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def tf() -> ModuleType:
    """Return the ``tensorflow`` module (imported on first use)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if "tensorflow" not in sys.modules:
        with quiet_native_output():
            importlib.import_module("tensorflow")
    tensorflow = sys.modules["tensorflow"]
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
