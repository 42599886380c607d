"""A small, dependency-free reader for the TFLite flatbuffer (the parts edgekit needs).

Apps and ``edgekit inspect`` read labels and audit models without TensorFlow,
the ``flatbuffers`` package or LiteRT: this module decodes the ``Model`` table
with :mod:`struct` only. Field numbers follow tensorflow/lite/schema/schema.fbs
(each field ``i`` sits at vtable offset ``4 + 2*i``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ModelError

FILE_IDENTIFIER = b"TFL3"

TENSOR_TYPES: dict[int, str] = {
    # TensorType enum of schema.fbs → numpy-style dtype name (the one table)
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource", 14: "variant",
    15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16", 19: "int2",
}

_COMMON_OPS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
    9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE",
    25: "SOFTMAX", 28: "TANH", 40: "MEAN", 49: "SPLIT", 67: "TRANSPOSE_CONV", 114: "QUANTIZE", 124: "DENSIFY",
    126: "BATCH_MATMUL",
}


def op_names() -> dict[int, str]:
    """BuiltinOperator code → name, from LiteRT's generated schema when installed, else a common subset."""
    try:
        from ai_edge_litert.schema_py_generated import BuiltinOperator  # light: needs flatbuffers only
    except ImportError:
        return dict(_COMMON_OPS)
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


class _Table:
    """A flatbuffer table at ``pos`` in ``buf``."""

    __slots__ = ("buf", "pos", "_vt", "_vt_len")

    def __init__(self, buf: memoryview, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self._vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt_len = struct.unpack_from("<H", buf, self._vt)[0]

    def _field(self, i: int) -> int:
        """Absolute position of field ``i``, or 0 when absent."""
        off = 4 + 2 * i
        if off >= self._vt_len:
            return 0
        rel = struct.unpack_from("<H", self.buf, self._vt + off)[0]
        return self.pos + rel if rel else 0

    def scalar(self, i: int, fmt: str, default: int | float = 0) -> int | float:
        p = self._field(i)
        return struct.unpack_from("<" + fmt, self.buf, p)[0] if p else default

    def _deref(self, i: int) -> int:
        p = self._field(i)
        return p + struct.unpack_from("<I", self.buf, p)[0] if p else 0

    def table(self, i: int) -> _Table | None:
        p = self._deref(i)
        return _Table(self.buf, p) if p else None

    def vector_span(self, i: int) -> tuple[int, int]:
        """(start, length) of vector field ``i``; (0, 0) when absent."""
        p = self._deref(i)
        if not p:
            return 0, 0
        return p + 4, struct.unpack_from("<I", self.buf, p)[0]

    def string(self, i: int) -> str:
        start, n = self.vector_span(i)
        return bytes(self.buf[start:start + n]).decode("utf-8", "replace") if n else ""

    def ints(self, i: int, fmt: str = "i") -> list[int]:
        start, n = self.vector_span(i)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start)) if n else []

    def floats(self, i: int) -> list[float]:
        start, n = self.vector_span(i)
        return list(struct.unpack_from(f"<{n}f", self.buf, start)) if n else []

    def tables(self, i: int) -> list[_Table]:
        start, n = self.vector_span(i)
        out = []
        for k in range(n):
            p = start + 4 * k
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out

    def union(self, type_field: int, value_field: int) -> tuple[int, _Table | None]:
        return int(self.scalar(type_field, "B")), self.table(value_field)


Table = _Table
"""A flatbuffer table reader (also used for the TFLite Support ``ModelMetadata`` buffer)."""


def flatbuffer_root(data: bytes) -> _Table:
    """The root table of any flatbuffer ``data`` (no identifier check)."""
    buf = memoryview(data)
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


@dataclass
class Quantization:
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    quantized_dimension: int = 0


@dataclass
class DimMeta:
    """One dimension of a TFLite sparse tensor (format 0 = dense, 1 = CSR)."""

    format: int
    dense_size: int
    segments: list[int]
    indices: list[int]


@dataclass
class Sparsity:
    traversal_order: list[int]
    block_map: list[int]
    dim_metadata: list[DimMeta]


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: list[int]
    shape_signature: list[int]
    dtype: str
    buffer: int
    quantization: Quantization | None
    sparsity: Sparsity | None


