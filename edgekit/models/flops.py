"""Parameter and multiply-accumulate (MAC) counts, for one image: the one place MACs are counted.

:func:`kernel_macs` is the rule for every format (Keras layers, TFLite and ONNX kernels);
:func:`layer_macs` applies it to a tf_keras layer and the shapes it is given.

MACs count the multiplications of convolutions and dense layers (batch 1);
bias additions, activations, normalisation and pooling count 0 MACs.
BatchNormalization contributes parameters only. Nested models are counted
layer by layer.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

Shape = Sequence[int | None]


def _known(d: Any) -> int:
    """A dimension as an int; an unknown one (None, a symbolic name, <= 0) counts as 1."""
    try:
        v = operator.index(d)
    except TypeError:
        return 1
    return v if v > 0 else 1


def _prod(dims: Sequence[int]) -> int:
    return int(math.prod(int(d) for d in dims))


def _batch1(shape: Sequence[Any]) -> list[int]:
    """A shape for one sample: the batch axis and unknown dims become 1."""
    out = [_known(d) for d in shape]
    if out:
        out[0] = 1
    return out


def kernel_macs(rule: str, out_shape: Sequence[Any], w_shape: Sequence[Any], act_shape: Sequence[Any], *,
                trans_b: int = 0) -> int:
    """MACs for one sample of a conv/dense-like op: output elements × the kernel elements each one reads.

    ``rule`` names the kernel layout (Keras: ``conv_hwio``, ``depthwise_hwcm``, ``dense_io``; TFLite:
    ``conv_ohwi``, ``conv3d``, ``depthwise_1hwc``, ``dense_oi``, ``tconv_ohwi``; ONNX: ``conv_oihw``,
    ``tconv_iohw``, ``gemm``; all: ``matmul``); ``act_shape`` is the activation input (a transposed
    convolution scatters every input pixel through the kernel). This is the one MAC rule of edgekit.
    """
    out = _batch1(out_shape)
    w = [_known(d) for d in w_shape]
    if not out:
        return 0
    if rule == "conv_hwio" and w:  # Keras [k..., I/groups, O]
        return _prod(out[1:]) * _prod(w[:-1])
    if rule == "depthwise_hwcm" and len(w) == 4:  # Keras [H, W, C, multiplier]
        return _prod(out[1:]) * w[0] * w[1]
    if rule == "dense_io" and len(w) == 2:  # Keras [I, O]
        return _prod(out[1:]) * w[0]
    if rule == "conv_ohwi" and len(w) == 4:  # TFLite [O, H, W, I]
        return _prod(out[1:]) * _prod(w[1:])
    if rule == "conv3d" and len(w) == 5:  # TFLite [kd, kh, kw, in, out]
        return _prod(out[1:]) * _prod(w[:-1])
    if rule == "depthwise_1hwc" and len(w) == 4:  # TFLite [1, H, W, C]
        return _prod(out[1:]) * w[1] * w[2]
    if rule == "dense_oi" and len(w) == 2:  # TFLite [O, I]
        return _prod(out[1:-1]) * w[0] * w[1]
    if rule == "tconv_ohwi" and len(w) == 4:
        return _prod(_batch1(act_shape)[1:]) * _prod(w[:3])
    if rule == "conv_oihw" and w:  # ONNX [O, I/g, k...]
        return _prod(out[1:]) * _prod(w[1:])
    if rule == "tconv_iohw" and w:  # ONNX [I, O/g, k...]
        return _prod(_batch1(act_shape)[1:]) * _prod(w[1:])
    if rule == "gemm" and len(w) >= 2:
        return _prod(out[1:]) * (w[1] if trans_b else w[0])
    if rule == "matmul":
        a = _batch1(act_shape)
        k = a[-1] if len(a) > 1 else (w[0] if w else 0)
        return _prod(out[1:]) * k
    return 0


def _dims(shape: Shape) -> list[int]:
    """The non-batch dimensions of a tensor shape (unknown sizes count as 1)."""
    return [int(d) if d is not None else 1 for d in list(shape)[1:]]


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
    out = [1, *_dims(output_shape)]
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return kernel_macs("depthwise_hwcm", out, [kh, kw, c_in, c_out // max(c_in, 1)], input_shape)
    if kind == "SeparableConv2D":
        kh, kw = layer.kernel_size
        mid = c_in * int(layer.depth_multiplier)
        return (kernel_macs("depthwise_hwcm", [*out[:-1], mid], [kh, kw, c_in, int(layer.depth_multiplier)],
                            input_shape)
                + kernel_macs("conv_hwio", out, [1, 1, mid, c_out], input_shape))
    if kind in ("Conv2D", "Conv1D", "Conv3D"):
        groups = int(getattr(layer, "groups", 1) or 1)
        return kernel_macs("conv_hwio", out, [*(int(k) for k in layer.kernel_size), c_in // groups, c_out], input_shape)
    if kind == "Dense":
        return kernel_macs("dense_io", out, [c_in, c_out], input_shape)
    return 0


def _inner_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in model.layers:
        nested = type(layer).__name__ in ("Sequential", "Functional", "Model")
        if hasattr(layer, "layers") and hasattr(layer, "inputs") and nested:
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
