"""What every format's audit shares: the counting rules, the summary record, the one MAC rule for file formats.

Counting rules (the same for every format):

* **parameters** are the elements of every constant tensor in the file (ONNX
  initializers and ``Constant`` nodes, TFLite tensors with a data buffer, Keras
  weights), grouped by the dtype they are *stored* in; TFLite sparse tensors count
  their stored values only. ``int8_share`` is the share stored as int8/uint8/int4.
* **layers** are the conv/dense-like ops (Conv, Gemm, MatMul, Dense, depthwise…);
  their kernel is traced back through Dequantize/Densify/Cast to what is stored.
* **sparsity** is the fraction of kernel elements that are exactly zero (for
  quantized kernels: the stored value equals the zero point).
* **MACs** are multiply-accumulates of those layers for one sample (batch = 1), counted in one
  place: :func:`edgekit.models.flops.kernel_macs` (Keras layers through :func:`~edgekit.models.flops.layer_macs`).
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.fsutil import file_bytes
from edgekit.models.flops import kernel_macs

__all__ = ["FLOAT_DTYPE_PRECISION", "INT8_DTYPES", "count_zeros", "gzip_bytes", "kernel_macs", "layer_row", "prod",
           "summarise"]

INT8_DTYPES = ("int8", "uint8", "int4", "uint4")
FLOAT_DTYPE_PRECISION: dict[str, str] = {"float32": "fp32", "float16": "fp16", "bfloat16": "fp16"}
"""A float weight dtype → the precision label a report shows for it."""


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


def prod(dims: Iterable[int]) -> int:
    return int(math.prod(int(d) for d in dims))


def count_zeros(values: np.ndarray, zero_point: np.ndarray | None = None, axis: int = 0) -> int:
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


def layer_row(name: str, op: str, dtype: str | None, params: int, stored: int, zeros: int, macs: int) -> dict[str, Any]:
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


def summarise(fmt: str, path: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], ops: Counter,
              params_by_dtype: Counter, layers: list[dict[str, Any]],
              metadata: dict[str, Any] | None) -> dict[str, Any]:
    total = sum(params_by_dtype.values())
    kernel = sum(layer["params"] for layer in layers)
    zeros = sum(layer["zeros"] for layer in layers)
    int8 = sum(n for d, n in params_by_dtype.items() if d in INT8_DTYPES)
    return {
        "path": str(path),
        "format": fmt,
        "bytes": file_size(path),
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
        "precision": precision_of({layer["weight_dtype"] for layer in layers if layer["weight_dtype"]}),
        "kernel_params": int(kernel),
        "kernel_zeros": int(zeros),
        "sparsity": round(zeros / kernel, 6) if kernel else 0.0,
        "layers": layers,
        "metadata": metadata,
    }


def precision_of(kernel_dtypes: set[str]) -> str:
    """The measured precision label of a model from its kernels' storage dtypes."""
    labels = {"int8" if d in INT8_DTYPES else FLOAT_DTYPE_PRECISION.get(d, d) for d in kernel_dtypes}
    if len(labels) == 1:
        return labels.pop()
    return "mixed" if labels else "unknown"


def file_size(path: Path) -> int:
    return file_bytes(path)


