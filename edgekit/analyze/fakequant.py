"""Simulated int8 on a tf_keras model, layer by layer, in float arithmetic.

What a full-integer converter does to a weight layer is simulated the way
TFLite and ONNX Runtime's static S8S8 recipe do it: weights symmetric int8
(per output channel, or per tensor), the layer's input activation asymmetric
8-bit per tensor over the range seen on calibration data (always including 0).
Because per-channel scales absorb any per-channel factor, quantizing the
unfolded kernel equals quantizing the kernel with BatchNorm folded in.

:class:`FakeQuantModel` wraps every quantizable layer of a copy of the model so
that any subset of layers can be switched to int8 without rebuilding it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgekit._tf import keras, tf
from edgekit.models.files import copy_model

log = logging.getLogger(__name__)

QUANTIZABLE: tuple[str, ...] = ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D")
"""Weight layers whose int8 error is analysed (what the converters quantize with per-channel scales)."""

KERNELS: dict[str, tuple[int, ...]] = {
    # layer type → indices in get_weights() of the kernels that are quantized (biases stay int32 ≈ float)
    "Conv2D": (0,),
    "Dense": (0,),
    "DepthwiseConv2D": (0,),
    "SeparableConv2D": (0, 1),
}


def fake_quant_weight(kernel: np.ndarray, *, depthwise: bool = False, per_channel: bool = True) -> np.ndarray:
    """Symmetric int8 (−127..127) round trip of a kernel; per output channel (last axes) or per tensor.

    A depthwise kernel (h, w, in, multiplier) has one channel per (in, multiplier) pair.
    """
    w = np.asarray(kernel, np.float32)
    if per_channel and w.ndim >= 2:
        axes = (0, 1) if depthwise and w.ndim == 4 else tuple(range(w.ndim - 1))
        peak = np.abs(w).max(axis=axes, keepdims=True)
    else:
        peak = np.abs(w).max()
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


def activation_range(x: np.ndarray) -> tuple[float, float]:
    """Calibration range of an activation, widened to include 0 (as both converters do)."""
    return min(float(np.min(x)), 0.0), max(float(np.max(x)), 0.0)


def fake_quant_activation(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Asymmetric 8-bit round trip of an activation over [lo, hi] (256 levels, integer zero point)."""
    if hi <= lo:
        return np.asarray(x, np.float32)
    scale = (hi - lo) / 255.0
    zero = np.round(-lo / scale)
    q = np.clip(np.round(x / scale) + zero, 0, 255)
    return ((q - zero) * scale).astype(np.float32)


def quantized_weights(layer: Any, per_channel: bool = True) -> list[np.ndarray]:
    """``layer.get_weights()`` with its kernels replaced by their int8 round trip."""
    kind = type(layer).__name__
    weights = layer.get_weights()
    for i in KERNELS.get(kind, ()):
        depthwise = kind == "DepthwiseConv2D" or (kind == "SeparableConv2D" and i == 0)
        weights[i] = fake_quant_weight(weights[i], depthwise=depthwise, per_channel=per_channel)
    return weights


def snr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-noise ratio of ``approx`` against ``reference`` in dB (inf when identical)."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.square(ref - np.asarray(approx, np.float64)).sum())
    signal = float(np.square(ref).sum())
    if noise == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(max(signal, 1e-30) / noise))


