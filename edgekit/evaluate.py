"""Scores of any artifact on a batch of images: Keras in-process, TFLite/ONNX through
the same session classes the benchmark runner uses."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgekit._tf import quiet_native_output
from edgekit.artifact import Artifact
from edgekit.bench.runner import LiteRTSession, OnnxSession, evaluate
from edgekit.errors import VerificationError


def predict_file(path: str, fmt: str, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Scores (N × classes) of a .tflite or .onnx file on ``x``, on this machine's CPU."""
    threads = os.cpu_count() or 1
    try:
        if fmt == "onnx":
            sess: Any = OnnxSession(path, threads=threads, providers=["CPUExecutionProvider"], provider_options={}, strict=False)
        elif fmt == "tflite":
            with quiet_native_output():  # LiteRT announces its XNNPACK delegate on stderr
                sess = LiteRTSession(path, threads=threads)
        else:
            raise VerificationError(f"{path}: cannot run format {fmt!r}")
    except Exception as e:  # SessionError and friends
        raise VerificationError(f"{path}: cannot be opened for verification ({e})") from None
    _, scores = evaluate(sess.predict, x, np.zeros(len(x), np.int64), batch=batch_size, fixed_batch=sess.fixed_batch)
    return scores


def predict_artifact(artifact: Artifact, x: np.ndarray, keras_model: Any | None = None) -> np.ndarray:
    """Scores of ``artifact`` on ``x`` (a Keras artifact needs its loaded model)."""
    if artifact.format == "keras":
        from edgekit.train.trainer import predict

        return predict(keras_model, x)
    return predict_file(str(artifact.path), artifact.format, x)
