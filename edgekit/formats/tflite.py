"""The TFLite format: flatbuffer files run by LiteRT; audited without TensorFlow."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import ModelMeta
from edgekit.errors import ModelError
from edgekit.formats._audit import count_zeros, kernel_macs, layer_row, prod, summarise

# op → (kernel input index, bias input index or None, MAC rule)
_TFLITE_LAYERS: dict[str, tuple[int, int | None, str]] = {
    "CONV_2D": (1, 2, "conv_ohwi"),
    "DEPTHWISE_CONV_2D": (1, 2, "depthwise_1hwc"),
    "FULLY_CONNECTED": (1, 2, "dense_oi"),
    "TRANSPOSE_CONV": (1, 3, "tconv_ohwi"),
    "CONV_3D": (1, 2, "conv3d"),
    "BATCH_MATMUL": (1, None, "matmul"),
}
_TFLITE_PASS_THROUGH = ("DEQUANTIZE", "DENSIFY")


def _tflite_values(model: Any, t: Any) -> np.ndarray:
    data = model.buffer_bytes(t.buffer)
    if t.dtype in ("int4", "uint4"):  # two values per byte, low nibble first
        b = np.frombuffer(data, np.uint8)
        lo, hi = (b & 0x0F).astype(np.int8), (b >> 4).astype(np.int8)
        v = np.stack([lo, hi], axis=-1).reshape(-1)
        return np.where(v > 7, v - 16, v) if t.dtype == "int4" else v
    if t.dtype in ("string", "resource", "variant", "bfloat16") or not data:
        return np.frombuffer(data, np.uint8)
    return np.frombuffer(data, np.dtype(t.dtype))


def _tflite_stored_elements(model: Any, t: Any) -> int:
    if t.sparsity is not None or not t.shape:
        return int(_tflite_values(model, t).size)
    return prod(t.shape)


def audit(path: Path, *, trust_model: bool = False) -> dict[str, Any]:
    """What a .tflite file really contains (read with edgekit's own flatbuffer reader; no TensorFlow)."""
    from edgekit.export.tflite_reader import read_tflite

    model = read_tflite(path)
    if not model.subgraphs:
        raise ModelError(f"{path}: TFLite model has no subgraph")
    sg = model.subgraphs[0]
    tensors = sg.tensors

    def io_row(i: int) -> dict[str, Any]:
        t = tensors[i]
        return {"name": t.name, "shape": t.shape_signature or t.shape, "dtype": t.dtype}

    ops: Counter = Counter()
    for g in model.subgraphs:
        ops.update(op.op for op in g.operators)
    params: Counter = Counter()
    for g in model.subgraphs:
        for t in g.tensors:
            if t.buffer and model.buffer_spans[t.buffer][1] and t.buffer not in model.metadata.values():
                params[t.dtype] += _tflite_stored_elements(model, t)

    producer = {o: op for op in sg.operators for o in op.outputs}

    def stored(t_index: int, depth: int = 0) -> Any:
        t = tensors[t_index]
        if t.buffer and model.buffer_spans[t.buffer][1]:
            return t
        op = producer.get(t_index)
        if op is not None and op.op in _TFLITE_PASS_THROUGH and depth < 4 and op.inputs:
            return stored(op.inputs[0], depth + 1)
        return None

    layers = []
    for op in sg.operators:
        if op.op not in _TFLITE_LAYERS:
            continue
        wi, bi, rule = _TFLITE_LAYERS[op.op]
        if len(op.inputs) <= wi or op.inputs[wi] < 0:
            continue
        w_used = tensors[op.inputs[wi]]
        w = stored(op.inputs[wi])
        in_shape = tensors[op.inputs[0]].shape if op.inputs[0] >= 0 else []
        other = tensors[op.inputs[2]].shape if rule == "tconv_ohwi" and len(op.inputs) > 2 else []
        macs = kernel_macs(rule, tensors[op.outputs[0]].shape, w_used.shape,
                           other if rule == "tconv_ohwi" else in_shape)
        if w is None:  # activation x activation (e.g. BATCH_MATMUL): compute, no weights
            layers.append(layer_row(tensors[op.outputs[0]].name, op.op, None, 0, 0, 0, macs))
            continue
        dense_n = prod(w_used.shape)
        values = _tflite_values(model, w)
        zp, axis = None, 0
        if w.quantization is not None and w.quantization.zero_point and w.dtype not in ("float32", "float16"):
            zp, axis = np.asarray(w.quantization.zero_point), w.quantization.quantized_dimension
        if w.sparsity is not None:  # stored values only; everything not stored is zero
            zeros = (dense_n - values.size) + count_zeros(values, zp if zp is not None and zp.size == 1 else None)
        else:
            zeros = count_zeros(values.reshape(w.shape) if values.size == prod(w.shape) else values, zp, axis)
        bias_n = 0
        if bi is not None and len(op.inputs) > bi and op.inputs[bi] >= 0:
            b = stored(op.inputs[bi])
            bias_n = _tflite_stored_elements(model, b) if b is not None else 0
        layer = layer_row(tensors[op.outputs[0]].name, op.op, w.dtype, dense_n, values.size, zeros, macs)
        layer["bias_params"] = bias_n
        layer["sparse_encoding"] = w.sparsity is not None
        layers.append(layer)

    return summarise("tflite", path, [io_row(i) for i in sg.inputs], [io_row(i) for i in sg.outputs], ops, params,
                      layers, read_metadata_dict(path))


def embed_metadata(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """Embed ``meta`` in the file (see :mod:`edgekit.export.metadata`; callers use its ``embed_metadata``)."""
    from edgekit.export.metadata import embed_tflite

    embed_tflite(path, meta, artifact_id)


def read_metadata_dict(path: Path) -> dict[str, Any] | None:
    """The embedded edgekit metadata document, or None."""
    from edgekit.export.metadata import read_tflite_dict

    return read_tflite_dict(path)