def cosine(reference: np.ndarray, approx: np.ndarray) -> float:
    """Cosine similarity of two tensors, flattened (1.0 when both are zero)."""
    a, b = np.asarray(reference, np.float64).ravel(), np.asarray(approx, np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    return float(a @ b / max(na * nb, 1e-30))


def quantizable(model: Any) -> list[tuple[str, Any]]:
    """(qualified name, layer) of every weight layer int8 conversion quantizes, in graph order.

    Layers inside a nested Functional/Sequential model (a backbone used as one layer, called once,
    with one input) are reached too, named ``backbone/conv1``. A layer called more than once
    (shared weights) is left out: it has no single input to measure.
    """
    out: list[tuple[str, Any]] = []
    for layer in model.layers:
        calls = _calls(model, layer)
        if is_nested(layer):
            if calls == 1 and len(layer.inputs) == 1:
                out.extend((f"{layer.name}/{name}", inner) for name, inner in quantizable(layer))
            else:
                log.info("int8 analysis: nested model %s is called %d times or has several inputs; its layers are "
                         "left out", layer.name, calls)
            continue
        if type(layer).__name__ not in QUANTIZABLE or not layer.get_weights():
            continue
        if calls > 1:
            log.info("int8 analysis: %s is shared (called %d times); left out", layer.name, calls)
            continue
        out.append((layer.name, layer))
    return out


def quantizable_layers(model: Any) -> list[Any]:
    """The layers of :func:`quantizable` (their qualified names come from there)."""
    return [layer for _, layer in quantizable(model)]


def is_nested(layer: Any) -> bool:
    """Whether ``layer`` is a Functional/Sequential model used as a layer (not a subclassed model: no graph)."""
    return bool(getattr(layer, "_is_graph_network", False)) and hasattr(layer, "layers")


def find_layer(model: Any, name: str) -> Any:
    """The layer a qualified name of :func:`quantizable` names (``backbone/conv1``: conv1 inside backbone)."""
    for part in name.split("/"):
        model = model.get_layer(part)
    return model


def _own_input(model: Any, layer: Any) -> Any:
    """The input tensor of ``layer`` in ``model``'s own graph (not in a clone's)."""
    own: set[str] = getattr(model, "_network_nodes", set())
    for i, node in enumerate(layer._inbound_nodes):
        if f"{layer.name}_ib-{i}" in own:
            return node.input_tensors
    return layer.input


def calibration_inputs(model: Any, x: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Qualified layer name → that layer's input on ``x``, for every layer of :func:`quantizable`
    (a nested model's layers: from its own input, measured in the outer model first)."""
    k = keras()
    leaves = [(name, layer) for name, layer in quantizable(model) if "/" not in name]
    subs = [layer for layer in model.layers if is_nested(layer) and any(
        name.startswith(f"{layer.name}/") for name, _ in quantizable(model))]
    wanted = [_own_input(model, layer) for _, layer in leaves] + [_own_input(model, sub) for sub in subs]
    if not wanted:
        return {}
    arrays = k.Model(model.inputs, wanted).predict(x, batch_size=256, verbose=0)
    if len(wanted) == 1:
        arrays = [arrays]
    out = {f"{prefix}{name}": np.asarray(a, np.float32) for (name, _), a in zip(leaves, arrays)}
    for sub, a in zip(subs, arrays[len(leaves):]):
        out.update(calibration_inputs(sub, np.asarray(a, np.float32), f"{prefix}{sub.name}/"))
    return out


def _calls(model: Any, layer: Any) -> int:
    """How often ``model`` itself calls ``layer`` (nodes left over from other graphs, e.g. a clone, do not count)."""
    own = getattr(model, "_network_nodes", None)
    nodes = getattr(layer, "_inbound_nodes", [])
    if own is None:
        return len(nodes)
    return sum(1 for i in range(len(nodes)) if f"{layer.name}_ib-{i}" in own)


_PROBE: dict[str, type] = {}


def _probe_type() -> type:
    """A layer that fake-quantizes its input when switched on, then calls the wrapped layer."""
    if "probe" in _PROBE:
        return _PROBE["probe"]
    k, t = keras(), tf()

    class InputQuantProbe(k.layers.Layer):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, **kwargs: Any) -> None:
            super().__init__(name=f"{inner.name}_int8_probe", **kwargs)
            self.inner = inner
            self.on = t.Variable(0.0, trainable=False)
            self.lo = t.Variable(-1.0, trainable=False)
            self.hi = t.Variable(1.0, trainable=False)

        def call(self, x: Any) -> Any:
            quant = t.quantization.fake_quant_with_min_max_vars(x, self.lo, self.hi, num_bits=8)
            return self.inner(x + self.on * (quant - x))

    _PROBE["probe"] = InputQuantProbe
    return InputQuantProbe


def _all_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in model.layers:
        out.append(layer)
        if is_nested(layer):
            out.extend(_all_layers(layer))
    return out


class FakeQuantModel:
    """A copy of a model in which any set of quantizable layers runs as simulated int8."""

    def __init__(self, model: Any, calibration: np.ndarray, per_channel: bool = True) -> None:
        k = keras()
        self.per_channel = per_channel
        self.copy = copy_model(model)
        named = quantizable(self.copy)
        self.names = [name for name, _ in named]
        self.inputs = calibration_inputs(self.copy, calibration) if named else {}
        self.ranges = {name: activation_range(x) for name, x in self.inputs.items()}
        self.float_weights = {name: layer.get_weights() for name, layer in named}
        self.int8_weights = {name: quantized_weights(layer, per_channel) for name, layer in named}
        self.layers = dict(named)
        by_layer = {id(layer): name for name, layer in named}
        wrapper = _probe_type()
        self.probes: dict[str, Any] = {}

        def wrap(layer: Any) -> Any:
            if is_nested(layer) and any(id(inner) in by_layer for inner in _all_layers(layer)):
                return k.models.clone_model(layer, clone_function=wrap)  # its layers, probed, in a new graph
            if id(layer) not in by_layer:
                return layer
            p = wrapper(layer)
            self.probes[by_layer[id(layer)]] = p
            return p

        self.model = k.models.clone_model(self.copy, clone_function=wrap)
        for name, p in self.probes.items():
            lo, hi = self.ranges[name]
            p.lo.assign(lo)
            p.hi.assign(hi)

    def set_int8(self, names: Iterable[str]) -> None:
        """Run exactly ``names`` as int8 (weights and input); every other layer in float."""
        chosen = set(names)
        unknown = chosen - set(self.names)
        if unknown:
            raise KeyError(f"not a quantizable layer: {sorted(unknown)[0]}")
        for name in self.names:
            on = name in chosen
            self.layers[name].set_weights(self.int8_weights[name] if on else self.float_weights[name])
            self.probes[name].on.assign(1.0 if on else 0.0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        from edgekit.train.trainer import predict

        return predict(self.model, x)

    def layer_error(self, name: str) -> tuple[float, float]:
        """(SNR dB, cosine) of this layer's output with int8 weights and input against float, on its float
        calibration inputs."""
        layer, x = self.layers[name], self.inputs[name]
        self.set_int8(())
        ref = np.asarray(layer(x), np.float32)
        layer.set_weights(self.int8_weights[name])
        try:
            approx = np.asarray(layer(fake_quant_activation(x, *self.ranges[name])), np.float32)
        finally:
            layer.set_weights(self.float_weights[name])
        return snr_db(ref, approx), cosine(ref, approx)
