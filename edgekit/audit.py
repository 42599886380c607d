"""What a model file really contains: I/O, ops, MACs, weight storage precision, measured sparsity.

:func:`audit_model` reads the file itself — a model *called* int8 whose weights
are stored as float is reported as float. Counting rules:

* **parameters** are the elements of every constant tensor in the file (ONNX
  initializers and ``Constant`` nodes, TFLite tensors with a data buffer, Keras
  weights), grouped by the dtype they are *stored* in; TFLite sparse tensors count
  their stored values only. ``int8_share`` is the share stored as int8/uint8/int4.
* **layers** are the conv/dense-like ops (Conv, Gemm, MatMul, Dense, depthwise…);
  their kernel is traced back through Dequantize/Densify/Cast to what is stored.
* **sparsity** is the fraction of kernel elements that are exactly zero (for
  quantized kernels: the stored value equals the zero point).
* **MACs** are multiply-accumulates of those layers for one sample (batch = 1).

Reading .onnx and .tflite files never imports TensorFlow; Keras files do.
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from edgekit.artifact import format_of
from edgekit.errors import ModelError

INT8_DTYPES = ("int8", "uint8", "int4", "uint4")
FLOAT_PRECISIONS: dict[str, str] = {"float32": "fp32", "float16": "fp16", "bfloat16": "fp16"}


# --------------------------------------------------------------------------- shared helpers


def gzip_bytes(path: str | Path) -> int:
    """Size of ``path`` after gzip -9 (a folder: the sum over its files)."""
    p = Path(path)
    if p.is_dir():
        return sum(gzip_bytes(f) for f in sorted(p.rglob("*")) if f.is_file())

    class _Count(io.RawIOBase):
        n = 0

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.n += len(b)
            return len(b)

    sink = _Count()
    with open(p, "rb") as src, gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            gz.write(chunk)
    return sink.n


def _prod(dims: Iterable[int]) -> int:
    return int(math.prod(int(d) for d in dims))


def _batch1(shape: list[Any]) -> list[int]:
    """A shape for one sample: the batch axis and unknown dims become 1."""
    out = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else 1 for d in shape]
    if out:
        out[0] = 1
    return out


def _count_zeros(values: np.ndarray, zero_point: np.ndarray | None = None, axis: int = 0) -> int:
    """Elements whose real value is zero: ``q == zero_point`` when quantized, ``w == 0`` otherwise."""
    if zero_point is None or zero_point.size == 0:
        return int(np.count_nonzero(values == 0))
    zp = np.asarray(zero_point).astype(np.int64)
    v = values.astype(np.int64)
    if zp.size > 1 and v.ndim:
        shape = [1] * v.ndim
        shape[axis] = zp.size
        zp = zp.reshape(shape)
    else:
        zp = zp.reshape(())
    return int(np.count_nonzero(v == zp))


def _layer(name: str, op: str, dtype: str | None, params: int, stored: int, zeros: int, macs: int) -> dict[str, Any]:
    return {
        "name": name,
        "op": op,
        "weight_dtype": dtype,
        "params": int(params),
        "stored_elements": int(stored),
        "zeros": int(zeros),
        "sparsity": round(zeros / params, 6) if params else 0.0,
        "macs": int(macs),
    }


def _summarise(fmt: str, path: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], ops: Counter,
               params_by_dtype: Counter, layers: list[dict[str, Any]], metadata: dict[str, Any] | None) -> dict[str, Any]:
    total = sum(params_by_dtype.values())
    kernel = sum(layer["params"] for layer in layers)
    zeros = sum(layer["zeros"] for layer in layers)
    int8 = sum(n for d, n in params_by_dtype.items() if d in INT8_DTYPES)
    return {
        "path": str(path),
        "format": fmt,
        "bytes": _size(path),
        "gzip_bytes": gzip_bytes(path),
        "inputs": inputs,
        "outputs": outputs,
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "macs": int(sum(layer["macs"] for layer in layers)),
        "params": {
            "total": int(total),
            "by_dtype": {d: {"count": int(n), "share": round(n / total, 6) if total else 0.0}
                         for d, n in sorted(params_by_dtype.items(), key=lambda kv: -kv[1])},
        },
        "int8_share": round(int8 / total, 6) if total else 0.0,
        "precision": _precision({layer["weight_dtype"] for layer in layers if layer["weight_dtype"]}),
        "kernel_params": int(kernel),
        "kernel_zeros": int(zeros),
        "sparsity": round(zeros / kernel, 6) if kernel else 0.0,
        "layers": layers,
        "metadata": metadata,
    }


def _precision(kernel_dtypes: set[str]) -> str:
    """The measured precision label of a model from its kernels' storage dtypes."""
    labels = {"int8" if d in INT8_DTYPES else FLOAT_PRECISIONS.get(d, d) for d in kernel_dtypes}
    if len(labels) == 1:
        return labels.pop()
    return "mixed" if labels else "unknown"


