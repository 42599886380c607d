"""What a model file really contains: I/O, ops, MACs, weight storage precision, measured sparsity.

:func:`audit_model` reads the file itself — a model *called* int8 whose weights are stored as
float is reported as float. Each format's reader is its handler's ``audit`` (see
:mod:`edgekit.formats`); the counting rules they share are in :mod:`edgekit.formats._audit`.
Reading .onnx and .tflite files never imports TensorFlow; Keras files do.

Model files are untrusted input: a damaged or truncated file is one :class:`ModelError`
naming it (exit 2 on the command line), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, ModelError
from edgekit.formats import format_of, spec
from edgekit.formats._audit import FLOAT_DTYPE_PRECISION, INT8_DTYPES, gzip_bytes

__all__ = ["FLOAT_DTYPE_PRECISION", "INT8_DTYPES", "audit_model", "gzip_bytes"]


def audit_model(path: str | Path, *, trust_model: bool = False) -> dict[str, Any]:
    """Audit an .onnx, .tflite or Keras (.keras/.h5/SavedModel) file; see the module docstring.

    A Keras file passes :mod:`edgekit.models.safety` first: one that holds code (a Lambda,
    a custom class) is refused with a ModelError unless ``trust_model``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such model file")
    fmt = spec(format_of(p))
    if p.is_file() and p.stat().st_size == 0:
        raise ModelError(f"{p}: empty file (0 bytes), not a {fmt.name} model file")
    try:
        return fmt.handler().audit(p, trust_model=trust_model)
    except (EdgekitError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - the readers parse untrusted bytes: any slip means a damaged file
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise ModelError(f"{p}: damaged or unsupported {fmt.name} file ({type(e).__name__}: {first})") from None
