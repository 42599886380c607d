"""The ONNX format: protobuf files run by ONNX Runtime; audited with ``onnx`` (no TensorFlow)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import ModelMeta
from edgekit.errors import ModelError
from edgekit.formats._audit import count_zeros, kernel_macs, layer_row, prod, summarise

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


def audit(path: Path, *, trust_model: bool = False) -> dict[str, Any]:
    """What an .onnx file really contains (read with ``onnx``; external data is refused by the loader's checks)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:  # DecodeError, ValueError, OSError
        raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
    if not model.graph.node or not model.graph.output:  # protobuf reads many byte strings as an empty model
        raise ModelError(f"{path}: not an ONNX model (no graph nodes or outputs)")
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
        params[_onnx_dtype(t.data_type)] += prod(t.dims)
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
            has_zp = len(node.input) > 2 and node.input[2] in consts
            zp = numpy_helper.to_array(consts[node.input[2]]) if has_zp else None
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
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        macs = kernel_macs(rule, shapes.get(node.output[0], []), w_shape, a_shape, trans_b=trans_b)
        name = node.name or node.output[0]
        if found is None:
            layers.append(layer_row(name, node.op_type, None, 0, 0, 0, macs))
            continue
        tensor, zp, axis = found
        values = numpy_helper.to_array(tensor)
        if zp is None:
            zp = quant_zp(node, wi)
            axis = 0
        zeros = count_zeros(values, zp if values.dtype.kind in "iu" else None, axis)
        bias_n = 0
        if bi is not None and len(node.input) > bi and node.input[bi]:
            b = stored(node.input[bi])
            bias_n = prod(b[0].dims) if b is not None else 0
        layer = layer_row(name, node.op_type, _onnx_dtype(tensor.data_type), values.size, values.size, zeros, macs)
        layer["bias_params"] = bias_n
        layers.append(layer)

    def io_row(vi: Any) -> dict[str, Any]:
        return {"name": vi.name, "shape": _onnx_shape(vi), "dtype": _onnx_dtype(vi.type.tensor_type.elem_type)}

    inputs = [io_row(vi) for vi in graph.input if vi.name not in consts]
    return summarise("onnx", path, inputs, [io_row(vi) for vi in graph.output], ops, params, layers,
                      read_metadata_dict(path))


def embed_metadata(path: Path, meta: ModelMeta, artifact_id: str) -> None:
    """Embed ``meta`` in the file (see :mod:`edgekit.export.metadata`; callers use its ``embed_metadata``)."""
    from edgekit.export.metadata import embed_onnx

    embed_onnx(path, meta, artifact_id)


def read_metadata_dict(path: Path) -> dict[str, Any] | None:
    """The embedded edgekit metadata document, or None."""
    from edgekit.export.metadata import read_onnx_dict

    return read_onnx_dict(path)