@dataclass
class OperatorInfo:
    op: str
    inputs: list[int]
    outputs: list[int]


@dataclass
class SubGraphInfo:
    name: str
    tensors: list[TensorInfo]
    inputs: list[int]
    outputs: list[int]
    operators: list[OperatorInfo]


@dataclass
class TFLiteModel:
    """The decoded parts of a .tflite file."""

    raw: bytes
    version: int
    description: str
    subgraphs: list[SubGraphInfo]
    buffer_spans: list[tuple[int, int]]  # (byte offset in ``raw``, length) of each buffer's data
    metadata: dict[str, int]  # metadata name → buffer index

    def buffer_bytes(self, index: int) -> bytes:
        """The bytes of buffer ``index`` (empty for tensors without constant data)."""
        if not 0 <= index < len(self.buffer_spans):
            return b""
        start, n = self.buffer_spans[index]
        return self.raw[start:start + n]


def _sparse_index(t: _Table | None, kind: int) -> list[int]:
    # SparseIndexVector union: 1 Int32Vector, 2 Uint16Vector, 3 Uint8Vector; each is a table with values:[T]
    if t is None or kind == 0:
        return []
    return t.ints(0, {1: "i", 2: "H", 3: "B"}.get(kind, "i"))


def _read_sparsity(t: _Table | None) -> Sparsity | None:
    if t is None:
        return None
    dims = []
    for d in t.tables(2):
        seg_type, seg = d.union(2, 3)
        idx_type, idx = d.union(4, 5)
        dims.append(DimMeta(int(d.scalar(0, "b")), int(d.scalar(1, "i")), _sparse_index(seg, seg_type),
                            _sparse_index(idx, idx_type)))
    return Sparsity(t.ints(0), t.ints(1), dims)


def _read_quant(t: _Table | None) -> Quantization | None:
    if t is None:
        return None
    return Quantization(t.floats(2), t.ints(3, "q"), int(t.scalar(6, "i")))


def _read_tensor(i: int, t: _Table) -> TensorInfo:
    dtype_code = int(t.scalar(1, "b"))
    return TensorInfo(
        index=i,
        name=t.string(3),
        shape=t.ints(0),
        shape_signature=t.ints(7),
        dtype=TENSOR_TYPES.get(dtype_code, f"type{dtype_code}"),
        buffer=int(t.scalar(2, "I")),
        quantization=_read_quant(t.table(4)),
        sparsity=_read_sparsity(t.table(6)),
    )


def parse_tflite(data: bytes, where: str = "model") -> TFLiteModel:
    """Decode a TFLite flatbuffer; raises :class:`ModelError` if it is not one."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelError(f"{where}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    buf = memoryview(data)
    try:
        root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
        names = op_names()
        opcodes = []
        for oc in root.tables(1):
            code = max(int(oc.scalar(0, "b")), int(oc.scalar(3, "i")))
            custom = oc.string(1)
            opcodes.append(custom if custom else names.get(code, f"BUILTIN_{code}"))
        subgraphs = []
        for sg in root.tables(2):
            tensors = [_read_tensor(i, t) for i, t in enumerate(sg.tables(0))]
            ops = [OperatorInfo(opcodes[int(o.scalar(0, "I"))], o.ints(1), o.ints(2)) for o in sg.tables(3)]
            subgraphs.append(SubGraphInfo(sg.string(4), tensors, sg.ints(1), sg.ints(2), ops))
        spans = []
        for b in root.tables(4):
            start, n = b.vector_span(0)
            offset, size = int(b.scalar(1, "Q")), int(b.scalar(2, "Q"))
            if not n and offset > 1 and size:  # large models keep buffers after the flatbuffer
                start, n = offset, size
            spans.append((start, n))
        metadata = {m.string(0): int(m.scalar(1, "I")) for m in root.tables(6)}
        return TFLiteModel(bytes(data), int(root.scalar(0, "I")), root.string(3), subgraphs, spans, metadata)
    except (struct.error, IndexError) as e:
        raise ModelError(f"{where}: corrupt TFLite flatbuffer ({e})") from None


def read_tflite(path: str | Path) -> TFLiteModel:
    """Read and decode a .tflite file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"{p}: cannot read ({e.strerror or e})") from None
    return parse_tflite(data, str(p))
