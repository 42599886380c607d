"""The Keras format: .keras/.h5 files and SavedModel folders; the training format, not deployable.

Auditing loads the model through :func:`edgekit.models.loading.load_user_model` only after the
safety check (no code runs unless trusted); it is the one reader here that imports TensorFlow.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import ModelMeta
from edgekit.errors import ExportError
from edgekit.formats._audit import layer_row, summarise

_KERAS_WRAPPERS = ("QuantizeWrapper", "QuantizeWrapperV2", "PruneLowMagnitude")


def _keras_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and not type(layer).__name__.startswith(_KERAS_WRAPPERS):
            out.extend(_keras_layers(layer))
        else:
            out.append(layer)
    return out


def _keras_layer_row(layer: Any) -> dict[str, Any] | None:
    inner = getattr(layer, "layer", layer) if type(layer).__name__.startswith(_KERAS_WRAPPERS) else layer
    kind = type(inner).__name__
    kernels = [getattr(inner, a) for a in ("depthwise_kernel", "pointwise_kernel", "kernel") if hasattr(inner, a)]
    kernels = [k for k in kernels if k is not None]
    if not kernels:
        return None
    from edgekit.models.flops import layer_macs

    try:
        macs = layer_macs(inner, list(layer.input_shape), list(layer.output_shape))
    except (AttributeError, RuntimeError, TypeError):  # unbuilt or multiply-called layer
        macs = 0
    values = [np.asarray(k.numpy()) for k in kernels]
    n = sum(v.size for v in values)
    zeros = sum(int(np.count_nonzero(v == 0)) for v in values)
    bias = getattr(inner, "bias", None)
    row = layer_row(layer.name, kind, kernels[0].dtype.name, n, n, zeros, macs)
    row["bias_params"] = int(np.prod(bias.shape)) if bias is not None else 0
    return row


def audit(path: Path, *, trust_model: bool = False) -> dict[str, Any]:
    """What a Keras file holds; it passes :mod:`edgekit.models.safety` first (code is refused unless
    ``trust_model``)."""
    from edgekit.models.loading import load_user_model

    # The same safety check as --model: the configuration is read and judged before
    # anything is deserialised; Keras 3 files are rebuilt in tf_keras.
    model = load_user_model(path, trust=trust_model, verify_keras3=False).model

    def io_rows(tensors: list[Any]) -> list[dict[str, Any]]:
        return [{"name": t.name, "shape": [d if d is not None else None for d in t.shape], "dtype": t.dtype.name}
                for t in tensors]

    layers = _keras_layers(model)
    ops = Counter(type(getattr(layer, "layer", layer)).__name__ for layer in layers)
    params: Counter = Counter()
    for w in model.weights:
        params[w.dtype.name] += int(np.prod(w.shape))
    rows = [r for r in (_keras_layer_row(layer) for layer in layers) if r is not None]
    return summarise("keras", path, io_rows(model.inputs), io_rows(model.outputs), ops, params, rows, None)


def embed_metadata(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """Keras files carry no edgekit metadata (the run's artifact.json describes them)."""
    raise ExportError(f"{path}: metadata can only be embedded in .onnx or .tflite files")


def read_metadata_dict(path: Path) -> dict[str, Any] | None:
    """Keras files carry no edgekit metadata."""
    return None
