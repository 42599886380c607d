"""Parameter and multiply-accumulate (MAC) counts of tf_keras models, for one image.

MACs count the multiplications of convolutions and dense layers (batch 1);
bias additions, activations, normalisation and pooling count 0 MACs.
BatchNormalization contributes parameters only. Nested models are counted
layer by layer.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

Shape = Sequence[int | None]


def _dims(shape: Shape) -> list[int]:
    """The non-batch dimensions of a tensor shape (unknown sizes count as 1)."""
    return [int(d) if d is not None else 1 for d in list(shape)[1:]]


def _spatial(shape: Shape) -> int:
    """Positions a per-channel operation visits: the product of all but the channel axis."""
    return math.prod(_dims(shape)[:-1]) if len(_dims(shape)) > 1 else 1


def layer_macs(layer: Any, input_shape: Shape, output_shape: Shape) -> int:
    """MACs of one layer for one image, given its (batched) input and output shapes.

    The shapes are passed in, rather than read from the layer, so that
    structured pruning can ask what a layer would cost with fewer channels.
    """
    kind = type(layer).__name__
    if not input_shape or not output_shape:
        return 0
    c_in = _dims(input_shape)[-1]
    c_out = _dims(output_shape)[-1]
    positions = _spatial(output_shape)
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return positions * c_out * kh * kw
    if kind == "SeparableConv2D":
        kh, kw = layer.kernel_size
        mid = c_in * int(layer.depth_multiplier)
        return positions * mid * kh * kw + positions * mid * c_out
    if kind in ("Conv2D", "Conv1D", "Conv3D"):
        kernel = math.prod(int(k) for k in layer.kernel_size)
        groups = int(getattr(layer, "groups", 1) or 1)
        return positions * c_out * kernel * (c_in // groups)
    if kind == "Dense":
        return positions * c_in * c_out
    return 0


def _inner_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in model.layers:
        if hasattr(layer, "layers") and hasattr(layer, "inputs") and type(layer).__name__ in ("Sequential", "Functional", "Model"):
            out.extend(_inner_layers(layer))
        else:
            out.append(layer)
    return out


def _shape(tensor_shape: Any) -> list[int | None]:
    if isinstance(tensor_shape, list):  # several inputs/outputs: use the first
        tensor_shape = tensor_shape[0]
    return list(tensor_shape)


def layer_costs(model: Any) -> list[dict[str, Any]]:
    """One row per layer: name, class, params, MACs (batch 1) and output shape (without batch)."""
    rows: list[dict[str, Any]] = []
    for layer in _inner_layers(model):
        try:
            in_shape = _shape(layer.input_shape)
            out_shape = _shape(layer.output_shape)
        except (AttributeError, RuntimeError):  # an unbuilt or multiply-called layer
            in_shape, out_shape = [], []
        rows.append(
            {
                "name": layer.name,
                "class": type(layer).__name__,
                "params": int(layer.count_params()) if layer.built else 0,
                "macs": int(layer_macs(layer, in_shape, out_shape)),
                "output_shape": [d if d is None else int(d) for d in out_shape[1:]],
            }
        )
    return rows


def count_macs(model: Any) -> int:
    """Multiply-accumulates for one image through ``model``."""
    return sum(row["macs"] for row in layer_costs(model))


def count_params(model: Any) -> int:
    """Parameters of ``model`` (trainable and not, e.g. BatchNorm moving statistics)."""
    return int(model.count_params())
