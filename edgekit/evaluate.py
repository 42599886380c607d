"""Scores of any artifact on a batch of images: Keras in-process, deployable formats through
their runtime's session (the same session classes the benchmark runner uses)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgekit._tf import quiet_native_output
from edgekit.artifact import Artifact
from edgekit.errors import VerificationError
from edgekit.formats import spec
from edgekit.runtime.measure import predict_all
from edgekit.runtime.sessions import open_session


def predict_file(path: str, fmt: str, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores (N × classes) of a deployable model file (.tflite, .onnx) on ``x``, on this machine's CPU."""
    runtime = spec(fmt).runtime
    if runtime is None:
        raise VerificationError(f"{path}: cannot run format {fmt!r}")
    try:
        with quiet_native_output():  # LiteRT announces its XNNPACK delegate on stderr
            sess: Any = open_session(runtime, path, threads=os.cpu_count() or 1)
    except Exception as e:  # SessionError and friends
        raise VerificationError(f"{path}: cannot be opened for verification ({e})") from None
    _, scores = predict_all(sess.predict, x, batch=batch_size, fixed_batch=sess.fixed_batch)
    return scores


def predict_artifact(artifact: Artifact, x: np.ndarray, keras_model: Any | None = None) -> np.ndarray:
    """Scores of ``artifact`` on ``x`` (a Keras artifact needs its loaded model)."""
    if not spec(artifact.format).deployable:
        from edgekit.train.trainer import predict

        return predict(keras_model, x)
    return predict_file(str(artifact.path), artifact.format, x)