def _size(path: Path) -> int:
    from edgekit.fsutil import file_bytes

    return file_bytes(path)


def audit_model(path: str | Path, *, trust_model: bool = False) -> dict[str, Any]:
    """Audit an .onnx, .tflite or Keras (.keras/.h5/SavedModel) file; see the module docstring.

    A Keras file passes :mod:`edgekit.models.safety` first: one that holds code (a Lambda,
    a custom class) is refused with a ModelError unless ``trust_model``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such model file")
    fmt = format_of(p)
    if fmt == "tflite":
        return _audit_tflite(p)
    if fmt == "onnx":
        return _audit_onnx(p)
    return _audit_keras(p, trust_model)


# --------------------------------------------------------------------------- TFLite

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
    return _prod(t.shape)


def _tflite_macs(rule: str, out_shape: list[int], w_shape: list[int], in_shape: list[int], other: list[int]) -> int:
    out = _batch1(out_shape)
    if rule == "conv_ohwi" and len(w_shape) == 4:
        return _prod(out[1:]) * _prod(w_shape[1:])
    if rule == "conv3d" and len(w_shape) == 5:  # [kd, kh, kw, in, out]
        return _prod(out[1:]) * _prod(w_shape[:-1])
    if rule == "depthwise_1hwc" and len(w_shape) == 4:
        return _prod(out[1:]) * w_shape[1] * w_shape[2]
    if rule == "dense_oi" and len(w_shape) == 2:
        return _prod(out[1:-1]) * w_shape[0] * w_shape[1]
    if rule == "tconv_ohwi" and len(w_shape) == 4:
        return _prod(_batch1(other)[1:]) * _prod(w_shape[:3])
    if rule == "matmul" and in_shape:
        return _prod(out[1:]) * int(in_shape[-1])
    return 0


def _audit_tflite(path: Path) -> dict[str, Any]:
    from edgekit.export.metadata import read_metadata_dict
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
        macs = _tflite_macs(rule, tensors[op.outputs[0]].shape, w_used.shape, in_shape, other)
        if w is None:  # activation x activation (e.g. BATCH_MATMUL): compute, no weights
            layers.append(_layer(tensors[op.outputs[0]].name, op.op, None, 0, 0, 0, macs))
            continue
        dense_n = _prod(w_used.shape)
        values = _tflite_values(model, w)
        zp, axis = None, 0
        if w.quantization is not None and w.quantization.zero_point and w.dtype not in ("float32", "float16"):
            zp, axis = np.asarray(w.quantization.zero_point), w.quantization.quantized_dimension
        if w.sparsity is not None:  # stored values only; everything not stored is zero
            zeros = (dense_n - values.size) + _count_zeros(values, zp if zp is not None and zp.size == 1 else None)
        else:
            zeros = _count_zeros(values.reshape(w.shape) if values.size == _prod(w.shape) else values, zp, axis)
        bias_n = 0
        if bi is not None and len(op.inputs) > bi and op.inputs[bi] >= 0:
            b = stored(op.inputs[bi])
            bias_n = _tflite_stored_elements(model, b) if b is not None else 0
        layer = _layer(tensors[op.outputs[0]].name, op.op, w.dtype, dense_n, values.size, zeros, macs)
        layer["bias_params"] = bias_n
        layer["sparse_encoding"] = w.sparsity is not None
        layers.append(layer)

    return _summarise("tflite", path, [io_row(i) for i in sg.inputs], [io_row(i) for i in sg.outputs], ops, params,
                      layers, read_metadata_dict(path))


# --------------------------------------------------------------------------- ONNX

# op → (kernel input index, bias input index or None, MAC rule)
_ONNX_LAYERS: dict[str, tuple[int, int | None, str]] = {
    "Conv": (1, 2, "conv_oihw"),
    "ConvInteger": (1, None, "conv_oihw"),
    "QLinearConv": (3, 8, "conv_oihw"),
    "ConvTranspose": (1, 2, "tconv_iohw"),
    "Gemm": (1, 2, "gemm"),
    "MatMul": (1, None, "matmul"),
    "MatMulInteger": (1, None, "matmul"),
    "QLinearMatMul": (3, None, "matmul"),
}
_ONNX_PASS_THROUGH = ("Cast", "Transpose", "Reshape", "Identity", "Unsqueeze", "Squeeze", "Flatten")


def _onnx_dtype(data_type: int) -> str:
    import onnx

    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).name
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.DataType.Name(data_type).lower()


def _onnx_shape(value_info: Any) -> list[Any]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _audit_onnx(path: Path) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    from edgekit.export.metadata import read_metadata_dict

    try:
        model = onnx.load(str(path))
    except Exception as e:  # DecodeError, ValueError, OSError
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort: MACs may then be 0
        inferred = model
    graph = model.graph
    shapes = {vi.name: _onnx_shape(vi) for vi in (*inferred.graph.value_info, *inferred.graph.input,
                                                   *inferred.graph.output)}
    consts: dict[str, Any] = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = a.t
    for name, t in consts.items():
        shapes.setdefault(name, list(t.dims))

    ops: Counter = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in graph.node)
    params: Counter = Counter()
    for t in consts.values():
        params[_onnx_dtype(t.data_type)] += _prod(t.dims)
    producer = {o: n for n in graph.node for o in n.output}

    def stored(name: str, depth: int = 0) -> tuple[Any, np.ndarray | None, int] | None:
        """(stored tensor, zero point, channel axis) behind tensor ``name``, if it is a constant."""
        if name in consts:
            return consts[name], None, 0
        node = producer.get(name)
        if node is None or depth > 4 or not node.input:
            return None
        if node.op_type == "DequantizeLinear":
            base = stored(node.input[0], depth + 1)
            if base is None:
                return None
            zp = numpy_helper.to_array(consts[node.input[2]]) if len(node.input) > 2 and node.input[2] in consts else None
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            return base[0], zp, axis
        if node.op_type in _ONNX_PASS_THROUGH:
            return stored(node.input[0], depth + 1)
        return None

    def quant_zp(node: Any, wi: int) -> np.ndarray | None:
        # QLinearConv/QLinearMatMul carry the weight zero point as input wi+2; *Integer ops as input 3
        zi = wi + 2 if node.op_type.startswith("QLinear") else 3 if node.op_type.endswith("Integer") else None
        if zi is not None and len(node.input) > zi and node.input[zi] in consts:
            return numpy_helper.to_array(consts[node.input[zi]])
        return None

    layers = []
    for node in graph.node:
        if node.op_type not in _ONNX_LAYERS or node.domain not in ("", "ai.onnx"):
            continue
        wi, bi, rule = _ONNX_LAYERS[node.op_type]
        if rule == "matmul" and len(node.input) > wi and stored(node.input[wi]) is None and stored(node.input[0]):
            wi = 0  # MatMul(W, x)
        if len(node.input) <= wi:
            continue
        found = stored(node.input[wi])
        a_shape = shapes.get(node.input[0 if wi else 1], [])
        w_shape = shapes.get(node.input[wi], [])
        macs = _onnx_macs(node, rule, shapes.get(node.output[0], []), w_shape, a_shape)
        name = node.name or node.output[0]
        if found is None:
            layers.append(_layer(name, node.op_type, None, 0, 0, 0, macs))
            continue
        tensor, zp, axis = found
        values = numpy_helper.to_array(tensor)
        if zp is None:
            zp = quant_zp(node, wi)
            axis = 0
        zeros = _count_zeros(values, zp if values.dtype.kind in "iu" else None, axis)
        bias_n = 0
        if bi is not None and len(node.input) > bi and node.input[bi]:
            b = stored(node.input[bi])
            bias_n = _prod(b[0].dims) if b is not None else 0
        layer = _layer(name, node.op_type, _onnx_dtype(tensor.data_type), values.size, values.size, zeros, macs)
        layer["bias_params"] = bias_n
        layers.append(layer)

    def io_row(vi: Any) -> dict[str, Any]:
        return {"name": vi.name, "shape": _onnx_shape(vi), "dtype": _onnx_dtype(vi.type.tensor_type.elem_type)}

    inputs = [io_row(vi) for vi in graph.input if vi.name not in consts]
    return _summarise("onnx", path, inputs, [io_row(vi) for vi in graph.output], ops, params, layers,
                      read_metadata_dict(path))


def _onnx_macs(node: Any, rule: str, out_shape: list[Any], w_shape: list[Any], a_shape: list[Any]) -> int:
    out = _batch1(out_shape)
    w = [int(d) if isinstance(d, int) and d > 0 else 1 for d in w_shape]
    if not out or not w:
        return 0
    if rule == "conv_oihw":  # out [N, O, spatial...], W [O, I/g, k...]
        return _prod(out[1:]) * _prod(w[1:])
    if rule == "tconv_iohw":  # every input pixel scatters through W [I, O/g, k...]
        return _prod(_batch1(a_shape)[1:]) * _prod(w[1:])
    if rule == "gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        k = w[1] if trans_b else w[0]
        return _prod(out[1:]) * k
    if rule == "matmul":
        a = _batch1(a_shape)
        k = a[-1] if len(a) > 1 else (w[0] if w else 1)
        return _prod(out[1:]) * k
    return 0


# --------------------------------------------------------------------------- Keras

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
    row = _layer(layer.name, kind, kernels[0].dtype.name, n, n, zeros, macs)
    row["bias_params"] = int(np.prod(bias.shape)) if bias is not None else 0
    return row


def _audit_keras(path: Path, trust_model: bool) -> dict[str, Any]:
    from edgekit.models.loading import load_user_model

    # The same safety check as --model: the configuration is read and judged before
    # anything is deserialised; Keras 3 files are rebuilt in tf_keras.
    model = load_user_model(path, trust=trust_model, verify_keras3=False).model

    def io_rows(tensors: list[Any]) -> list[dict[str, Any]]:
        return [{"name": t.name, "shape": [d if d is not None else None for d in t.shape], "dtype": t.dtype.name}
                for t in tensors]

    layers = _keras_layers(model)
    ops = Counter(type(getattr(l, "layer", l)).__name__ for l in layers)
    params: Counter = Counter()
    for w in model.weights:
        params[w.dtype.name] += int(np.prod(w.shape))
    rows = [r for r in (_keras_layer_row(l) for l in layers) if r is not None]
    return _summarise("keras", path, io_rows(model.inputs), io_rows(model.outputs), ops, params, rows, None)
