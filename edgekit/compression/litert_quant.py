"""int8 activations with int4 weights through LiteRT's own quantizer (``litert-quantizer``, ex AI Edge Quantizer).

The TFLite converter's integer path stops at int8 weights; LiteRT Quantizer rewrites a float TFLite file with a
recipe: here static int8 activations (calibrated, asymmetric, per tensor) and int8 weights for every op it
supports, then int4 weights (symmetric, per output channel, or blockwise where its policy admits that) for the ops
that carry nearly all the bytes, ``CONV_2D`` and ``FULLY_CONNECTED``. LiteRT's CPU kernels (XNNPACK and the
builtin ones) run int4-weight convolutions and dense layers with int8 activations; the model's input and output
become int8 (edgekit's runners quantize a float input with the file's own scale, as for ``int8_io``).

An op whose blockwise int4 the quantizer's policy rejects gets per-channel int4, and the record says which
granularity each op got: LiteRT Quantizer 0.11 admits blockwise int4 weights only with float activations (dynamic or
weight-only recipes), so with int8 activations every op is per-channel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.errors import ModelError, UsageError

log = logging.getLogger(__name__)

GRANULARITIES = ("channelwise", "blockwise_32", "blockwise_64", "blockwise_128")
"""int4 weight granularities: one scale per output channel, or per block of that many input weights."""
INT4_OPS = ("CONV_2D", "FULLY_CONNECTED")
"""The ops given int4 weights: the convolutions and dense layers."""


def _quantizer() -> Any:
    try:
        import litert_quantizer
    except ImportError as e:
        raise UsageError(f"ptq-int4 needs LiteRT Quantizer: pip install litert-quantizer ({e})") from None
    return litert_quantizer


def quantize_int4(fp32_tflite: bytes, calibration: np.ndarray, *, granularity: str = "channelwise",
                  ops: Sequence[str] = INT4_OPS) -> tuple[bytes, dict[str, Any]]:
    """(the int8-activation, int4-weight TFLite file, a record of what each op got) from a float TFLite file,
    calibrated on ``calibration`` (images, batch axis first)."""
    if granularity not in GRANULARITIES:
        raise UsageError(f"ptq_int4.granularity: must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    lq = _quantizer()
    from litert_quantizer import qtyping
    from litert_quantizer.utils import tfl_interpreter_utils

    interp = tfl_interpreter_utils.create_tfl_interpreter(fp32_tflite)
    signatures = interp.get_signature_list()
    if len(signatures) != 1 or len(next(iter(signatures.values()))["inputs"]) != 1:
        raise ModelError(f"ptq-int4 needs a TFLite file with one signature of one input, got {signatures}")
    sig, spec = next(iter(signatures.items()))
    q = lq.Quantizer(bytearray(fp32_tflite))
    q.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 8, 8)
    got: dict[str, str] = {}
    for op in ops:
        op_name = qtyping.TFLOperationName[op]
        for gran in dict.fromkeys((granularity, "channelwise")):
            try:
                q.add_static_config(".*", op_name, 8, 4, qtyping.QuantGranularity[gran.upper()])
            except ValueError as e:  # the quantizer's policy has no such config for this op
                log.info("LiteRT Quantizer: no %s int4 for %s (%s)", gran, op, str(e).splitlines()[0][:120])
                continue
            got[op] = gran
            break
    data = {sig: [{spec["inputs"][0]: np.asarray(x, np.float32)[None]} for x in calibration]}
    result = q.calibrate(data, num_threads=1)
    out = bytes(q.quantize(result, enable_progress_report=False).quantized_model)
    return out, {"weights": {op: f"int4 {g}" for op, g in got.items()}, "requested": granularity,
                 "activations": "int8 per tensor",
                 "other_weights": "int8 per channel", "calibration_samples": len(calibration),
                 "quantizer": f"litert-quantizer {_version()}"}


def with_live_channels(model: Any) -> Any:
    """``model``, or a copy in which every all-zero output channel of a Conv/Dense kernel holds one tiny weight.

    Magnitude pruning can zero a whole output channel; LiteRT Quantizer then gives it a weight scale of 0 and its
    bias (bias ÷ (input scale × weight scale)) becomes NaN, cast to an arbitrary int32. One weight of 1e-6 × the
    layer's largest keeps the scale finite and changes the channel's output by about 1e-6 of an input.
    """
    dead = []
    for layer in model.layers:
        weights = layer.get_weights()
        if type(layer).__name__ in ("Conv2D", "Dense") and weights:
            kernel = weights[0].reshape(-1, weights[0].shape[-1])
            if np.any(np.abs(kernel).sum(axis=0) == 0) and np.abs(kernel).max() > 0:
                dead.append(layer.name)
    if not dead:
        return model
    from edgekit._tf import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name in dead:
        layer = copy.get_layer(name)
        weights = layer.get_weights()
        flat = weights[0].reshape(-1, weights[0].shape[-1])
        tiny = np.float32(1e-6 * np.abs(flat).max())
        flat[0, np.abs(flat).sum(axis=0) == 0] = tiny
        layer.set_weights([flat.reshape(weights[0].shape), *weights[1:]])
    log.info("int4: %s had all-zero output channels; each got one weight of 1e-6 × the layer's largest",
             ", ".join(dead))
    return copy


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litert-quantizer")
    except PackageNotFoundError:
        return "?"


def weight_precisions(tflite: bytes) -> dict[str, int]:
    """Weight dtype → how many weight ops (conv, depthwise, dense) carry it, read from the file."""
    from edgekit.compression.mixed import WEIGHT_OPS_TFLITE
    from edgekit.export.tflite_reader import parse_tflite

    graph = parse_tflite(tflite).subgraphs[0]
    counts: dict[str, int] = {}
    for op in graph.operators:
        if op.op in WEIGHT_OPS_TFLITE and len(op.inputs) > 1 and op.inputs[1] >= 0:
            dtype = graph.tensors[op.inputs[1]].dtype
            counts[dtype] = counts.get(dtype, 0) + 1
    return counts
